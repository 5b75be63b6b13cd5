"""Real Celery processes on Redis: beat and a worker renew a due authorization
over HTTP; a worker SIGKILLed in the middle of a sweep loses nothing and a
restarted one sends no e-mail twice (counted at a real SMTP server)."""

import signal
from datetime import timedelta

import pytest

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import AlertRecipient, Appliance, ApplianceAlert
from licensing_core.clock import clock_set, lab_now
from licensing_core.models import JobRun, MailMessage, MailStatus
from licensing_core.roles import GatewayRole
from tests.time.support import REDIS_URL, celery, celery_env, redis_flush, require_redis, stop, wait_until
from tests.time.test_exactly_once import make_enabled_appliances

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]


@pytest.fixture
def redis_broker():
    require_redis()
    redis_flush()
    yield REDIS_URL
    redis_flush()


def test_beat_and_a_worker_renew_a_due_authorization_over_http(
    frozen_lab, live_server, settings, redis_broker, tmp_path
):
    from cssm_portal import services as cssm
    from cssm_portal.models import VirtualAccount

    settings.CSSM_BASE_URL = live_server.url
    esa = Appliance.objects.get(lab=frozen_lab, hostname="esa1.example.com")
    now = appliance_now(esa)
    services.sl_enable(appliance=esa, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    va = VirtualAccount.objects.get(smart_account__lab=frozen_lab, name="ESA")
    token = cssm.token_create(
        va=va,
        actor="admin",
        description="renewal test",
        expire_days=30,
        max_uses=None,
        export_controlled=False,
        now=lab_now(frozen_lab),
    )
    services.agent_register(appliance=esa, token=token.value, force=False, now=now)
    esa.refresh_from_db()
    assert esa.registration_state == "registered", esa.registration_error
    first_success = esa.last_auth_success_at

    # Move the clock past the 30-day renewal without processing anything: from
    # here on only the real beat and worker can do the renewal.
    due_at = first_success + timedelta(days=30, minutes=5)
    clock_set(lab=frozen_lab, to=due_at)

    env = celery_env(
        CSSM_BASE_URL=live_server.url,
        LAB_VAR_DIR=str(tmp_path),
        LAB_SWEEP_SECONDS="1",
        LAB_MAIL_SECONDS="1",
        EMAIL_HOST="",
    )
    worker = celery("worker", "--pool", "solo", "--loglevel", "INFO", env=env, log=tmp_path / "worker.log")
    beat = celery(
        "beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule"), env=env, log=tmp_path / "beat.log"
    )
    try:

        def renewed():
            esa.refresh_from_db()
            return esa.last_auth_success_at is not None and esa.last_auth_success_at > first_success

        wait_until(renewed, timeout=90, message="the beat sweep to renew the authorization")
    finally:
        stop(beat)
        stop(worker)
    logs = (tmp_path / "worker.log").read_text(errors="replace")
    assert esa.last_auth_success_at >= due_at, logs[-3000:]
    assert esa.last_auth_ok is True  # the renewal succeeded (the demo's term AMP pool decides compliance)
    assert esa.next_due_at > due_at + timedelta(days=29)  # the next renewal is 30 days on
    assert JobRun.objects.filter(lab=frozen_lab, kind="sweep", trigger="beat", status="succeeded").exists()


def test_a_worker_killed_mid_sweep_loses_nothing_and_sends_no_mail_twice(frozen_lab, settings, redis_broker, tmp_path):
    from tests.time.support import SmtpServer

    smtp = SmtpServer()
    smtp.start()
    appliances = make_enabled_appliances(frozen_lab, 60)
    AlertRecipient.objects.filter(appliance__in=appliances).update(classes={"System": ["Warning", "Critical"]})
    # 31 days on, the "60 days left" evaluation notice is due on every appliance.
    clock_set(lab=frozen_lab, to=lab_now(frozen_lab) + timedelta(days=31))
    baseline = ApplianceAlert.objects.filter(appliance__in=appliances).count()

    env = celery_env(
        LAB_VAR_DIR=str(tmp_path),
        LAB_SWEEP_LEASE_SECONDS="2",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        # The sweep claims and commits appliances in batches: small ones, so the kill lands between them.
        DJANGO_SETTINGS_MODULE="tests.time.settings_small_batches",
    )
    from config.celery import app

    def send_sweep():
        with app.connection_for_write(REDIS_URL) as connection:
            app.send_task("licensing_core.tasks.sweep_labs_task", connection=connection)

    try:
        first = celery("worker", "--pool", "solo", "--loglevel", "INFO", env=env, log=tmp_path / "w1.log")
        send_sweep()

        def started():
            return ApplianceAlert.objects.filter(appliance__in=appliances).count() > baseline

        wait_until(started, timeout=60, interval=0.02, message="the sweep to start firing notices")
        stop(first, sig=signal.SIGKILL)
        fired_before_kill = ApplianceAlert.objects.filter(appliance__in=appliances).count() - baseline
        assert fired_before_kill < len(appliances), "the sweep finished before the kill; make the lab larger"

        second = celery("worker", "--pool", "solo", "--loglevel", "INFO", env=env, log=tmp_path / "w2.log")
        try:

            def all_fired():
                send_sweep()
                return ApplianceAlert.objects.filter(appliance__in=appliances).count() - baseline >= len(appliances)

            wait_until(all_fired, timeout=120, interval=1, message="a restarted worker to finish the sweep")

            def all_mailed():
                with app.connection_for_write(REDIS_URL) as connection:
                    app.send_task("licensing_core.tasks.outbox_deliver_task", connection=connection)
                return not MailMessage.objects.filter(lab=frozen_lab).exclude(status=MailStatus.SENT).exists()

            wait_until(all_mailed, timeout=60, interval=1, message="the outbox to be delivered")
        finally:
            stop(second)
    finally:
        smtp.stop()

    per_appliance = {}
    for alert in ApplianceAlert.objects.filter(appliance__in=appliances, kind="eval_expiry"):
        per_appliance.setdefault(alert.appliance_id, []).append(alert.text)
    assert sorted(per_appliance) == sorted(a.pk for a in appliances)
    assert all(len(texts) == len(set(texts)) for texts in per_appliance.values())

    # Every queued e-mail reached the SMTP server exactly once.
    mails = MailMessage.objects.filter(lab=frozen_lab)
    subjects_and_recipients = sorted(
        (m.subject, tuple(m.recipients)) for m in mails if "evaluation" in m.subject.lower()
    )
    assert len(subjects_and_recipients) == len(set(subjects_and_recipients))
    received = list(smtp.messages)
    assert len(received) == mails.count()
    received_keys = sorted((s, tuple(sorted(m.rcpt_tos))) for s, m in zip(smtp.subjects(), received, strict=True))
    assert len(received_keys) == len(set(received_keys))
