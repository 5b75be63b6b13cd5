"""A customer's STATUS + SUMMARY, as the appliance prints them, rebuilt into a new lab
through the real services: the rebuilt appliance prints the same states."""

import pytest
from django.contrib.auth import get_user_model

from gateway_ui.cli import present
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from labs.services import LabError, lab_create, lab_create_from_paste, lab_reset
from licensing_core.models import Lab

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STATE_FIELDS = ("licensing_mode", "registration_mode", "registration_state", "authorization_state",
                "reservation_state", "last_auth_ok")  # fmt: skip


def _printed(appliance) -> str:
    now = appliance_now(appliance)
    return "\n".join(present.status_lines(appliance, now) + [""] + present.summary_lines(appliance, now))


def _states(appliance):
    return {f: getattr(appliance, f) for f in STATE_FIELDS}, {r.code: r.state for r in appliance.licenses.all()}


@pytest.fixture
def admin(demo_lab, settings, live_server):
    settings.CSSM_BASE_URL = live_server.url
    return get_user_model().objects.get(username="admin")


@pytest.mark.parametrize(
    "scenario", ["ooc-grace-day-12", "eval-5-days-left", "slr-installed", "auth-expired-gateway-down"]
)
def test_a_scenario_printed_and_pasted_comes_back_the_same(admin, scenario):
    original = lab_create(name="Customer", slug="customer", manager=admin, scenario=scenario)
    esa1 = Appliance.objects.select_related("lab").get(lab=original, hostname="esa1.example.com")
    text = _printed(esa1)
    rebuilt, unmatched = lab_create_from_paste(name="Reproduced", slug="reproduced", manager=admin, text=text)
    # A Transport Gateway URL is the lab's own, so the customer's is reported as replaced.
    assert [u for u in unmatched if "gateway URL" not in u] == []
    copy = Appliance.objects.select_related("lab").get(lab=rebuilt, hostname="esa1.example.com")
    assert _states(copy) == _states(esa1)
    assert rebuilt.origin.kind == "paste"


def test_what_cannot_be_reproduced_is_listed_and_reset_rebuilds(admin):
    text = (
        "Smart Licensing is: Enabled\n"
        "Evaluation Period: In Use\n"
        "Evaluation Period Remaining: 30 days 0 hours 0 minutes 0 seconds\n"
        "Registration Status: Unregistered\n"
        "License Authorization Status: Evaluation Mode\n"
        "Product Instance Name: mail-gw-7.customer.example\n"
    )
    lab, unmatched = lab_create_from_paste(name="Paste", slug="paste", manager=admin, text=text)
    assert unmatched == [
        "The customer's appliance (mail-gw-7.customer.example) is played by esa1.example.com of the lab's "
        "starting world."
    ]
    esa1 = Appliance.objects.select_related("lab").get(lab=lab, hostname="esa1.example.com")
    assert "Evaluation Period Remaining: 30 days 0 hours" in _printed(esa1)
    reset = lab_reset(lab=lab, manager=admin)
    again = Appliance.objects.select_related("lab").get(lab=reset, hostname="esa1.example.com")
    assert "Evaluation Period Remaining: 30 days 0 hours" in _printed(again)


def test_an_unusable_paste_builds_nothing(admin):
    with pytest.raises(LabError, match="No STATUS or SUMMARY line was recognised"):
        lab_create_from_paste(name="x", slug="x", manager=admin, text="hello")
    assert not Lab.objects.filter(slug="x").exists()
