"""A person logs in with a demo login and reaches the lab home."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_logs_in_and_shows_the_demo_lab(live_server, page, demo_lab, demo_password):
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Log in"
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Your labs"
    assert page.get_by_role("link", name="esa1.example.com").is_visible()
    assert page.get_by_role("link", name="Smart Account Example Corp").is_visible()


def test_a_wrong_password_gets_a_message(live_server, page, demo_lab):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "enter a correct username and password" in page.locator(".error").inner_text()
