"""Portal services: tokens, reservations, transfers, alerts, accounts."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from cssm_portal import services
from cssm_portal.models import (
    CssmAlert,
    LicensePool,
    LicenseTransaction,
    ProductInstance,
    RegistrationToken,
    SmartAccount,
    SmartAccountRequestStatus,
    VirtualAccount,
)
from cssm_portal.services import ServiceError
from cssm_portal.tests.conftest import tag
from licensing_core import codes
from licensing_core.clock import clock_advance, lab_now
from licensing_core.models import Event
from licensing_core.trust import lab_trust

pytestmark = pytest.mark.django_db


def _token(va, now, **kw):
    args = {"actor": "admin", "description": "", "expire_days": 30, "max_uses": None, "export_controlled": False}
    args.update(kw)
    return services.token_create(va=va, now=now, **args)


@pytest.mark.parametrize("days", [0, 366, -1])
def test_token_expiry_must_be_1_to_365_days(va, now, days):
    with pytest.raises(ServiceError) as err:
        _token(va, now, expire_days=days)
    assert err.value.field == "expire_days"
    assert "between 1 - 365" in err.value.reason


def test_token_is_parseable_and_logged(va, now, lab):
    token = _token(va, now, description="Gateways", max_uses=100)
    parsed = codes.token_parse(token.value, secret_key=bytes(lab_trust(lab=lab, now=now).token_secret))
    assert parsed.token_id == str(token.token_id)
    assert token.expires_at == now + timedelta(days=30)
    event = Event.objects.get(kind="cssm.token.created")
    assert event.virtual_account_id == va.pk
    assert event.smart_account_id == va.smart_account_id


def test_database_refuses_more_uses_than_allowed(va, now):
    token = _token(va, now, max_uses=1)
    RegistrationToken.objects.filter(pk=token.pk).update(uses=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        RegistrationToken.objects.filter(pk=token.pk).update(uses=2)


def test_database_refuses_negative_purchases(va):
    with pytest.raises(IntegrityError), transaction.atomic():
        LicensePool.objects.create(virtual_account=va, tag="x", purchased=-1)


def test_revoke_twice_is_refused(va, now):
    token = _token(va, now)
    services.token_revoke(token=token, actor="admin", now=now)
    with pytest.raises(ServiceError):
        services.token_revoke(token=token, actor="admin", now=now)


def _request_code(serial="RES0001", pid="C395"):
    return codes.request_code_generate(pid=pid, serial=serial)


def test_reservation_generates_a_valid_authorization_code(va, now, lab):
    rc = _request_code()
    reservation = services.reservation_authorize(
        va=va, request_code=rc, reservation_type="SPECIFIC", quantities={tag("case"): 2}, actor="admin", now=now
    )
    ca = bytes(lab_trust(lab=lab, now=now).ca_cert_pem)
    parsed = codes.authorization_code_parse(
        reservation.authorization_code, ca_cert_pem=ca, expected_request_code=rc, expected_udi="PID:C395,SN:RES0001"
    )
    assert [(e.tag, e.count) for e in parsed.entitlements] == [(tag("case"), 2)]
    assert services.in_use_by_tag(va)[tag("case")] == 2


def test_reservation_refuses_more_than_the_balance(va, now):
    pool = LicensePool.objects.get(virtual_account=va, tag=tag("VOF"))
    with pytest.raises(ServiceError) as err:
        services.reservation_authorize(
            va=va,
            request_code=_request_code(),
            reservation_type="SPECIFIC",
            quantities={tag("VOF"): pool.purchased + 1},
            actor="admin",
            now=now,
        )
    assert "available" in err.value.reason
    assert not ProductInstance.objects.filter(serial="RES0001").exists()


def _last_char_changed(code: str) -> str:
    # Always a different character: replacing the end with a fixed "00" left the
    # code intact whenever it already ended so (a random code, so a flaky test).
    return code[:-1] + ("1" if code[-1] != "1" else "2")


@pytest.mark.parametrize("bad", ["", "hello", _last_char_changed(_request_code())])
def test_reservation_refuses_a_request_code_that_does_not_parse(va, now, bad):
    with pytest.raises(ServiceError) as err:
        services.reservation_authorize(
            va=va, request_code=bad, reservation_type="SPECIFIC", quantities={tag("case"): 1}, actor="a", now=now
        )
    assert err.value.field == "request_code"


def test_permanent_reservation(va, now, lab):
    r = services.reservation_authorize(
        va=va, request_code=_request_code("PLR1"), reservation_type="PERMANENT", quantities={}, actor="a", now=now
    )
    parsed = codes.authorization_code_parse(r.authorization_code, ca_cert_pem=bytes(lab.trust.ca_cert_pem))
    assert parsed.is_permanent


def _reserved(va, now, serial="RES0002", count=1):
    return services.reservation_authorize(
        va=va,
        request_code=_request_code(serial),
        reservation_type="SPECIFIC",
        quantities={tag("case"): count},
        actor="admin",
        now=now,
    ).instance


def test_update_stays_pending_until_the_confirmation_code(va, now, account):
    inst = _reserved(va, now)
    r = services.reservation_update(instance=inst, quantities={tag("case"): 3}, actor="admin", now=now)
    assert r.pending
    assert r.entitlements == {tag("case"): 1}
    assert CssmAlert.objects.filter(alert_type="Authorization Pending", cleared_at__isnull=True).exists()
    with pytest.raises(ServiceError) as err:
        services.reservation_confirm(instance=inst, confirmation_code="0000000g", actor="admin", now=now)
    assert err.value.field == "confirmation_code"
    with pytest.raises(ServiceError):
        services.reservation_confirm(instance=inst, confirmation_code="00000000", actor="admin", now=now)
    code = codes.confirmation_code(r.pending_authorization_code)
    r = services.reservation_confirm(instance=inst, confirmation_code=code, actor="admin", now=now)
    assert not r.pending
    assert r.entitlements == {tag("case"): 3}
    assert not CssmAlert.objects.filter(alert_type="Authorization Pending", cleared_at__isnull=True).exists()
    assert Event.objects.filter(kind="cssm.reservation.confirmed", product_instance_id=inst.pk).exists()


def test_update_cannot_take_more_than_available(va, now):
    inst = _reserved(va, now)
    pool = LicensePool.objects.get(virtual_account=va, tag=tag("case"))
    with pytest.raises(ServiceError):
        services.reservation_update(instance=inst, quantities={tag("case"): pool.purchased + 1}, actor="a", now=now)
    # Everything available plus what it already holds is fine.
    services.reservation_update(instance=inst, quantities={tag("case"): pool.purchased}, actor="a", now=now)


def test_cancel_update_restores_the_reservation(va, now):
    inst = _reserved(va, now)
    services.reservation_update(instance=inst, quantities={tag("case"): 4}, actor="a", now=now)
    services.reservation_cancel_update(instance=inst, actor="a", now=now)
    assert services.in_use_by_tag(va)[tag("case")] == 1


def test_removing_a_reserving_instance_needs_its_return_code(va, now, lab):
    inst = _reserved(va, now)
    with pytest.raises(ServiceError) as err:
        services.instance_remove(instance=inst, actor="admin", now=now, return_code="")
    assert err.value.field == "return_code"
    with pytest.raises(ServiceError) as err:
        services.instance_remove(instance=inst, actor="admin", now=now, return_code="ABC")
    assert err.value.reason == codes.RETURN_DAMAGED
    secret = bytes(lab_trust(lab=lab, now=now).return_code_secret)
    other = codes.return_code_generate(secret=secret, piid="00000000-0000-4000-8000-000000000000", udi=inst.udi)
    with pytest.raises(ServiceError) as err:
        services.instance_remove(instance=inst, actor="admin", now=now, return_code=other)
    assert err.value.reason == codes.RETURN_MISMATCH
    good = codes.return_code_generate(secret=secret, piid=str(inst.piid), udi=inst.udi)
    services.instance_remove(instance=inst, actor="admin", now=now, return_code=good)
    assert not ProductInstance.objects.filter(pk=inst.pk).exists()
    assert services.in_use_by_tag(va).get(tag("case"), 0) == 0
    assert CssmAlert.objects.filter(alert_type="Reserved Licenses Returned to Smart Account").exists()


def test_license_transfer_conserves_totals(va, account, now):
    lab_va = VirtualAccount.objects.get(smart_account=account, name="Lab")
    before = sum(LicensePool.objects.filter(tag=tag("sophos")).values_list("purchased", flat=True))
    services.license_transfer(source=va, target=lab_va, tag=tag("sophos"), quantity=3, actor="a", now=now)
    after = sum(LicensePool.objects.filter(tag=tag("sophos")).values_list("purchased", flat=True))
    assert before == after
    assert LicensePool.objects.get(virtual_account=lab_va, tag=tag("sophos")).purchased == 3
    assert LicenseTransaction.objects.filter(source="Transfer", tag=tag("sophos")).count() == 2
    with pytest.raises(ServiceError) as err:
        services.license_transfer(source=va, target=lab_va, tag=tag("sophos"), quantity=999, actor="a", now=now)
    assert err.value.field == "quantity"
    with pytest.raises(ServiceError):
        services.license_transfer(source=va, target=va, tag=tag("sophos"), quantity=1, actor="a", now=now)


def test_instance_transfer_carries_its_reservation(va, account, now):
    inst = _reserved(va, now, count=2)
    target = VirtualAccount.objects.get(smart_account=account, name="SMA")
    services.LicensePool.objects.get_or_create(virtual_account=target, tag=tag("case"))
    services.instance_transfer(instance=inst, target=target, actor="a", now=now)
    inst.refresh_from_db()
    assert inst.virtual_account == target
    assert services.in_use_by_tag(target)[tag("case")] == 2
    assert LicensePool.objects.get(virtual_account=target, tag=tag("case")).purchased == 2


def test_alert_rules_raise_and_clear(va, account, lab):
    now = lab_now(lab)
    services.alerts_refresh(smart_account=account, now=now)
    expiring = CssmAlert.objects.get(alert_type="Licenses Expiring", cleared_at__isnull=True)
    assert expiring.severity == "Minor"
    clock_advance(lab=lab, by=timedelta(days=46))
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    expiring.refresh_from_db()
    assert expiring.cleared_at is not None
    assert CssmAlert.objects.filter(alert_type="Licenses Expired", cleared_at__isnull=True, severity="Major").exists()


def test_failed_to_connect_then_failed_to_renew(agent, token, account, lab):
    assert agent.register(token.value)[0] == 200
    clock_advance(lab=lab, by=timedelta(days=31))
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    assert CssmAlert.objects.filter(alert_type="Product Instance Failed to Connect", cleared_at__isnull=True).exists()
    clock_advance(lab=lab, by=timedelta(days=340))
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    open_types = set(CssmAlert.objects.filter(cleared_at__isnull=True).values_list("alert_type", flat=True))
    assert "Product Instance Failed to Renew" in open_types
    assert "Product Instance Failed to Connect" not in open_types


def test_duplicate_serials_raise_duplicate_licenses(va, account, now):
    _reserved(va, now, serial="DUP1")
    services.reservation_authorize(
        va=va,
        request_code=_request_code("DUP1", pid="C100V"),
        reservation_type="SPECIFIC",
        quantities={tag("case"): 1},
        actor="a",
        now=now,
    )
    assert CssmAlert.objects.filter(alert_type="Duplicate Licenses", cleared_at__isnull=True).exists()


def test_dismissed_alerts_stay_dismissed(account, now):
    services.alerts_refresh(smart_account=account, now=now)
    alert = CssmAlert.objects.filter(cleared_at__isnull=True).first()
    services.alert_dismiss(alerts=CssmAlert.objects.filter(pk=alert.pk), actor="a", now=now)
    services.alerts_refresh(smart_account=account, now=now)
    assert CssmAlert.objects.filter(dedupe_key=alert.dedupe_key, cleared_at__isnull=True).count() == 1
    alert.refresh_from_db()
    assert alert.dismissed_at is not None


def test_preferences_refuse_addresses_outside_the_domain(account, now, django_user_model):
    user = django_user_model.objects.get(username="admin")
    with pytest.raises(ServiceError) as err:
        services.preferences_save(
            user=user,
            smart_account=account,
            daily_summary=True,
            email="me@gmail.com",
            virtual_accounts=[],
            alert_events=[],
            expiring_days=[],
            status_notification=False,
            now=now,
        )
    assert err.value.field == "email"
    pref = services.preferences_save(
        user=user,
        smart_account=account,
        daily_summary=True,
        email="ops@mail.example.com",
        virtual_accounts=list(account.virtual_accounts.all()),
        alert_events=["Licenses Expiring"],
        expiring_days=[],
        status_notification=False,
        now=now,
    )
    assert pref.expiring_days == [90]


def test_virtual_accounts_create_rename_default(account, now):
    va = services.virtual_account_create(smart_account=account, name="Branch", description="", actor="a", now=now)
    with pytest.raises(ServiceError):
        services.virtual_account_create(smart_account=account, name="branch", description="", actor="a", now=now)
    services.virtual_account_rename(va=va, name="Branches", description="x", actor="a", now=now)
    services.virtual_account_set_default(va=va, actor="a", now=now)
    assert list(VirtualAccount.objects.filter(smart_account=account, is_default=True)) == [va]
    lab_va = VirtualAccount.objects.get(smart_account=account, name="Lab")
    with pytest.raises(ServiceError):  # associated with the demo Satellite
        services.virtual_account_set_default(va=lab_va, actor="a", now=now)


def test_smart_account_request_with_the_users_domain_needs_no_approval(lab, now, django_user_model):
    from licensing_core.models import MailMessage

    user = django_user_model.objects.create_user("creator", email="creator@acme.test")
    req = services.smart_account_request(lab=lab, user=user, name="Acme Inc.", domain="acme.test", now=now)
    assert req.status == SmartAccountRequestStatus.PENDING_SETUP
    # The setup e-mail to the Creator goes through the lab's outbox, at the lab time of the request.
    mail = MailMessage.objects.get(lab=lab)
    assert (mail.recipients, mail.lab_time) == (["creator@acme.test"], now)
    assert "Complete" in mail.subject
    sa = services.smart_account_complete(req=req, user=user, now=now)
    assert sa.virtual_accounts.get().is_default


def test_smart_account_request_with_an_edited_domain_needs_approval(lab, now, django_user_model):
    user = django_user_model.objects.create_user("creator", email="creator@acme.test")
    req = services.smart_account_request(lab=lab, user=user, name="Acme", domain="acme-corp.test", now=now)
    assert req.status == SmartAccountRequestStatus.PENDING_APPROVAL
    with pytest.raises(ServiceError):
        services.smart_account_complete(req=req, user=user, now=now)
    services.smart_account_approve(req=req, approve=True, actor="admin", now=now)
    services.smart_account_complete(req=req, user=user, now=now)
    assert SmartAccount.objects.filter(domain="acme-corp.test").exists()


@pytest.mark.parametrize(
    ("name", "domain"), [("Acme<script>", "acme.test"), ("x" * 51, "acme.test"), ("Acme", "nodot")]
)
def test_smart_account_names_and_domains_are_checked(lab, now, django_user_model, name, domain):
    user = django_user_model.objects.create_user("creator", email="creator@acme.test")
    with pytest.raises(ServiceError):
        services.smart_account_request(lab=lab, user=user, name=name, domain=domain, now=now)


def test_pak_conversion_is_recorded_once(va, now):
    services.pak_convert(va=va, pak="ABCD1234EF", tag=tag("ims"), quantity=5, actor="a", now=now)
    assert LicenseTransaction.objects.filter(source="PAK Migration", reference="ABCD1234EF").exists()
    with pytest.raises(ServiceError):
        services.pak_convert(va=va, pak="abcd1234ef", tag=tag("ims"), quantity=5, actor="a", now=now)
