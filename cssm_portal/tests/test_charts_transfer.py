"""The usage chart follows product instances moved between Virtual Accounts (with their usage)."""

import uuid
from datetime import timedelta

import pytest

from cssm_portal import charts, services
from cssm_portal.models import ProductInstance, VirtualAccount
from cssm_portal.tests.conftest import tag

pytestmark = pytest.mark.django_db

VOF = tag("VOF")


def _series(lab, vas, start, end):
    in_use = sum(services.in_use_by_tag(va).get(VOF, 0) for va in vas)
    purchased = sum(p.purchased for va in vas for p in va.pools.filter(tag=VOF))
    return [
        (at, u)
        for at, _, u in charts.usage_series(
            lab=lab, vas=vas, tag=VOF, start=start, now=end, purchased_now=purchased, in_use_now=in_use
        )
    ]


def _moved(lab, va, other, *, count, t0, t1):
    """An ESA instance using `count` VOF from t0, moved to `other` at t1."""
    instance = ProductInstance.objects.create(
        lab=lab, virtual_account=va, piid=uuid.uuid4(), udi=f"PID:C395,SN:CHART{count}", name=f"chart{count}",
        product="ESA", pid="C395", serial=f"CHART{count}", registered_at=t0, last_contact=t0,
    )  # fmt: skip
    services.instance_authorize(instance=instance, usage=[(VOF, count)], now=t0)
    services.instance_transfer(instance=instance, target=other, actor="admin", now=t1)
    return instance


def test_in_use_moves_with_a_transferred_instance(lab, account, va, now):
    other = VirtualAccount.objects.get(smart_account=account, name="Lab")
    t0, t1, t2 = now - timedelta(days=20), now - timedelta(days=10), now - timedelta(days=5)
    instance = _moved(lab, va, other, count=3, t0=t0, t1=t1)
    services.instance_authorize(instance=instance, usage=[(VOF, 1)], now=t2)  # then it uses fewer, in Lab
    start = now - timedelta(days=30)
    # The source: 0, then 3 from t0, gone with the instance at t1 (not 3 forever, nor negative before).
    assert _series(lab, [va], start, now) == [(start, 0), (t0, 3), (t1, 0), (now, 0)]
    # The target: nothing before the transfer; 3 arrive at t1; 1 from t2.
    assert _series(lab, [other], start, now) == [(start, 0), (t1, 3), (t2, 1), (now, 1)]
    # Both together: the transfer changes nothing.
    assert _series(lab, [va, other], start, now) == [(start, 0), (t0, 3), (t2, 1), (now, 1)]


def test_the_report_chart_of_the_source_account_ends_at_its_own_use(lab, account, va, now):
    other = VirtualAccount.objects.get(smart_account=account, name="Lab")
    _moved(lab, va, other, count=2, t0=now - timedelta(days=20), t1=now - timedelta(days=10))
    chart = charts.usage_chart(lab=lab, vas=[va], now=now, tag=VOF)
    assert chart.current_in_use == 0
    # The in-use line starts at 0 (no instance used VOF in ESA 90 days ago), not at -2.
    first_y = float(chart.in_use_points.split()[0].split(",")[1])
    assert first_y == chart.plot_bottom
