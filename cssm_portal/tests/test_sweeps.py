"""Time travel raises the time-driven CSSM alerts on the lab date they fall due."""

from datetime import timedelta

import pytest

from cssm_portal.models import CssmAlert
from cssm_portal.sweeps import cssm_next_due
from licensing_core.clock import lab_now
from licensing_core.sweeps import lab_advance_by

pytestmark = pytest.mark.django_db


def test_time_travel_raises_failed_to_connect_when_it_falls_due(agent, token, lab):
    assert agent.register(token.value)[0] == 200
    registered = lab_now(lab)
    assert cssm_next_due(lab) <= registered + timedelta(days=30)
    lab_advance_by(lab=lab, by=timedelta(days=40))
    alert = CssmAlert.objects.get(alert_type="Product Instance Failed to Connect")
    assert timedelta(0) < alert.raised_at - (registered + timedelta(days=30)) < timedelta(seconds=1)


def test_licenses_expire_on_their_end_date(lab):
    lab_advance_by(lab=lab, by=timedelta(days=50))
    expired = CssmAlert.objects.get(alert_type="Licenses Expired")
    assert expired.raised_at.hour == 0
    assert expired.raised_at.minute == 0
    expiring = CssmAlert.objects.get(alert_type="Licenses Expiring")
    assert expiring.cleared_at == expired.raised_at


def test_next_due_is_always_in_the_future(lab):
    now = lab_now(lab)
    due = cssm_next_due(lab)
    assert due is None or due > now


def test_daily_event_summary_goes_to_subscribers_once_a_day(lab, account, django_user_model):
    from cssm_portal import services
    from licensing_core.models import MailMessage

    user = django_user_model.objects.get(username="admin")
    services.preferences_save(
        user=user,
        smart_account=account,
        daily_summary=True,
        email="ops@example.com",
        virtual_accounts=list(account.virtual_accounts.filter(name="ESA")),
        alert_events=["Licenses Expiring", "Insufficient Licenses"],
        expiring_days=[60],
        status_notification=False,
        now=lab_now(lab),
    )
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    lab_advance_by(lab=lab, by=timedelta(days=2))
    mails = list(MailMessage.objects.filter(lab=lab, subject__contains="Daily Event Summary"))
    assert len(mails) == 1
    assert mails[0].recipients == ["ops@example.com"]
    assert "Licenses Expiring" in mails[0].body_text


def test_the_smart_account_setup_mail_goes_through_the_outbox(lab, now, django_user_model):
    from cssm_portal import services
    from licensing_core.models import MailMessage

    user = django_user_model.objects.create_user("creator", email="creator@acme.test")
    req = services.smart_account_request(lab=lab, user=user, name="Acme Inc.", domain="acme.test", now=now)
    mail = MailMessage.objects.get(lab=lab, dedupe_key=f"cssm-sa-setup:{req.pk}")
    assert mail.recipients == ["creator@acme.test"]
    assert mail.subject == "Complete the setup of Smart Account Acme Inc."
    assert "Complete Account Setup" in mail.body_text
    assert "<strong>Complete Account Setup</strong>" in mail.body_html
    assert mail.lab_time == now


@pytest.mark.django_db(transaction=True)
def test_two_cssm_sweeps_of_one_lab_raise_each_alert_once(lab):
    from cssm_portal.sweeps import cssm_process

    later = lab_now(lab) + timedelta(days=50)
    first = cssm_process(lab, later)
    assert first > 0
    assert cssm_process(lab, later) == 0
    keys = list(CssmAlert.objects.filter(cleared_at__isnull=True).values_list("dedupe_key", flat=True))
    assert len(keys) == len(set(keys))


def test_a_token_expires_on_time_in_the_event_log(lab, token):
    """CSSM token expiry runs on time: one Event Log row at the expiration date."""
    from licensing_core.models import Event

    lab_advance_by(lab=lab, by=timedelta(days=400))
    rows = list(Event.objects.filter(lab=lab, kind="cssm.token.expired"))
    assert len(rows) == 1
    assert rows[0].at == token.expires_at
    assert rows[0].virtual_account_id == token.virtual_account_id
    assert "expired" in rows[0].message
    lab_advance_by(lab=lab, by=timedelta(days=1))
    assert Event.objects.filter(lab=lab, kind="cssm.token.expired").count() == 1


def test_a_sweep_with_nothing_due_does_no_work(lab, django_assert_max_num_queries):
    from cssm_portal.sweeps import cssm_process

    now = lab_now(lab)
    cssm_process(lab, now)  # the first check applies the rules once
    with django_assert_max_num_queries(13):  # a few aggregates, whatever the account size
        assert cssm_process(lab, now + timedelta(seconds=30)) == 0
