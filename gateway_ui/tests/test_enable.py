"""Enabling Smart Software Licensing: the evaluation period rules (§1.5)."""

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from licensing_core.roles import GatewayRole


def _enable(a):
    now = appliance_now(a)
    services.sl_enable(appliance=a, user=None, now=now)
    assert a.licensing_mode == "classic"  # not live until commit
    services.changes_commit(appliance=a, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    a.refresh_from_db()
    return a


def test_hardware_with_classic_licences_starts_the_evaluation_period(esa1):
    a = _enable(esa1)
    assert a.eval_running_since is not None
    assert a.authorization_state == "eval"
    assert a.licenses.get(code="VOF").state == "eval"
    assert a.licenses.get(code="imh").state == "in_compliance"  # hardware base licence
    assert a.alerts.filter(kind="eval_started").exists()


def test_new_virtual_user_gets_no_evaluation_period(demo_lab):
    a = _enable(Appliance.objects.get(lab=demo_lab, hostname="esa2.example.com"))
    assert a.eval_running_since is None
    assert services.eval_remaining(a, appliance_now(a)).total_seconds() == 0
    assert not a.alerts.filter(kind="eval_started").exists()
    changed = services.licenses_submit(appliance=a, requested={"VOF"}, now=appliance_now(a))
    assert changed == ["Email Security Appliance Outbreak Filters: requested"]
    # No evaluation ever ran: the licences are Not Authorized, not "Eval Expired".
    assert a.licenses.get(code="VOF").state == "not_authorized"
    assert a.licenses.get(code="imh").state == "not_authorized"
    a.refresh_from_db()
    assert a.get_authorization_state_display() == "Not Authorized"


def test_a_partial_reservation_on_a_new_virtual_gateway(demo_lab):
    """SLR of Mail Handling only: the product is Authorized - Reserved, the
    licences the code does not cover stay Not Authorized (guide, Updating
    License Reservation)."""
    from cssm_portal import services as cssm
    from cssm_portal.models import VirtualAccount
    from licensing_core.catalogue import license_by_code
    from licensing_core.clock import lab_now

    a = _enable(Appliance.objects.get(lab=demo_lab, hostname="esa2.example.com"))
    now = appliance_now(a)
    services.registration_mode_set(appliance=a, mode="license_reservation", now=now)
    request_code = services.reservation_request_code(appliance=a, now=now)
    va = VirtualAccount.objects.get(smart_account__lab=demo_lab, name="ESA")
    mail_handling = license_by_code("ESA", "imh").entitlement_tag
    reservation = cssm.reservation_authorize(
        va=va,
        request_code=request_code,
        reservation_type="SPECIFIC",
        quantities={mail_handling: 1},
        actor="admin",
        now=lab_now(demo_lab),
    )
    services.reservation_install(appliance=a, code=reservation.authorization_code, now=now)
    a.refresh_from_db()
    assert a.licenses.get(code="imh").state == "reserved_in_compliance"
    assert a.licenses.get(code="bounce_verification").state == "not_authorized"
    assert a.get_authorization_state_display() == "Authorized - Reserved"


def test_abandon_changes_leaves_classic(esa1):
    now = appliance_now(esa1)
    services.sl_enable(appliance=esa1, user=None, now=now)
    services.changes_abandon(appliance=esa1, user=None, now=now)
    esa1.refresh_from_db()
    assert esa1.licensing_mode == "classic"
    assert not esa1.staged_changes.exists()
