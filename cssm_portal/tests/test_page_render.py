"""The list pages' cheaper rendering says what the templates said: licence names from SQL, the alert
counters from a query compiled once, table headers and pager from tags, rows written in Python (escaped)."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse

from cssm_portal import selectors, services
from cssm_portal.models import CssmAlert, LicensePool, RegistrationToken, VirtualAccount
from cssm_portal.tests.conftest import instances_bulk
from licensing_core import catalogue

pytestmark = pytest.mark.django_db

NASTY = "<b>&\"x'</b>"
ESCAPED = "&lt;b&gt;&amp;&quot;x&#x27;&lt;/b&gt;"


def test_license_names_in_sql_are_the_catalogue_names(va):
    tags = [lic.entitlement_tag for lic in catalogue.ESA_LICENSES + catalogue.SMA_LICENSES] + ["regid.unknown"]
    LicensePool.objects.filter(virtual_account=va).delete()
    LicensePool.objects.bulk_create(LicensePool(virtual_account=va, tag=t, purchased=1) for t in tags)
    names = dict(selectors.pool_rows(va).values_list("tag", "name"))
    assert names == {t: services.license_name(t) for t in tags}
    wanted = services.license_name(tags[0]).upper()
    found = {r.tag for r in selectors.pool_rows(va).filter(name__icontains=wanted)}
    assert found == {t for t in tags if wanted in services.license_name(t).upper()}
    assert tags[0] in found


def test_alert_counters_and_keys_count_the_open_alerts_of_the_virtual_account_only(account, va, now):
    other = VirtualAccount.objects.create(smart_account=account, name="Other")
    CssmAlert.objects.filter(smart_account=account).delete()
    rows = [
        (va, "Major", "insufficient:a", None, None),
        (va, "Major", "expiring:b", None, None),
        (va, "Minor", "manual:c", None, None),
        (va, "Minor", "manual:d", now, None),  # cleared
        (va, "Major", "manual:e", None, now),  # dismissed
        (other, "Major", "insufficient:f", None, None),
    ]
    for v, severity, key, cleared, dismissed in rows:
        CssmAlert.objects.create(
            smart_account=account,
            virtual_account=v,
            alert_type="Insufficient Licenses" if key.startswith("insufficient") else "Other",
            severity=severity,
            message=key,
            dedupe_key=key,
            raised_at=now,
            cleared_at=cleared,
            dismissed_at=dismissed,
        )
    assert selectors.va_alert_counts(va) == {"major": 2, "minor": 1}
    assert selectors.va_alert_counts(other) == {"major": 1, "minor": 0}
    assert selectors.open_alert_keys(va) == {"insufficient:a": "Major", "expiring:b": "Major", "manual:c": "Minor"}
    assert selectors.open_alert_keys(va, types=["Insufficient Licenses"]) == {"insufficient:a": "Major"}


def test_sort_headers_and_pager_keep_the_filter_and_page_on(client, login_as, lab, account, va, now):
    instances_bulk(lab=lab, va=va, now=now, serial="HDR{:03d}", name="hdr-{:03d}", numbers=range(30))
    login_as("sa-admin")
    url = reverse("cssm:instances", args=[lab.slug, account.pk, va.pk])
    html = client.get(url + "?q=hdr&sort=name&dir=asc").text
    assert '<th scope="col" aria-sort="ascending"><a href="?q=hdr&sort=name&dir=desc"' in html
    assert "Name ▲</a>" in html
    assert (
        '<a href="?q=hdr&sort=product&dir=asc" hx-get="?q=hdr&sort=product&dir=asc" hx-target="#instances-table"'
        in html
    )
    assert "Showing 1–25 of 30 Records" in html
    assert 'href="?q=hdr&sort=name&dir=asc&page=2"' in html
    assert 'rel="next"' in html
    assert 'value="hdr"' in html  # the filter box keeps the search
    html = client.get(url + "?q=hdr&sort=name&dir=desc&page=2").text
    assert 'aria-sort="descending"' in html
    assert "Name ▼</a>" in html
    assert 'href="?q=hdr&sort=name&dir=desc&page=1"' in html
    assert 'rel="prev"' in html
    assert "Page 2 of 2" in html


def test_rows_written_in_python_escape_what_they_show(client, login_as, lab, account, va, now):
    weird = VirtualAccount.objects.create(smart_account=account, name=NASTY)
    instances_bulk(lab=lab, va=weird, now=now, serial="ESC{}", name=NASTY + "{}", numbers=[1])
    RegistrationToken.objects.create(
        virtual_account=weird,
        token_id=uuid.uuid4(),
        value="dG9rZW4tZXNjYXBl",
        description=NASTY,
        created_by=NASTY,
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    CssmAlert.objects.create(
        smart_account=account,
        virtual_account=weird,
        alert_type=NASTY,
        severity="Minor",
        message=NASTY,
        dedupe_key="manual:escape",
        raised_at=now,
    )
    login_as("sa-admin")
    pages = [
        reverse("cssm:general", args=[lab.slug, account.pk, weird.pk]),
        reverse("cssm:instances", args=[lab.slug, account.pk, weird.pk]),
        reverse("cssm:alerts", args=[lab.slug, account.pk]) + "?q=%22x",
        reverse("cssm:reports", args=[lab.slug, account.pk]) + f"?report=instances&va={weird.pk}",
    ]
    for url in pages:
        html = client.get(url).text
        assert ESCAPED in html, url
        assert NASTY not in html, url
