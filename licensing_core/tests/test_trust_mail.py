from datetime import UTC, datetime

import pytest
from django.core.mail import EmailMultiAlternatives

from licensing_core import pki
from licensing_core.events import event_record
from licensing_core.models import Lab, MailMessage
from licensing_core.trust import certificate_authority, lab_trust

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_each_lab_gets_its_own_authority_once():
    a = Lab.objects.create(name="A", slug="a")
    b = Lab.objects.create(name="B", slug="b")
    trust_a = lab_trust(lab=a, now=NOW)
    assert lab_trust(lab=a, now=NOW).pk == trust_a.pk
    trust_b = lab_trust(lab=b, now=NOW)
    key = pki.make_device_key()
    csr = pki.make_csr(key_pem=key, common_name="esa1.example.com", udi="PID:C395,SN:1")
    cert = pki.issue_id_certificate(ca=certificate_authority(trust_a), csr_pem=csr, now=NOW)
    assert pki.verify_certificate(ca_cert_pem=bytes(trust_a.ca_cert_pem), cert_pem=cert, now=NOW).udi == "PID:C395,SN:1"
    with pytest.raises(pki.PkiError):
        pki.verify_certificate(ca_cert_pem=bytes(trust_b.ca_cert_pem), cert_pem=cert, now=NOW)
    assert bytes(trust_a.token_secret) != bytes(trust_b.token_secret)


def test_the_mailbox_backend_keeps_messages_with_their_lab_time(settings):
    settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
    lab = Lab.objects.create(name="A", slug="a")
    message = EmailMultiAlternatives(
        "Registration failed",
        "text body",
        "alert@esa1.example.com",
        ["ops@example.com"],
        headers={"X-Lab-Id": str(lab.pk), "X-Lab-Time": NOW.isoformat()},
    )
    message.attach_alternative("<p>html body</p>", "text/html")
    assert message.send() == 1
    stored = MailMessage.objects.get()
    assert (stored.lab, stored.lab_time, stored.recipients) == (lab, NOW, ["ops@example.com"])
    assert stored.body_html == "<p>html body</p>"


def test_an_event_carries_the_current_request_id(client, login_as):
    login_as("admin")
    response = client.get("/")
    request_id = response["X-Request-ID"]
    lab = Lab.objects.get(slug="demo")
    from licensing_core.context import request_id_var

    token = request_id_var.set(__import__("uuid").UUID(request_id))
    try:
        event = event_record(lab=lab, at=NOW, side="lab", kind="t", message="m")
    finally:
        request_id_var.reset(token)
    assert str(event.request_id) == request_id
