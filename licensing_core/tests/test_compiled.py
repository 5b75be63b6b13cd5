"""Queries compiled once per process (run_compiled) answer what the ORM answers."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from licensing_core.compiled import _compiled, run_compiled
from licensing_core.models import Event
from tests.factories import LabFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
COLUMNS = ("pk", "at", "kind", "old", "new", "request_id", "lab__slug", "lab__clock_frozen_at", "lab__faults")


def _events(lab_id: int, kind: str, _types):
    return Event.objects.filter(lab_id=lab_id, kind=kind).order_by("at", "pk").values_list(*COLUMNS)


def _events_after(lab_id: int, kind: str, limit):
    return Event.objects.filter(lab_id=lab_id, kind__gt=kind).order_by("kind", "pk").values_list("kind")[:limit]


@pytest.fixture
def labs():
    out = []
    for i in range(2):
        lab = LabFactory(faults={"cssm_slow": 3 + i}, clock_frozen_at=AT + timedelta(days=i))
        for n in range(3):
            Event.objects.create(
                lab=lab, at=AT + timedelta(hours=n), side="cssm", kind=f"k{n % 2}", message="m",
                old={"count": n, "lab": lab.slug}, new=[n, None], request_id=uuid.uuid4() if n else None,
            )  # fmt: skip
        out.append(lab)
    return out


def test_rows_and_their_types_are_the_orms_for_every_value(labs):
    for lab in labs:
        for kind in ("k0", "k1", "none"):
            assert run_compiled(_events, lab.pk, kind) == list(_events(lab.pk, kind, None))
    got = run_compiled(_events, labs[1].pk, "k0")[0]
    assert got[1] == AT
    assert got[1].tzinfo is not None
    assert got[3] == {"count": 0, "lab": labs[1].slug}
    assert got[4] == [0, None]
    assert got[7] == AT + timedelta(days=1)
    assert got[8] == {"cssm_slow": 4}


def test_compiled_once_per_query_and_types(labs):
    _compiled.cache_clear()
    for lab in labs:
        run_compiled(_events, lab.pk, "k0")
        run_compiled(_events_after, lab.pk, "k0", types=1)
        run_compiled(_events_after, lab.pk, "k0", types=5)
    assert _compiled.cache_info().misses == 3  # one per (query, types); every other run reuses its SQL
    assert run_compiled(_events_after, labs[0].pk, "", types=1) == [("k0",)]
    assert len(run_compiled(_events_after, labs[0].pk, "", types=5)) == 3


def _by_substring(lab_id: int, text: str, _types):
    return Event.objects.filter(lab_id=lab_id, kind__contains=text).values_list("pk")


def test_values_the_sql_would_not_carry_as_they_are_are_refused(labs):
    with pytest.raises(ValueError, match="every value must reach the SQL"):
        run_compiled(_by_substring, labs[0].pk, "k")  # contains wraps the value in % signs
    with pytest.raises(TypeError):
        run_compiled(_events, labs[0].pk, None)  # filter(kind=None) is IS NULL: no parameter to replace
