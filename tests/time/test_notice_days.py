"""Countdown notices fall on exactly the days the guide names (domain-notes §1.5, §1.8, §7.1 G4/G15)."""

from datetime import timedelta

import pytest

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from licensing_core.clock import lab_now
from licensing_core.roles import GatewayRole
from licensing_core.sweeps import lab_advance_by


def _enable(esa):
    now = appliance_now(esa)
    services.sl_enable(appliance=esa, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    esa.refresh_from_db()
    return esa


def _notices(esa, kind, start):
    return [
        ((a.at - start) / timedelta(days=1), a.severity, a.text) for a in esa.alerts.filter(kind=kind).order_by("at")
    ]


@pytest.mark.django_db(transaction=True)
def test_evaluation_notices_on_the_90th_60th_30th_15th_5th_and_last_day_and_at_expiry(frozen_lab):
    esa = _enable(Appliance.objects.get(lab=frozen_lab, hostname="esa1.example.com"))
    start = lab_now(frozen_lab)
    assert esa.eval_running_since == start
    lab_advance_by(lab=frozen_lab, by=timedelta(days=100))
    left = "The evaluation period expires in {} day(s). Register the product with Smart Software Manager."
    assert _notices(esa, "eval_expiry", start) == [
        (0.0, "Warning", left.format(90)),
        (30.0, "Warning", left.format(60)),
        (60.0, "Warning", left.format(30)),
        (75.0, "Warning", left.format(15)),
        (85.0, "Warning", left.format(5)),
        (89.0, "Warning", left.format(1)),
        (90.0, "Critical", "The evaluation period has expired. Register the product with Smart Software Manager."),
    ]
    esa.refresh_from_db()
    assert esa.authorization_state == "eval_expired"
    assert esa.next_due_at is None  # nothing left to fire


@pytest.mark.django_db(transaction=True)
def test_a_sweep_that_fell_behind_sends_only_the_latest_notice(frozen_lab):
    """The beat was down for 40 days: the 90- and 60-day notices are history, only "30 days" goes out."""
    from licensing_core.sweeps import lab_sweep

    esa = _enable(Appliance.objects.get(lab=frozen_lab, hostname="esa1.example.com"))
    start = lab_now(frozen_lab)
    lab_sweep(lab=frozen_lab, now=start)
    assert [n[2][:44] for n in _notices(esa, "eval_expiry", start)] == ["The evaluation period expires in 90 day(s). "]
    later = start + timedelta(days=61)
    lab_sweep(lab=frozen_lab, now=later)
    lab_sweep(lab=frozen_lab, now=later)
    assert [n[0] for n in _notices(esa, "eval_expiry", start)] == [0.0, 61.0]
    assert "30 day(s)" in esa.alerts.filter(kind="eval_expiry").order_by("-at").first().text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_out_of_compliance_notices_on_the_30th_15th_5th_and_last_day_and_at_expiry(frozen_lab, live_server, settings):
    from cssm_portal.models import LicensePool, VirtualAccount
    from cssm_portal.services import token_create
    from licensing_core.catalogue import licenses_for

    settings.CSSM_BASE_URL = live_server.url
    va = VirtualAccount.objects.get(smart_account__lab=frozen_lab, name="ESA")
    for lic in licenses_for("ESA"):  # everything purchased but Outbreak Filters
        LicensePool.objects.update_or_create(
            virtual_account=va, tag=lic.entitlement_tag, defaults={"purchased": 0 if lic.code == "VOF" else 10}
        )
    esa = _enable(Appliance.objects.get(lab=frozen_lab, hostname="esa2.example.com"))
    token = token_create(
        va=va,
        actor="a",
        description="",
        expire_days=30,
        max_uses=None,
        export_controlled=False,
        now=lab_now(frozen_lab),
    )
    services.agent_register(appliance=esa, token=token.value, force=False, now=appliance_now(esa))
    esa.refresh_from_db()
    assert esa.registration_state == "registered", esa.registration_error
    services.licenses_submit(appliance=esa, requested={"VOF"}, now=appliance_now(esa))
    row = esa.licenses.get(code="VOF")
    assert row.state == "ooc_grace"
    start = row.ooc_since
    lab_advance_by(lab=frozen_lab, by=timedelta(days=31))
    name = "Email Security Appliance Outbreak Filters"
    left = "The out of compliance grace period for {} expires in {} day(s)."
    got = _notices(esa, "ooc_grace_expiry", start)
    assert [(d, s) for d, s, _ in got] == [
        (0.0, "Warning"),
        (15.0, "Warning"),
        (25.0, "Warning"),
        (29.0, "Warning"),
        (30.0, "Critical"),
    ]
    assert [t for _, _, t in got][:4] == [left.format(name, d) for d in (30, 15, 5, 1)]
    assert (
        got[4][2] == f"The out of compliance grace period for {name} has expired. The feature is no longer available."
    )
    assert esa.licenses.get(code="VOF").state == "ooc_expired"
    assert _notices(esa, "feature_expired", start) == [
        (30.0, "Critical", f"The {name} feature has expired and is no longer available.")
    ]
