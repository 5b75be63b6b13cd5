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


# --- Bookkeeping, claims and alert e-mail -------------------------------------------------------


@pytest.mark.django_db
def test_next_due_at_follows_every_service_save(enabled):
    """The column the sweep reads is what schedules.next_due says, after each state change."""
    from gateway_ui.timers import next_due_at

    assert enabled.eval_running_since is not None
    assert enabled.next_due_at == next_due_at(enabled, enabled.licenses.all())
    assert enabled.next_due_at == enabled.eval_running_since  # the "90 days left" notice is due at once
    services.registration_mode_set(appliance=enabled, mode="license_reservation", now=appliance_now(enabled))
    services.reservation_request_code(appliance=enabled, now=appliance_now(enabled))
    enabled.refresh_from_db()
    assert enabled.next_due_at == next_due_at(enabled, enabled.licenses.all())


@pytest.mark.django_db
def test_the_sweep_reads_due_work_in_a_fixed_number_of_queries(demo_lab, django_assert_max_num_queries):
    from gateway_ui.models import Appliance
    from gateway_ui.sweeps import gateway_next_due, gateway_process
    from licensing_core.clock import clock_freeze, lab_now

    clock_freeze(lab=demo_lab)
    base = Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com")
    for i in range(20):
        Appliance.objects.create(
            lab=demo_lab,
            hostname=f"x{i}.example.com",
            product="ESA",
            model_pid="C395",
            serial=f"X{i}",
            clock_skew_minutes=i % 3,
            next_due_at=lab_now(demo_lab) + timedelta(days=1 + i),
        )
    with django_assert_max_num_queries(1):
        due = gateway_next_due(demo_lab)
    assert due == lab_now(demo_lab) + timedelta(days=1)  # skew 0 on the first one
    with django_assert_max_num_queries(3):  # skews, candidates, their licences: nothing due yet
        assert gateway_process(demo_lab, lab_now(demo_lab)) == 0
    assert base.next_due_at is None


@pytest.mark.django_db
def test_next_due_is_the_first_unclaimed_appliance_of_each_skew(demo_lab, django_assert_num_queries):
    from gateway_ui.models import Appliance
    from gateway_ui.sweeps import gateway_next_due
    from licensing_core.clock import clock_freeze, lab_now, wall_now

    clock_freeze(lab=demo_lab)
    now = lab_now(demo_lab)
    Appliance.objects.filter(lab=demo_lab).update(next_due_at=None)

    def add(name, *, skew, days, claimed=False):
        Appliance.objects.create(
            lab=demo_lab, hostname=f"{name}.example.com", product="ESA", model_pid="C395", serial=name,
            clock_skew_minutes=skew, next_due_at=now + timedelta(days=days),
            sweep_claimed_until=wall_now() + timedelta(minutes=5) if claimed else None,
        )  # fmt: skip

    assert gateway_next_due(demo_lab) is None
    add("s0first", skew=0, days=1, claimed=True)  # a worker is firing it: not what is due next
    add("s0next", skew=0, days=3)
    add("s60", skew=60, days=2)  # its clock is an hour ahead: due an hour earlier in lab time
    add("sminus", skew=-30, days=5)
    for i in range(30):
        add(f"late{i}", skew=i % 4, days=10 + i)
    with django_assert_num_queries(1):
        assert gateway_next_due(demo_lab) == now + timedelta(days=2) - timedelta(minutes=60)
    Appliance.objects.filter(hostname="s60.example.com").update(sweep_claimed_until=wall_now() - timedelta(seconds=1))
    assert gateway_next_due(demo_lab) == now + timedelta(days=2) - timedelta(minutes=60)  # a lapsed claim: due
    Appliance.objects.filter(hostname="s60.example.com").update(next_due_at=None)
    assert gateway_next_due(demo_lab) == now + timedelta(days=3)


@pytest.mark.django_db
def test_clock_skew_moves_the_lab_time_an_appliance_timer_falls_due(demo_lab):
    from gateway_ui.models import Appliance
    from gateway_ui.sweeps import gateway_next_due
    from licensing_core.clock import lab_now

    at = lab_now(demo_lab) + timedelta(days=3)
    Appliance.objects.filter(lab=demo_lab, hostname="esa2.example.com").update(next_due_at=at, clock_skew_minutes=30)
    assert gateway_next_due(demo_lab) == at - timedelta(minutes=30)  # its clock is 30 min ahead


@pytest.mark.django_db
def test_alerts_are_mailed_to_recipients_of_their_class_and_severity(enabled, settings):
    from gateway_ui.models import AlertRecipient
    from licensing_core.models import MailMessage

    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    AlertRecipient.objects.create(appliance=enabled, address="crit@example.com", classes={"System": ["Critical"]})
    AlertRecipient.objects.create(
        appliance=enabled, address="all@example.com", classes={"System": ["Critical", "Warning"]}
    )
    AlertRecipient.objects.create(appliance=enabled, address="hw@example.com", classes={"Hardware": ["Warning"]})
    now = appliance_now(enabled)
    services.alert_raise(enabled, kind="authorization_failed", now=now, reason="no route")
    services.alert_raise(enabled, kind="auth_expired", now=now)
    mails = {m.subject.split(":")[-1].strip()[:20]: m for m in MailMessage.objects.filter(lab=enabled.lab)}
    warning = MailMessage.objects.get(subject__startswith="Warning-")
    critical = MailMessage.objects.get(subject__startswith="Critical-")
    assert warning.recipients == ["all@example.com"]
    assert critical.recipients == ["all@example.com", "crit@example.com"]
    assert critical.sender == "alert@esa1.example.com"
    assert len(mails) == 2


@pytest.mark.django_db
def test_duplicate_alerts_wait_5_15_35_75_seconds_then_the_maximum(enabled, settings):
    """AsyncOS "Wait Before Sending a Duplicate Alert" with initial 5 s and maximum 75 s, in appliance time."""
    from gateway_ui.alert_mail import duplicate_wait_next
    from gateway_ui.models import AlertRecipient, Appliance

    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    Appliance.objects.filter(pk=enabled.pk).update(alert_duplicate_initial_seconds=5, alert_duplicate_max_seconds=75)
    enabled.refresh_from_db()
    AlertRecipient.objects.create(appliance=enabled, address="ops@example.com", classes={"System": ["Warning"]})
    assert [duplicate_wait_next(wait=w, initial=5, maximum=75) for w in (5, 15, 35, 75)] == [15, 35, 75, 75]
    start = appliance_now(enabled)
    mailed = []
    for second in range(0, 240):  # the same alert every second for four minutes
        alert = services.alert_raise(
            enabled, kind="authorization_failed", now=start + timedelta(seconds=second), reason="no route"
        )
        if alert.emailed:
            mailed.append(second)
    assert mailed == [0, 5, 20, 55, 130, 205]  # waits 5, 15, 35, 75, 75
    assert enabled.alerts.filter(kind="authorization_failed").count() == 240  # every alert is still listed
    # After a quiet spell longer than the maximum the series starts again.
    later = start + timedelta(seconds=205 + 76)
    assert services.alert_raise(enabled, kind="authorization_failed", now=later, reason="no route").emailed
    assert not services.alert_raise(
        enabled, kind="authorization_failed", now=later + timedelta(seconds=4), reason="no route"
    ).emailed
    # A different alert text is not a duplicate.
    assert services.alert_raise(
        enabled, kind="authorization_failed", now=later + timedelta(seconds=4), reason="refused"
    ).emailed


@pytest.mark.django_db
def test_alert_settings_on_the_alerts_page(enabled, client, django_user_model):
    from django.urls import reverse

    client.force_login(django_user_model.objects.get(username="admin"))
    url = reverse("gateway:alerts", args=[enabled.lab.slug, enabled.hostname])
    page = client.get(url)
    assert b"Wait Before Sending a Duplicate Alert" in page.content
    assert b'value="300"' in page.content
    response = client.post(
        url, {"alert_settings": "1", "from_address": "", "initial_seconds": "600", "max_seconds": "60"}, follow=True
    )
    assert b"no more than the maximum" in response.content
    client.post(
        url, {"alert_settings": "1", "from_address": "esa@example.com", "initial_seconds": "60", "max_seconds": "900"}
    )
    enabled.refresh_from_db()
    assert (enabled.alert_from_address, enabled.alert_duplicate_initial_seconds) == ("esa@example.com", 60)
    assert enabled.alert_duplicate_max_seconds == 900
    response = client.post(url, {"alert_settings": "1", "initial_seconds": "x", "max_seconds": "900"}, follow=True)
    assert response.status_code == 200
    assert b"whole numbers" in response.content


@pytest.mark.django_db
def test_planning_a_sweep_round_reads_no_column_beyond_timer_fields(enabled, django_assert_num_queries):
    """The batch sweep plans from appliances read with TIMER_FIELDS only (its
    claim returns them): a column the timers need and the list lacks would
    cost a query per appliance."""
    from gateway_ui.agent import client
    from gateway_ui.models import Appliance
    from gateway_ui.sweeps import TIMER_FIELDS, TIMER_ROWS, _at
    from gateway_ui.timers import next_due_at, timer_inputs
    from licensing_core.schedules import due_now

    now = appliance_now(enabled)
    for appliance in (enabled, _reserving(enabled)):
        planned = Appliance.objects.only(*TIMER_FIELDS).get(pk=appliance.pk)
        rows = list(appliance.licenses.filter(TIMER_ROWS))
        with django_assert_num_queries(0):
            due_now(timer_inputs(planned, rows), now=_at(now, planned))
            next_due_at(planned, rows)
            client.batchable(planned)
        assert next_due_at(planned, rows) == appliance.next_due_at


def _reserving(appliance):
    services.registration_mode_set(appliance=appliance, mode="license_reservation", now=appliance_now(appliance))
    services.reservation_request_code(appliance=appliance, now=appliance_now(appliance))
    appliance.refresh_from_db()
    return appliance


def test_a_licence_not_requested_changes_only_on_a_request():
    """Why the batch sweep's locked read brings only ACTIVE_ROWS: a row neither
    requested nor in grace nor reserved is moved by no timer and no answer."""
    from licensing_core.machines import LICENSE, LicenseState

    assert {action for state, action in LICENSE.table if state == LicenseState.NOT_REQUESTED} == {"request"}
