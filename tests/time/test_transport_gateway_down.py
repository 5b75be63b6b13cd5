"""A registered appliance whose Transport Gateway goes down, advanced 365 days:
the exact alerts on their lab dates, and the e-mails a real SMTP server receives."""

from datetime import timedelta

import pytest

from cssm_portal.models import CssmAlert
from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import AlertRecipient, Appliance
from licensing_core.clock import lab_now
from licensing_core.models import MailMessage
from licensing_core.roles import GatewayRole
from licensing_core.sweeps import lab_advance_by
from tests.time.support import TransportGatewayRelay


@pytest.fixture
def relay(live_server, settings):
    settings.CSSM_BASE_URL = live_server.url
    relay = TransportGatewayRelay(live_server.url)
    relay.start()
    yield relay
    relay.stop()


def _token(lab):
    from cssm_portal.models import VirtualAccount
    from cssm_portal.services import token_create

    va = VirtualAccount.objects.get(smart_account__lab=lab, name="ESA")
    return token_create(
        va=va, actor="admin", description="t", expire_days=30, max_uses=None, export_controlled=False, now=lab_now(lab)
    ).value


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gateway_down_for_a_year(frozen_lab, relay, smtp):
    lab = frozen_lab
    esa = Appliance.objects.get(lab=lab, hostname="esa2.example.com")
    AlertRecipient.objects.create(
        appliance=esa, address="ops@example.com", classes={"System": ["Critical", "Warning", "Information"]}
    )
    now = appliance_now(esa)
    services.sl_enable(appliance=esa, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    esa.refresh_from_db()
    services.transport_stage(appliance=esa, mode="gateway", url=relay.url, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    esa.refresh_from_db()
    services.agent_register(appliance=esa, token=_token(lab), force=False, now=now)
    esa.refresh_from_db()
    assert esa.registration_state == "registered", esa.registration_error
    t0 = lab_now(lab)
    relay.stop()  # the Transport Gateway goes down right after registration

    lab_advance_by(lab=lab, by=timedelta(days=365))

    failed = ("authorization_failed", "Warning")
    id_failed = ("id_renew_failed", "Warning")
    expected = [(0, "sl_enabled", "Information"), (0, "registered", "Information"), (0, "authorized", "Information")]
    for day in range(30, 366):
        if day == 90:  # 90 days without a successful authorization
            expected.append((90, "auth_expired", "Critical"))
        expected.append((day, *failed))  # the 30-day renewal, then a retry every 24 hours
        if 180 <= day < 365:
            expected.append((day, *id_failed))  # the 6-month certificate renewal, retried daily
    expected.append((365, "id_expired", "Critical"))  # a year without a certificate renewal
    alerts = list(esa.alerts.order_by("at", "id"))
    assert [((a.at - t0) / timedelta(days=1), a.kind, a.severity) for a in alerts] == expected
    assert all((a.at - t0) % timedelta(days=1) == timedelta(0) for a in alerts)  # whole days: no drift
    unreachable = f"Unable to reach Smart Software Manager at {relay.url}."
    assert {a.text for a in alerts if a.kind == "authorization_failed"} == {
        f"Authorization of the product with Smart Software Manager failed: {unreachable}"
    }
    esa.refresh_from_db()
    assert esa.registration_state == "reg_expired"
    assert esa.authorization_state == "auth_expired"

    # One e-mail per alert reached the SMTP server (AsyncOS defaults hold a
    # duplicate back for at most an hour; these repeat daily), carrying the
    # lab time the alert fell due.
    assert sorted(smtp.subjects()) == sorted(f"{a.severity}-esa2.example.com: System: {a.text}" for a in alerts)
    lab_times = sorted(m.lab_time for m in MailMessage.objects.filter(lab=lab, recipients=["ops@example.com"]))
    assert lab_times == [a.at for a in alerts]
    assert not MailMessage.objects.exclude(status="sent").exists()

    # On the CSSM side the instance failed to connect 30 days after its last
    # contact; a day later its year without contact makes it Failed to Renew.
    def instance_alerts():
        return [
            (c.alert_type, c.raised_at - t0)
            for c in CssmAlert.objects.filter(smart_account__lab=lab, message__contains="esa2.example.com").order_by(
                "raised_at"
            )
        ]

    just_after = timedelta(microseconds=1)
    assert instance_alerts() == [("Product Instance Failed to Connect", timedelta(days=30) + just_after)]
    lab_advance_by(lab=lab, by=timedelta(days=1))
    assert instance_alerts() == [
        ("Product Instance Failed to Connect", timedelta(days=30) + just_after),
        ("Product Instance Failed to Renew", timedelta(days=365) + just_after),
    ]
    assert esa.alerts.count() == len(expected)  # nothing more on the appliance: it is no longer registered
