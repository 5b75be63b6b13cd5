"""Display formats, pinned to the examples quoted in domain-notes."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from licensing_core.formats import (
    attempt_status,
    attempt_status_cli,
    cssm_date,
    cssm_datetime,
    cssm_expiration,
    cssm_term,
    eval_remaining_cli,
    eval_remaining_gui,
    gateway_agent_datetime,
    gateway_datetime,
    status_with_time,
)

TS = datetime(2018, 8, 22, 7, 21, 33, tzinfo=UTC)


def test_gateway_datetime():
    assert gateway_datetime(TS) == "22 Aug 2018 07:21"
    assert gateway_datetime(datetime(2019, 1, 2, 3, 4)) == "02 Jan 2019 03:04"  # naive = UTC


def test_gateway_agent_datetime():
    assert gateway_agent_datetime(datetime(2017, 12, 11, 10, 8, tzinfo=UTC)) == "11 Dec 2017 10:08 (GMT +00:00)"
    ist = timezone(timedelta(hours=5, minutes=30))
    assert gateway_agent_datetime(datetime(2017, 12, 11, 10, 8, tzinfo=ist)) == "11 Dec 2017 10:08 (GMT +05:30)"
    pst = timezone(timedelta(hours=-8))
    assert gateway_agent_datetime(datetime(2017, 12, 11, 10, 8, tzinfo=pst)) == "11 Dec 2017 10:08 (GMT -08:00)"


REMAINING = timedelta(days=89, hours=4, minutes=54, seconds=42, microseconds=999)


def test_eval_remaining():
    assert eval_remaining_gui(REMAINING) == "89 days, 4 hr, 54 min, 42 sec"
    assert eval_remaining_cli(REMAINING) == "89 days 4 hours 54 minutes 42 seconds"
    assert eval_remaining_cli(timedelta(days=90)) == "90 days 0 hours 0 minutes 0 seconds"
    assert eval_remaining_gui(timedelta(seconds=-5)) == "0 days, 0 hr, 0 min, 0 sec"


def test_cssm_formats():
    expires = datetime(2025, 3, 29, 8, 31, 5, tzinfo=UTC)
    assert cssm_datetime(expires) == "2025-Mar-29 08:31:05"
    assert cssm_date(date(2024, 4, 1)) == "2024-Apr-01"
    assert cssm_date(expires) == "2025-Mar-29"
    assert cssm_term(date(2018, 8, 31)) == "2018-Aug-31 (Term)"
    assert cssm_term(None) == "Never (Perpetual)"


@pytest.mark.parametrize(
    ("left", "text"),
    [
        (timedelta(days=362), "(in 362 days)"),
        (timedelta(days=361, hours=23), "(in 362 days)"),
        (timedelta(hours=2), "(in 1 day)"),
        (timedelta(0), "(expired)"),
        (timedelta(days=-3), "(expired)"),
    ],
)
def test_cssm_expiration(left, text):
    expires = datetime(2025, 3, 29, 8, 31, 5, tzinfo=UTC)
    assert cssm_expiration(expires, now=expires - left) == f"2025-Mar-29 08:31:05 {text}"


def test_attempt_status():
    assert attempt_status(None, None) == "No communication attempted"
    assert attempt_status(True, None) == "No communication attempted"
    assert attempt_status(True, TS) == "SUCCEEDED on 22 Aug 2018 07:21"
    assert attempt_status(False, TS) == "FAILED on 22 Aug 2018 07:21"
    assert attempt_status_cli(True, TS) == "Succeeded on 22 Aug 2018 07:21"
    assert attempt_status_cli(False, TS) == "Failed on 22 Aug 2018 07:21"
    assert attempt_status_cli(None, None) == "NONE"


def test_status_with_time():
    assert status_with_time("Registered", TS) == "Registered ( 22 Aug 2018 07:21)"
