"""Every list page runs the same number of queries for 10 rows as for 200."""

import uuid
from datetime import timedelta

import pytest
from django.db import reset_queries
from django.urls import reverse

from cssm_portal.models import (
    CssmAlert,
    LicensePool,
    LicenseTransaction,
    LicenseUsage,
    RegistrationToken,
    SatelliteInstance,
    TransactionSource,
)
from cssm_portal.tests.conftest import instances_bulk
from licensing_core.models import Event

pytestmark = pytest.mark.django_db


def _add(kind, n, *, lab, account, va, now, start=0):
    rng = range(start, start + n)
    if kind == "tokens":
        RegistrationToken.objects.bulk_create(
            RegistrationToken(
                virtual_account=va,
                token_id=uuid.uuid4(),
                value=f"dG9rZW4{i:08d}",
                created_by="admin",
                created_at=now,
                expires_at=now + timedelta(days=30),
                max_uses=10,
            )
            for i in rng
        )
    elif kind == "pools":
        LicensePool.objects.bulk_create(
            LicensePool(virtual_account=va, tag=f"regid.test_{i}", purchased=5) for i in rng
        )
    elif kind == "instances":
        insts = instances_bulk(lab=lab, va=va, now=now, serial="QC{}", name="qc{}", numbers=rng)
        LicenseUsage.objects.bulk_create(LicenseUsage(instance=p, tag="regid.x", count=1) for p in insts)
    elif kind == "events":
        Event.objects.bulk_create(
            Event(
                lab=lab,
                at=now,
                side="cssm",
                kind="cssm.test",
                message=f"event {i}",
                actor="admin",
                smart_account_id=account.pk,
                virtual_account_id=va.pk,
            )
            for i in rng
        )
    elif kind == "alerts":
        CssmAlert.objects.bulk_create(
            CssmAlert(
                smart_account=account,
                virtual_account=va,
                alert_type="Restricted License Not Available",
                severity="Minor",
                message=f"alert {i}",
                dedupe_key=f"manual:{i}",
                raised_at=now,
            )
            for i in rng
        )
    elif kind == "transactions":
        LicenseTransaction.objects.bulk_create(
            LicenseTransaction(
                smart_account=account,
                virtual_account=va,
                at=now,
                tag="regid.t",
                sku="SKU",
                license_name=f"lic {i}",
                quantity=1,
                source=TransactionSource.DLC,
            )
            for i in rng
        )
    elif kind == "satellites":
        sats = SatelliteInstance.objects.bulk_create(
            SatelliteInstance(smart_account=account, name=f"sat{i}", version="8", last_sync=now) for i in rng
        )
        for s in sats:
            s.virtual_accounts.add(va)


PAGES = [
    ("general", True, "tokens", ""),
    ("licenses", True, "pools", ""),
    ("licenses", True, "pools", "?tx=1"),
    ("instances", True, "instances", ""),
    ("va_events", True, "events", ""),
    ("alerts", False, "alerts", ""),
    ("activity", False, "transactions", ""),
    ("activity_events", False, "events", ""),
    ("convert", False, "transactions", ""),
    ("on_prem", False, "satellites", ""),
    ("reports", False, "pools", "?report=licenses"),
    ("reports", False, "instances", "?report=instances"),
]


@pytest.mark.parametrize(("name", "per_va", "kind", "query"), PAGES)
def test_list_page_query_count_does_not_grow_with_rows(
    client,
    login_as,
    lab,
    account,
    va,
    now,
    django_assert_num_queries,
    django_assert_max_num_queries,
    name,
    per_va,
    kind,
    query,
):
    login_as("admin")
    args = ["demo", account.pk] + ([va.pk] if per_va else [])
    url = reverse(f"cssm:{name}", args=args) + query
    ctx = {"lab": lab, "account": account, "va": va, "now": now}
    _add(kind, 10, **ctx)
    assert client.get(url).status_code == 200  # warm-up: the alert rules settle
    reset_queries()  # the bounded query log may be full after the demo lab build
    with django_assert_max_num_queries(100) as small:
        assert client.get(url).status_code == 200
    expected = len(small.captured_queries)  # read now: the next request clears the log
    assert expected > 0
    _add(kind, 190, start=10, **ctx)
    client.get(url)
    reset_queries()
    with django_assert_num_queries(expected):
        response = client.get(url)
    assert response.status_code == 200
    # The page shows a full page of rows, not just the first ten.
    assert "of 2" in response.content.decode() or kind == "pools"
