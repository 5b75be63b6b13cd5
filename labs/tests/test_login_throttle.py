import pytest

pytestmark = pytest.mark.django_db


def test_repeated_failures_are_throttled_with_a_message(client, demo_lab, demo_password):
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "admin", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": "admin", "password": demo_password})
    assert response.status_code == 429
    assert "Too many failed login attempts. Try again in 15 minutes." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_success_clears_earlier_failures(client, demo_lab, demo_password):
    for _ in range(4):
        client.post("/accounts/login/", {"username": "admin", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "admin", "password": demo_password})
    assert response.status_code == 302
    client.logout()
    for _ in range(4):
        client.post("/accounts/login/", {"username": "admin", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "admin", "password": demo_password}).status_code == 302


def test_throttling_one_user_name_from_one_address_blocks_that_address(client, demo_lab, demo_password):
    for name in ("a", "b", "c", "d", "e"):
        client.post("/accounts/login/", {"username": name, "password": "wrong"})
    # same address (the test client's 127.0.0.1), another user name
    assert client.post("/accounts/login/", {"username": "operator", "password": demo_password}).status_code == 429


def test_login_page_needs_csrf(demo_lab, demo_password):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/accounts/login/", {"username": "admin", "password": demo_password})
    assert response.status_code == 403
