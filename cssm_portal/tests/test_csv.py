"""CSV exports stream from values_list(...).iterator(): the same bytes as the
in-memory exports they replaced, and a fixed number of queries whatever the
row count."""

import csv
import io

import pytest
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cssm_portal import selectors, services
from cssm_portal.models import CssmAlert, LicenseTransaction, TransactionSource
from cssm_portal.tests.conftest import instances_bulk, tag
from licensing_core import formats
from licensing_core.models import Event

pytestmark = pytest.mark.django_db


def _expected(header, rows) -> str:
    """The export as the in-memory version wrote it (model instances, one writer)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([("'" + c) if isinstance(c, str) and c[:1] in "=+-@" else c for c in row])
    return out.getvalue()


def _body(response) -> str:
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content).decode()


def _add_rows(*, lab, account, va, now, n, start=0):
    Event.objects.bulk_create(
        Event(
            lab=lab,
            at=now,
            side="cssm",
            kind="cssm.test",
            message=("=HYPERLINK(1)", "+1", "-2", "@x", "plain, with comma")[i % 5] + f" {i}",
            actor="admin",
            smart_account_id=account.pk,
            virtual_account_id=va.pk,
        )
        for i in range(start, start + n)
    )
    LicenseTransaction.objects.bulk_create(
        LicenseTransaction(
            smart_account=account,
            virtual_account=va,
            at=now,
            tag=tag("VOF"),
            sku="=SKU",
            license_name=f"lic {i}",
            quantity=1,
            source=TransactionSource.DLC,
        )
        for i in range(start, start + n)
    )
    CssmAlert.objects.bulk_create(
        CssmAlert(
            smart_account=account,
            virtual_account=va if i % 2 else None,
            alert_type="Restricted License Not Available",
            severity="Minor",
            message=f"-alert {i}",
            dedupe_key=f"csv:{i}",
            raised_at=now,
        )
        for i in range(start, start + n)
    )
    instances_bulk(lab=lab, va=va, now=now, serial="CSV{}", name="@csv{}", numbers=range(start, start + n))


@pytest.fixture
def data(lab, account, va, now, agent, token):
    assert agent.register(token.value)[0] == 200
    agent.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 3}]})
    _add_rows(lab=lab, account=account, va=va, now=now, n=12)


def _exports(account, va, lab):
    """(method, url, data, expected-content builder) for every export."""
    sa_url = lambda name: reverse(f"cssm:{name}", args=[lab.slug, account.pk])  # noqa: E731
    va_url = lambda name: reverse(f"cssm:{name}", args=[lab.slug, account.pk, va.pk])  # noqa: E731
    vas = list(account.virtual_accounts.all())

    def licenses():
        return _expected(
            ["License", "SKU", "Billing", "Purchased", "In Use", "Balance", "Expiration"],
            [
                [
                    p.name,
                    services.license_sku(p.tag),
                    "Prepaid",
                    p.purchased,
                    p.in_use,
                    p.balance,
                    formats.cssm_term(p.end_date),
                ]
                for p in selectors.pools([va]).order_by("name")
            ],
        )

    def events(qs):
        return lambda: _expected(
            ["Message", "Time", "User"],
            [[e.message, formats.cssm_datetime(e.at), e.actor] for e in qs.order_by("-at", "-id")],
        )

    def alerts():
        qs = selectors.alerts(account, vas)
        return _expected(
            ["Sev", "Alert Type", "Alert Date", "Message", "Virtual Account"],
            [
                [
                    a.severity,
                    a.alert_type,
                    formats.cssm_date(a.raised_at),
                    a.message,
                    a.virtual_account.name if a.virtual_account else "",
                ]
                for a in qs.order_by("sev_rank", "-raised_at")
            ],
        )

    def licenses_report():
        return _expected(
            ["Virtual Account", "License", "SKU", "Billing", "Purchased", "In Use", "Balance", "Expiration"],
            [
                [
                    p.virtual_account.name,
                    p.name,
                    services.license_sku(p.tag),
                    "Prepaid",
                    p.purchased,
                    p.in_use,
                    p.balance,
                    formats.cssm_term(p.end_date),
                ]
                for p in selectors.pools(vas).order_by("virtual_account__name", "name")
            ],
        )

    def instances_report():
        return _expected(
            ["Name", "Product Type", "UDI", "Virtual Account", "Last Contact", "Licenses In Use"],
            [
                [
                    i.name,
                    i.product,
                    i.udi,
                    i.virtual_account.name,
                    formats.cssm_datetime(i.last_contact),
                    i.licenses_in_use,
                ]
                for i in selectors.instances(vas).order_by("name")
            ],
        )

    def transactions():
        return _expected(
            [
                "Transaction Date",
                "License SKU",
                "License",
                "Quantity",
                "License Expiration",
                "Virtual Account",
                "Source",
            ],
            [
                [
                    formats.cssm_datetime(tx.at),
                    tx.sku,
                    tx.license_name,
                    tx.quantity,
                    formats.cssm_term(tx.end_date),
                    tx.virtual_account.name,
                    tx.source,
                ]
                for tx in selectors.transactions(account, vas).order_by("-at", "-id")
            ],
        )

    return {
        "licenses_csv": ("get", va_url("licenses_csv"), None, f"licenses-{va.name}.csv", licenses),
        "va_events_csv": (
            "get",
            va_url("va_events_csv"),
            None,
            f"events-{va.name}.csv",
            events(selectors.events(lab=lab, va=va)),
        ),
        "alerts": ("post", sa_url("alerts_action"), {"action": "csv"}, "alerts.csv", alerts),
        "licenses_report": (
            "get",
            sa_url("reports") + "?report=licenses&format=csv",
            None,
            "licenses-report.csv",
            licenses_report,
        ),
        "instances_report": (
            "get",
            sa_url("reports") + "?report=instances&format=csv",
            None,
            "product-instances-report.csv",
            instances_report,
        ),
        "activity": ("get", sa_url("activity") + "?format=csv", None, "license-transactions.csv", transactions),
        "activity_events": (
            "get",
            sa_url("activity_events") + "?format=csv",
            None,
            "smart-account-events.csv",
            events(selectors.events(lab=lab, sa=account)),
        ),
    }


EXPORTS = [
    "licenses_csv",
    "va_events_csv",
    "alerts",
    "licenses_report",
    "instances_report",
    "activity",
    "activity_events",
]


@pytest.mark.parametrize("name", EXPORTS)
def test_export_content_is_what_the_in_memory_export_wrote(client, login_as, lab, account, va, data, name):
    login_as("admin")
    method, url, post, filename, expected = _exports(account, va, lab)[name]
    response = getattr(client, method)(url, post)
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    body = _body(response)
    assert body == expected()
    assert len(body.splitlines()) > 2


def test_formula_cells_are_escaped(client, login_as, lab, account, va, data):
    login_as("admin")
    body = _body(client.get(reverse("cssm:va_events_csv", args=[lab.slug, account.pk, va.pk])))
    messages = [row[0] for row in csv.reader(io.StringIO(body))][1:]
    assert "'=HYPERLINK(1) 0" in messages
    assert "'+1 1" in messages
    assert "'-2 2" in messages
    assert "'@x 3" in messages
    assert "plain, with comma 4" in messages


@pytest.mark.parametrize("name", EXPORTS)
def test_export_query_count_does_not_grow_with_rows(client, login_as, lab, account, va, now, data, name):
    from django.db import connection

    login_as("admin")
    method, url, post, _, _ = _exports(account, va, lab)[name]

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            lines = len(_body(getattr(client, method)(url, post)).splitlines())
        return len(ctx.captured_queries), lines

    small, small_lines = count()
    _add_rows(lab=lab, account=account, va=va, now=now, n=300, start=100)
    big, big_lines = count()
    assert big == small
    if name not in ("licenses_csv", "licenses_report"):
        assert big_lines >= small_lines + 300
