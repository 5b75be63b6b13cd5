"""Display formats for dates, durations and attempt statuses (domain-notes §0, §2.2, §3.3, §5.2).

Month names come from a fixed table so output does not depend on the process
locale. Datetimes are shown in their own time zone (convert to the appliance
zone first); naive values are taken as UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _tz(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def gateway_datetime(dt: datetime) -> str:
    """``22 Aug 2018 07:21`` (status rows)."""
    dt = _tz(dt)
    return f"{dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year} {dt.hour:02d}:{dt.minute:02d}"


def gateway_agent_datetime(dt: datetime) -> str:
    """``11 Dec 2017 10:08 (GMT +00:00)`` (Smart Agent "Last Updated")."""
    dt = _tz(dt)
    offset = dt.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{gateway_datetime(dt)} (GMT {sign}{minutes // 60:02d}:{minutes % 60:02d})"


def _dhms(td: timedelta) -> tuple[int, int, int, int]:
    total = max(int(td.total_seconds()), 0)  # whole seconds, never negative
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return days, hours, minutes, seconds


def eval_remaining_gui(td: timedelta) -> str:
    """``89 days, 4 hr, 54 min, 42 sec`` (*Evaluation Period Remaining*, GUI)."""
    d, h, m, s = _dhms(td)
    return f"{d} days, {h} hr, {m} min, {s} sec"


def eval_remaining_cli(td: timedelta) -> str:
    """``89 days 4 hours 54 minutes 42 seconds`` (``license_smart > STATUS``, §3.3)."""
    d, h, m, s = _dhms(td)
    return f"{d} days {h} hours {m} minutes {s} seconds"


def cssm_datetime(dt: datetime) -> str:
    """``2025-Mar-29 08:31:05``."""
    dt = _tz(dt)
    return f"{dt.year}-{_MONTHS[dt.month - 1]}-{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"


def cssm_date(d: date | datetime) -> str:
    """``2024-Apr-01``."""
    return f"{d.year}-{_MONTHS[d.month - 1]}-{d.day:02d}"


def cssm_expiration(dt: datetime, *, now: datetime) -> str:
    """``2025-Mar-29 08:31:05 (in 362 days)`` or ``... (expired)``.

    Days are rounded up, so a token with 361 days and 23 hours left says 362.
    """
    left = _tz(dt) - _tz(now)
    if left <= timedelta(0):
        return f"{cssm_datetime(dt)} (expired)"
    days = math.ceil(left / timedelta(days=1))
    return f"{cssm_datetime(dt)} (in {days} {'day' if days == 1 else 'days'})"


def cssm_term(end: date | datetime | None) -> str:
    """License expiration cell: ``2018-Aug-31 (Term)`` or ``Never (Perpetual)``."""
    return "Never (Perpetual)" if end is None else f"{cssm_date(end)} (Term)"


def attempt_status(ok: bool | None, at: datetime | None) -> str:
    """*Last ... Renewal Attempt Status* row (GUI)."""
    if ok is None or at is None:
        return "No communication attempted"
    return f"{'SUCCEEDED' if ok else 'FAILED'} on {gateway_datetime(at)}"


def attempt_status_cli(ok: bool | None, at: datetime | None) -> str:
    """Same for ``license_smart > STATUS`` (``Succeeded on ...``)."""
    if ok is None or at is None:
        return "NONE"
    return f"{'Succeeded' if ok else 'Failed'} on {gateway_datetime(at)}"


def status_with_time(label: str, at: datetime) -> str:
    """GUI status with its time stamp, e.g. ``Registered ( 22 Aug 2018 07:21)``."""
    return f"{label} ( {gateway_datetime(at)})"
