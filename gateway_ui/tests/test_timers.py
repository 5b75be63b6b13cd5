"""Lab time drives the appliance timers through licensing_core.sweeps (DLC, eval notices, reminders)."""

from datetime import timedelta

import pytest

from gateway_ui import services
from gateway_ui.clock import appliance_now
from licensing_core.sweeps import lab_advance_by


@pytest.mark.django_db(transaction=True)
def test_device_led_conversion_completes_after_an_hour_of_lab_time(cssm, enabled, make_token, pools, demo_lab):
    services.agent_register(appliance=enabled, token=make_token(), force=False, now=appliance_now(enabled))
    enabled.refresh_from_db()
    assert enabled.registration_state == "registered"
    assert enabled.dlc_state == "in_progress"
    lab_advance_by(lab=demo_lab, by=timedelta(minutes=30))
    enabled.refresh_from_db()
    assert enabled.dlc_state == "in_progress"
    lab_advance_by(lab=demo_lab, by=timedelta(minutes=31))
    enabled.refresh_from_db()
    assert enabled.dlc_state in ("success", "failed")
    if enabled.dlc_state == "failed":
        assert enabled.alerts.filter(kind="dlc_failed").exists()


@pytest.mark.django_db(transaction=True)
def test_eval_notices_and_expiry(enabled, demo_lab):
    lab_advance_by(lab=demo_lab, by=timedelta(days=91))
    enabled.refresh_from_db()
    assert enabled.authorization_state == "eval_expired"
    texts = list(enabled.alerts.filter(kind="eval_expiry").values_list("severity", flat=True))
    assert "Critical" in texts
    assert "Warning" in texts
    assert enabled.licenses.get(code="VOF").state == "eval_expired"


@pytest.mark.django_db(transaction=True)
def test_reservation_reminder_every_24_hours(enabled, demo_lab):
    now = appliance_now(enabled)
    services.registration_mode_set(appliance=enabled, mode="license_reservation", now=now)
    services.reservation_request_code(appliance=enabled, now=now)
    lab_advance_by(lab=demo_lab, by=timedelta(hours=49))
    assert enabled.alerts.filter(kind="reservation_install_reminder").count() == 3
