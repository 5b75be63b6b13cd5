"""The outbox: one row per message, claimed before sending, retried when SMTP
is down, never sent twice (counted at a real SMTP server, aiosmtpd)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from licensing_core.mail import mail_enqueue, outbox_deliver
from licensing_core.models import Lab, MailMessage, MailStatus
from tests.time.support import SmtpServer, smtp_settings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    smtp_settings(settings, server)
    server.start()
    yield server
    server.stop()


def _queue(lab, n, prefix="k"):
    return [
        mail_enqueue(
            lab=lab,
            lab_time=NOW + timedelta(days=i),
            template="gateway-alert",
            context={"severity": "Warning", "hostname": "esa1.example.com", "alert_class": "System",
                     "text": f"Expiry of evaluation period ({i})", "version": "16.0", "serial": "X"},
            recipients=["ops@example.com"],
            dedupe_key=f"{prefix}{i}",
        )
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.django_db
def test_it_renders_the_triplet_and_queues_once_per_key():
    lab = Lab.objects.create(name="A", slug="a")
    first = _queue(lab, 1)[0]
    assert first.subject == "Warning-esa1.example.com: System: Expiry of evaluation period (0)"
    assert "Serial Number: X" in first.body_text
    assert "<strong>Warning</strong>" in first.body_html
    assert _queue(lab, 1) == [None]
    assert MailMessage.objects.count() == 1


@pytest.mark.django_db
def test_it_delivers_each_message_once_over_smtp(smtp):
    sink = smtp
    lab = Lab.objects.create(name="A", slug="a")
    _queue(lab, 3)
    assert outbox_deliver(now=NOW) == 3
    assert outbox_deliver(now=NOW) == 0
    assert len(sink.messages) == 3
    assert set(MailMessage.objects.values_list("status", flat=True)) == {MailStatus.SENT}
    assert b"Expiry of evaluation period (2)" in b"".join(m.content for m in sink.messages)


@pytest.mark.django_db
def test_mail_waits_while_smtp_is_down_and_goes_out_when_it_returns(smtp):
    smtp.stop()
    lab = Lab.objects.create(name="A", slug="a")
    _queue(lab, 2)
    assert outbox_deliver(now=NOW) == 0
    waiting = MailMessage.objects.get(dedupe_key="k0")
    assert waiting.status == MailStatus.PENDING
    assert waiting.attempts == 1
    assert waiting.last_error
    smtp.start()
    assert outbox_deliver(now=NOW + timedelta(minutes=1)) == 2
    assert len(smtp.messages) == 2


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_worker_is_retried_later(settings):
    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    lab = Lab.objects.create(name="A", slug="a")
    row = _queue(lab, 1)[0]
    MailMessage.objects.filter(pk=row.pk).update(status=MailStatus.SENDING, claimed_at=NOW)
    assert outbox_deliver(now=NOW + timedelta(minutes=1)) == 0  # still fresh: someone may be sending it
    assert outbox_deliver(now=NOW + timedelta(minutes=11)) == 1
    assert MailMessage.objects.get(pk=row.pk).status == MailStatus.SENT


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_at_once_send_each_message_once(smtp, monkeypatch):
    sink = smtp
    # Queued rows would otherwise be delivered at once by the eager kick.
    monkeypatch.setattr("licensing_core.mail._kick", lambda: None)
    lab = Lab.objects.create(name="A", slug="a")
    _queue(lab, 20)
    results = []

    def worker():
        from django.db import connection

        try:
            results.append(outbox_deliver(now=NOW))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 20
    assert len(sink.messages) == 20
