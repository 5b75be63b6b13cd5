import json

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_requires_login_on_the_home_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_lists_the_demo_appliances_and_the_portal(client, login_as):
    login_as("admin")
    response = client.get("/")
    body = response.content.decode()
    assert response.status_code == 200
    for hostname in ("esa1.example.com", "esa2.example.com", "sma1.example.com"):
        assert hostname in body
        assert reverse("gateway:home", kwargs={"lab_slug": "demo", "hostname": hostname}) in body
    assert "Smart Account Example Corp" in body
    assert reverse("cssm:home", kwargs={"lab_slug": "demo"}) in body


def test_it_hides_labs_the_user_does_not_belong_to(client, demo_lab, django_user_model):
    outsider = django_user_model.objects.create_user("outsider", password="x")
    client.force_login(outsider)
    body = client.get("/").content.decode()
    assert "esa1.example.com" not in body
    assert "You do not belong to any lab yet" in body


def test_it_runs_a_fixed_number_of_queries_whatever_the_lab_count(client, login_as, django_assert_max_num_queries):
    from gateway_ui.models import Appliance
    from licensing_core.models import Lab, LabMembership

    user = login_as("admin")
    for i in range(30):
        lab = Lab.objects.create(name=f"Lab {i}", slug=f"lab-{i}")
        LabMembership.objects.create(lab=lab, user=user)
        Appliance.objects.create(
            lab=lab, hostname=f"esa{i}.example.com", product="ESA", model_pid="C395", serial=str(i)
        )
    with django_assert_max_num_queries(8):
        assert client.get("/").status_code == 200


def test_seed_demo_is_idempotent(demo_lab):
    from django.contrib.auth import get_user_model

    from gateway_ui.models import Appliance
    from labs.demo import demo_lab_build

    users = get_user_model().objects.count()
    demo_lab_build()
    assert get_user_model().objects.count() == users
    assert Appliance.objects.filter(lab=demo_lab).count() == 3


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    data = json.loads(response.content)
    assert data["database"] == "ok"
    assert data["broker"] == "ok"
    assert response.status_code == 200


def test_healthz_reports_a_broker_that_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.content)["broker"].startswith("error")


def test_a_fleet_lab_shows_its_first_appliances_and_leads_to_the_others(client, login_as, demo_lab):
    from gateway_ui.models import Appliance
    from labs.selectors import HOME_APPLIANCES

    login_as("admin")
    Appliance.objects.bulk_create(
        Appliance(lab=demo_lab, hostname=f"fleet{i:03d}.example.com", product="ESA", model_pid="C395",
                  serial=f"FLEET{i:03d}")
        for i in range(40)
    )  # fmt: skip
    body = client.get("/").content.decode()
    section = body[body.index('id="lab-demo"') : body.index("</section>", body.index('id="lab-demo"'))]
    shown = sorted(["esa1.example.com", "esa2.example.com", "sma1.example.com"] +
                   [f"fleet{i:03d}.example.com" for i in range(40)])[:HOME_APPLIANCES]  # fmt: skip
    assert [h for h in shown if h in section] == shown
    assert "fleet039.example.com" not in section
    assert "All 43 appliances" in section
    assert reverse("labs:detail", kwargs={"slug": "demo"}) + "#appliances" in section
