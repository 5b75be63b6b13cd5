"""A specific reservation of a term licence: warnings before its end date and
the expiry alert on it (guide, Alerts: "[SLR] Reservation of specific feature
license is expired" and the warnings before it; cadence §9 Q6)."""

from datetime import timedelta

import pytest

from cssm_portal import services as cssm
from cssm_portal.models import LicensePool, VirtualAccount
from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from licensing_core import schedules
from licensing_core.catalogue import license_by_code
from licensing_core.clock import clock_freeze, lab_now
from licensing_core.roles import GatewayRole
from licensing_core.sweeps import lab_advance_by

pytestmark = pytest.mark.django_db


def _reserve_amp(lab):
    clock_freeze(lab=lab)
    esa = Appliance.objects.get(lab=lab, hostname="esa2.example.com")
    now = appliance_now(esa)
    services.sl_enable(appliance=esa, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    services.registration_mode_set(appliance=esa, mode="license_reservation", now=now)
    request_code = services.reservation_request_code(appliance=esa, now=now)
    va = VirtualAccount.objects.get(smart_account__lab=lab, name="ESA")
    amp = license_by_code("ESA", "amp_file_analysis").entitlement_tag
    pool = LicensePool.objects.get(virtual_account=va, tag=amp)
    assert pool.license_type == "TERM"
    reservation = cssm.reservation_authorize(
        va=va, request_code=request_code, reservation_type="SPECIFIC", quantities={amp: 1}, actor="admin",
        now=lab_now(lab),
    )  # fmt: skip
    services.reservation_install(appliance=esa, code=reservation.authorization_code, now=now)
    esa.refresh_from_db()
    return esa, schedules.term_end_at(pool.end_date)


def test_warnings_before_the_end_of_a_reserved_term_licence_and_the_expiry(demo_lab):
    esa, end = _reserve_amp(demo_lab)
    assert esa.licenses.get(code="amp_file_analysis").state == "reserved_in_compliance"
    lab_advance_by(lab=demo_lab, by=(end - lab_now(demo_lab)) + timedelta(days=2))
    warnings = list(esa.alerts.filter(kind="reservation_expiry_warning").order_by("at"))
    expired = list(esa.alerts.filter(kind="reservation_expired"))
    installed_at = esa.alerts.earliest("at").at
    days_before = [round((end - w.at) / timedelta(days=1)) for w in warnings]
    # Installed 44 days before the end, past the 60-day point: the overdue
    # warning goes out at once (never the stale ones before it), then each
    # day of the cadence still ahead, once each.
    ahead = [d for d in schedules.LICENSE_EXPIRY_WARNING_DAYS if end - timedelta(days=d) > installed_at]
    assert days_before == [round((end - installed_at) / timedelta(days=1)), *ahead]
    assert len(expired) == 1
    assert abs(expired[0].at - end) < timedelta(seconds=1)
