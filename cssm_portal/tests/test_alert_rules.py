"""The alert rules in SQL hold for exactly what the row-by-row rules held for, and
the services' targeted refreshes leave the same open alerts as a whole-account
refresh would, on randomized accounts."""

from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from cssm_portal import alert_rules, services
from cssm_portal.models import CssmAlert, LicensePool, LicenseType, LicenseUsage, ProductInstance, UsageStatus
from cssm_portal.sweeps import cssm_process
from cssm_portal.tests.randomized import Driver
from licensing_core import formats, schedules
from licensing_core.alerts import CssmAlertType as T
from licensing_core.clock import lab_now

pytestmark = pytest.mark.django_db


def reference_desired(smart_account, now):
    """The rules as they were written before the SQL rewrite: every instance of the
    account loaded and checked in Python, in use summed from the usage rows."""
    vas = {va.pk: va for va in smart_account.virtual_accounts.all()}
    pools = list(LicensePool.objects.filter(virtual_account__smart_account=smart_account))
    use = defaultdict(int)
    reserved_tags = set()
    for row in (
        LicenseUsage.objects.filter(instance__virtual_account__smart_account=smart_account)
        .values("instance__virtual_account_id", "tag", "status")
        .annotate(total=Sum("count"))
    ):
        key = (row["instance__virtual_account_id"], row["tag"])
        use[key] += row["total"]
        if row["status"] == UsageStatus.RESERVED:
            reserved_tags.add(key)
    pool_by = {(p.virtual_account_id, p.tag): p for p in pools}
    out = {}
    for (va_id, tag), used in use.items():
        pool = pool_by.get((va_id, tag))
        have = services.pool_effective(pool, now) if pool else 0
        if used > have:
            out[f"insufficient:{va_id}:{tag}"] = (
                T.INSUFFICIENT_LICENSES,
                vas[va_id],
                f'The Virtual Account "{vas[va_id].name}" has a shortage of {services.license_name(tag)} '
                f"({used} in use, {have} purchased).",
            )
    for p in pools:
        if p.license_type != LicenseType.TERM or not p.end_date or p.purchased == 0:
            continue
        days = schedules.current_expiry_warning(p.end_date, now=now)
        va = vas[p.virtual_account_id]
        stamp = p.end_date.isoformat()
        name = services.license_name(p.tag)
        if days == 0:
            out[f"expired:{va.pk}:{p.tag}:{stamp}"] = (
                T.LICENSES_EXPIRED,
                va,
                f'{p.purchased} {name} licenses in Virtual Account "{va.name}" expired on '
                f"{formats.cssm_date(p.end_date)}.",
            )
            if (va.pk, p.tag) in reserved_tags:
                out[f"reserved_expired:{va.pk}:{p.tag}:{stamp}"] = (
                    T.RESERVED_LICENSE_EXPIRED,
                    va,
                    f'Reserved {name} licenses in Virtual Account "{va.name}" expired on '
                    f"{formats.cssm_date(p.end_date)}.",
                )
        elif days is not None:
            left = (schedules.term_end_at(p.end_date) - now).days + 1
            out[f"expiring:{va.pk}:{p.tag}:{stamp}"] = (
                T.LICENSES_EXPIRING,
                va,
                f'{p.purchased} {name} licenses in Virtual Account "{va.name}" expire on '
                f"{formats.cssm_date(p.end_date)} (in {left} days).",
            )
    serials = defaultdict(list)
    for inst in ProductInstance.objects.filter(virtual_account__smart_account=smart_account).select_related(
        "reservation"
    ):
        va = vas[inst.virtual_account_id]
        serials[inst.serial].append(inst)
        if inst.is_reserving:
            if inst.reservation.pending:
                out[f"auth_pending:{inst.piid}"] = (
                    T.AUTHORIZATION_PENDING,
                    va,
                    f'The reservation update of "{inst.name}" is waiting for the confirmation code from the product.',
                )
            continue
        status = schedules.instance_connect_status(inst.last_contact, now=now)
        if status == "failed_to_renew":
            out[f"failed_renew:{inst.piid}"] = (
                T.PRODUCT_INSTANCE_FAILED_TO_RENEW,
                va,
                f'Product instance "{inst.name}" has not connected within its maximum renewal period '
                f"(last contact {formats.cssm_datetime(inst.last_contact)}).",
            )
        elif status == "failed_to_connect":
            out[f"failed_connect:{inst.piid}"] = (
                T.PRODUCT_INSTANCE_FAILED_TO_CONNECT,
                va,
                f'Product instance "{inst.name}" has not connected during its renewal period '
                f"(last contact {formats.cssm_datetime(inst.last_contact)}).",
            )
    for serial, group in serials.items():
        if len(group) > 1:
            out[f"duplicate:{serial}"] = (
                T.DUPLICATE_LICENSES,
                vas[group[0].virtual_account_id],
                f"Product instances {', '.join(sorted(i.name for i in group))} share serial number {serial} "
                "and consume licenses twice.",
            )
    return out


def _open_rule_alerts(account) -> dict[str, str]:
    return dict(
        CssmAlert.objects.filter(
            smart_account=account, cleared_at__isnull=True, alert_type__in=list(alert_rules.RULE_TYPES)
        ).values_list("dedupe_key", "alert_type")
    )


def _plain(desired):
    return {k: (t, va.pk if va else None, m) for k, (t, va, m) in desired.items() if not k.startswith("sat_")}


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_the_sql_rules_hold_for_what_the_row_by_row_rules_held_for(seed, lab, account, make_agent):
    driver = Driver(seed=seed, lab=lab, account=account, make_agent=make_agent)
    seen = set()
    for _ in range(40):
        driver.step()
        now = lab_now(lab)
        for later in (now, now + timedelta(days=31), now + timedelta(days=400)):
            new = _plain(alert_rules.alerts_desired(smart_account=account, now=later))
            assert new == _plain(reference_desired(account, later))
            seen |= {v[0] for v in new.values()}
    # The sequences reached the interesting rules.
    assert {T.INSUFFICIENT_LICENSES, T.PRODUCT_INSTANCE_FAILED_TO_CONNECT, T.LICENSES_EXPIRED} <= seen


def test_targeted_refreshes_leave_the_alerts_a_full_refresh_would(lab, account, make_agent):
    cssm_process(lab, lab_now(lab))  # the account's first, full check
    raised = set()
    for seed in (21, 22, 23, 24):  # one account, four random runs in a row
        driver = Driver(seed=seed, lab=lab, account=account, make_agent=make_agent)
        for _ in range(35):
            op = driver.step()
            now = lab_now(lab)
            if op == "time_passes":
                cssm_process(lab, now)  # what the lab sweep does when time moves
            opened = _open_rule_alerts(account)
            raised |= set(opened.values())
            desired = alert_rules.alerts_desired(smart_account=account, now=now)
            assert opened == {k: t for k, (t, _, _) in desired.items()}, (seed, driver.log[-1])
    assert {T.INSUFFICIENT_LICENSES, T.DUPLICATE_LICENSES, T.AUTHORIZATION_PENDING} <= raised
    assert {T.PRODUCT_INSTANCE_FAILED_TO_CONNECT, T.LICENSES_EXPIRED} <= raised


def test_a_renewal_refreshes_only_its_own_alerts(make_agent, token, account, lab, django_assert_max_num_queries):
    """The query count of a renewal does not grow with the account's failing instances."""
    agents = [make_agent() for _ in range(3)]
    for agent in agents:
        assert agent.register(token.value)[0] == 200

    def renewal_queries(agent) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert agent.send("authorize", {"usage": []})[0] == 200
        return len(ctx.captured_queries)

    before = renewal_queries(agents[0])
    ProductInstance.objects.filter(udi__in=[a.udi for a in agents[1:]]).update(
        last_contact=lab_now(lab) - timedelta(days=40)
    )
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    assert CssmAlert.objects.filter(alert_type=T.PRODUCT_INSTANCE_FAILED_TO_CONNECT, cleared_at__isnull=True).count()
    assert renewal_queries(agents[0]) == before


def test_a_renewal_clears_its_failed_to_connect_alert(agent, token, account, lab):
    assert agent.register(token.value)[0] == 200
    ProductInstance.objects.filter(udi=agent.udi).update(last_contact=lab_now(lab) - timedelta(days=40))
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    alert = CssmAlert.objects.get(alert_type=T.PRODUCT_INSTANCE_FAILED_TO_CONNECT, cleared_at__isnull=True)
    assert agent.send("authorize", {"usage": []})[0] == 200
    alert.refresh_from_db()
    assert alert.cleared_at == lab_now(lab)


def test_the_sweep_refresh_reads_only_failing_instances(lab, account, make_agent, token):
    """A due sweep loads the failing instances, not every instance of the account."""
    agents = [make_agent() for _ in range(4)]
    for agent in agents:
        assert agent.register(token.value)[0] == 200
    cssm_process(lab, lab_now(lab))
    later = lab_now(lab) + timedelta(days=31)
    ProductInstance.objects.filter(udi=agents[0].udi).update(last_contact=later)
    with CaptureQueriesContext(connection) as ctx:
        cssm_process(lab, later)
    instance_reads = [q["sql"] for q in ctx.captured_queries if 'FROM "cssm_portal_productinstance"' in q["sql"]]
    assert instance_reads
    assert all("last_contact" in q for q in instance_reads)
    assert not any("GROUP BY" in q and "serial" in q for q in instance_reads)
    assert set(
        CssmAlert.objects.filter(alert_type=T.PRODUCT_INSTANCE_FAILED_TO_CONNECT, cleared_at__isnull=True).values_list(
            "message", flat=True
        )
    ) == {
        f'Product instance "{a.hostname}" has not connected during its renewal period (last contact '
        f"{formats.cssm_datetime(ProductInstance.objects.get(udi=a.udi).last_contact)})."
        for a in agents[1:]
    }


@pytest.mark.parametrize("batched", [False, True])
def test_an_id_renewal_is_a_contact_and_clears_failed_to_connect(client, agent, token, account, lab, batched):
    import json

    from licensing_core import pki

    assert agent.register(token.value)[0] == 200
    ProductInstance.objects.filter(udi=agent.udi).update(last_contact=lab_now(lab) - timedelta(days=40))
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    alert = CssmAlert.objects.get(alert_type=T.PRODUCT_INSTANCE_FAILED_TO_CONNECT, cleared_at__isnull=True)
    csr = pki.make_csr(key_pem=agent.key, common_name=agent.hostname, udi=agent.udi).decode()
    envelope = agent.envelope("renew_id", {"csr": csr})
    if batched:
        body = {"protocol": "smart-agent/1", "lab": lab.slug, "messages": [envelope]}
        response = client.post("/licservice/license/batch", data=json.dumps(body), content_type="application/json")
        assert response.json()["answers"][0]["status"] == "ok"
    else:
        assert agent.post(envelope)[0] == 200
    alert.refresh_from_db()
    assert alert.cleared_at == lab_now(lab)
