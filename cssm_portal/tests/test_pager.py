"""Tables count exactly up to COUNT_CAP rows past the page shown; beyond, they
say "more than ..." and paging still works."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cssm_portal import selectors
from licensing_core.models import Event

pytestmark = pytest.mark.django_db


def _events(lab, account, va, now, n):
    Event.objects.bulk_create(
        Event(
            lab=lab,
            at=now,
            side="cssm",
            kind="cssm.test",
            message=f"pager event {i:04d}",
            smart_account_id=account.pk,
            virtual_account_id=va.pk,
        )
        for i in range(n)
    )


@pytest.fixture
def events_url(lab, account, va):
    return reverse("cssm:va_events", args=[lab.slug, account.pk, va.pk])


def _pager(html: str) -> str:
    return " ".join(re.search(r'<div class="pager">(.*?)</div>', html, re.S).group(1).split())


def test_small_tables_keep_the_exact_wording(client, login_as, lab, account, va, now, events_url, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CAP", 50)
    existing = Event.objects.filter(lab=lab, side="cssm", virtual_account_id=va.pk).count()
    _events(lab, account, va, now, 40 - existing)
    login_as("admin")
    pager = _pager(client.get(events_url).content.decode())
    assert "Showing 1–25 of 40 Records" in pager
    assert "Page 1 of 2" in pager


def test_large_tables_say_more_than_and_page_on(client, login_as, lab, account, va, now, events_url, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CAP", 50)
    _events(lab, account, va, now, 130)
    login_as("admin")
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(events_url).content.decode()
    pager = _pager(html)
    assert "Showing 1–25 of more than 50 Records" in pager
    assert "Page 1 of more than 2" in pager
    assert 'rel="next"' in pager
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"] and "licensing_core_event" in q["sql"]]
    assert counts
    assert all("LIMIT 51" in q for q in counts)
    # Next pages keep working past what the first page knew.
    pager = _pager(client.get(events_url + "?page=3").content.decode())
    assert "Showing 51–75 of more than 100 Records" in pager
    assert 'rel="prev"' in pager
    assert 'rel="next"' in pager
    # The end of the table: exact again.
    page6 = client.get(events_url + "?page=6").content.decode()
    total = Event.objects.filter(lab=lab, side="cssm", virtual_account_id=va.pk).count()
    assert f"of {total} Records" in _pager(page6)
    assert 'rel="next"' not in _pager(page6)


def test_the_capped_paginator_counts_at_most_the_cap_past_the_page(lab, account, va, now):
    _events(lab, account, va, now, 30)
    qs = Event.objects.filter(lab=lab, kind="cssm.test").order_by("-at", "-id")
    exact = selectors.CappedPaginator(qs, 10, page_hint="1", cap=100)
    assert (exact.count, exact.capped) == (30, False)
    capped = selectors.CappedPaginator(qs, 10, page_hint="x", cap=12)
    assert (capped.count, capped.capped, capped.known) == (13, True, 12)
    # The page after the last one known is counted afresh when asked for.
    assert selectors.CappedPaginator(qs, 10, page_hint="2", cap=12).get_page("2").has_next()
    deep = selectors.CappedPaginator(qs, 10, page_hint="2", cap=5)
    assert (deep.count, deep.known) == (21, 20)  # the page asked for is counted in full
    assert [e.message for e in deep.get_page("2")] == [e.message for e in qs[10:20]]


def test_the_capped_paginator_counts_nothing_for_a_filter_nothing_can_match(lab):
    page = selectors.CappedPaginator(Event.objects.filter(pk__in=[]), 25).get_page(1)
    assert page.paginator.count == 0
    assert not page.paginator.capped
    assert list(page) == []
