"""LicensePool.in_use is kept with every usage write, and a renewal rewrites
the usage rows' status only when the verdict changes."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from cssm_portal import selectors, services
from cssm_portal.models import LicensePool, LicenseUsage, ProductInstance, UsageStatus, VirtualAccount
from cssm_portal.tests.conftest import instances_bulk, tag
from cssm_portal.tests.randomized import Driver

pytestmark = pytest.mark.django_db


def assert_pools_consistent(account):
    """Every (account, tag) with usage has a pool whose in_use is the usage sum,
    and every non-reserved usage row carries its pool's last verdict."""
    sums = {
        (r["instance__virtual_account_id"], r["tag"]): r["total"]
        for r in LicenseUsage.objects.filter(instance__virtual_account__smart_account=account)
        .values("instance__virtual_account_id", "tag")
        .annotate(total=Sum("count"))
    }
    pools = LicensePool.objects.filter(virtual_account__smart_account=account)
    pools = {(p.virtual_account_id, p.tag): p for p in pools}
    assert set(sums) <= set(pools)
    assert {k: p.in_use for k, p in pools.items() if p.in_use} == {k: v for k, v in sums.items() if v}
    for u in LicenseUsage.objects.filter(instance__virtual_account__smart_account=account).exclude(
        status=UsageStatus.RESERVED
    ):
        pool = pools[(u.instance.virtual_account_id, u.tag)]
        expected = UsageStatus.AUTHORIZED if pool.in_compliance else UsageStatus.OUT_OF_COMPLIANCE
        assert u.status == expected, (u.instance.name, u.tag)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_in_use_equals_the_usage_rows_after_any_sequence_of_services(seed, lab, account, make_agent):
    driver = Driver(seed=seed, lab=lab, account=account, make_agent=make_agent)
    for _ in range(45):
        driver.step()
        assert_pools_consistent(account)
    print("\n".join(driver.log))
    # The sequence did exercise the interesting paths.
    ops = {line.split(":")[0] for line in driver.log}
    assert {"register", "authorize", "transfer", "reserve", "remove"} <= ops


def test_usage_of_a_tag_without_a_pool_gets_one_with_nothing_purchased(agent, token, account, now):
    assert agent.register(token.value)[0] == 200
    sma = VirtualAccount.objects.get(smart_account=account, name="SMA")  # holds no ESA licences
    services.instance_transfer(instance=ProductInstance.objects.get(udi=agent.udi), target=sma, actor="a", now=now)
    status, answer = agent.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 2}]})
    assert answer["licenses"][0]["status"] == "out_of_compliance"
    pool = selectors.pools([sma]).get(tag=tag("VOF"))
    assert (pool.purchased, pool.in_use, pool.balance) == (0, 2, -2)


def test_a_renewal_with_unchanged_usage_writes_no_usage_row(agent, token, pool):
    assert agent.register(token.value)[0] == 200
    usage = {"usage": [{"tag": tag("VOF"), "count": 1}, {"tag": tag("case"), "count": 1}]}
    assert agent.send("authorize", usage)[0] == 200
    with CaptureQueriesContext(connection) as ctx:
        assert agent.send("authorize", usage)[0] == 200
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(("UPDATE", "INSERT", "DELETE"))]
    assert not [w for w in writes if "licenseusage" in w or "licensepool" in w]


def test_the_verdict_flips_every_row_only_when_it_changes(make_agent, token, pool):
    a, b = make_agent(), make_agent()
    for agent in (a, b):
        assert agent.register(token.value)[0] == 200
    a.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 2}]})
    a_row = LicenseUsage.objects.get(instance__udi=a.udi)
    assert a_row.status == UsageStatus.AUTHORIZED
    b.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 1}]})  # 3 in use, 2 purchased
    a_row.refresh_from_db()
    assert a_row.status == UsageStatus.OUT_OF_COMPLIANCE
    pool.refresh_from_db()
    assert (pool.in_use, pool.in_compliance) == (3, False)
    with CaptureQueriesContext(connection) as ctx:  # still short: nothing to flip
        b.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 1}]})
    assert not [q for q in ctx.captured_queries if q["sql"].startswith('UPDATE "cssm_portal_licenseusage"')]
    b.send("authorize", {"usage": []})  # back to 2 of 2
    a_row.refresh_from_db()
    assert a_row.status == UsageStatus.AUTHORIZED


def test_the_database_refuses_negative_in_use(va):
    with pytest.raises(IntegrityError), transaction.atomic():
        LicensePool.objects.create(virtual_account=va, tag="x", in_use=-1)


def test_pools_recount_counts_bulk_loaded_usage(lab, account, va, now):
    vof = LicensePool.objects.get(virtual_account=va, tag=tag("VOF"))
    insts = instances_bulk(lab=lab, va=va, now=now, serial="BULK{}", name="bulk{}", numbers=range(3))
    LicenseUsage.objects.bulk_create(LicenseUsage(instance=p, tag=tag("VOF"), count=2) for p in insts)
    LicenseUsage.objects.bulk_create(LicenseUsage(instance=p, tag="regid.unheld", count=1) for p in insts)
    services.pools_recount(virtual_accounts=[va])
    vof.refresh_from_db()
    assert vof.in_use == 6
    assert LicensePool.objects.get(virtual_account=va, tag="regid.unheld").in_use == 3
    assert_pools_consistent(account)
