"""Smart Licensing timers (domain-notes §1.3–§1.9, §6.5, §7, §9). Pure over plain data.

``next_due`` is the single answer to "when does each timer fire next?": the
periodic job fires whatever ``due_now`` returns and the pages show the same
times ("Next Renewal Attempt", "Authorization Expires on" ...). Nothing here
reads the wall clock; pass ``now``.

Notice series (evaluation, out-of-compliance grace, reserved term licences)
follow one rule: the notice for N days is due at ``deadline - N days`` and the
expiry notice (days_left 0) at the deadline. ``*_sent_through`` records the
smallest days_left already sent. If the scheduler fell behind and several
notices are overdue, only the most recent one is returned (a "60 days left"
alert is wrong once 15 days are left); the others are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from .machines import AuthorizationState, ConversionState, RegistrationState, ReservationState

EVAL_PERIOD = timedelta(days=90)
AUTH_RENEW_INTERVAL = timedelta(days=30)
AUTH_EXPIRY = timedelta(days=90)
ID_CERT_VALIDITY = timedelta(days=365)
ID_RENEW_INTERVAL = timedelta(days=180)
OOC_GRACE = timedelta(days=30)
RESERVATION_REMINDER_INTERVAL = timedelta(hours=24)
AUTH_RETRY_INTERVAL = timedelta(hours=24)
ID_RETRY_INTERVAL = timedelta(hours=24)
DLC_DURATION = timedelta(hours=1)
CLOCK_SKEW_TOLERANCE = timedelta(minutes=60)
TOKEN_MIN_DAYS = 1
TOKEN_MAX_DAYS = 365
EVAL_NOTICE_DAYS: tuple[int, ...] = (90, 60, 30, 15, 5, 1)
OOC_NOTICE_DAYS: tuple[int, ...] = (30, 15, 5, 1)
LICENSE_EXPIRY_WARNING_DAYS: tuple[int, ...] = (90, 60, 30, 14, 7, 3, 1)

# Generic "failed to connect" window for CSSM (INFERRED: one missed 30-day renewal)
# and "failed to renew and removed" (INFERRED: ID certificate lifetime).
INSTANCE_CONNECT_WINDOW = AUTH_RENEW_INTERVAL
INSTANCE_RENEW_WINDOW = ID_CERT_VALIDITY


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return dt


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- Evaluation clock (§1.5, §9 Q2) -------------------------------------------------------


@dataclass(frozen=True)
class EvalClock:
    """Remaining evaluation time; it counts down only while ``running_since`` is set.

    The appliance runs the clock while it is unregistered and at least one
    licence is requested (see ``eval_should_run``); the remaining time is kept
    when it stops, so deregistering resumes where it left off.
    """

    remaining: timedelta = EVAL_PERIOD
    running_since: datetime | None = None

    @property
    def running(self) -> bool:
        return self.running_since is not None

    def remaining_at(self, now: datetime) -> timedelta:
        if self.running_since is None:
            return max(self.remaining, timedelta(0))
        return max(self.remaining - (_aware(now) - self.running_since), timedelta(0))

    def start(self, now: datetime) -> EvalClock:
        if self.running:
            return self
        return EvalClock(self.remaining, _aware(now))

    def stop(self, now: datetime) -> EvalClock:
        return EvalClock(self.remaining_at(now), None)

    def expires_at(self) -> datetime | None:
        """Deadline if the clock keeps running; None while paused."""
        return None if self.running_since is None else self.running_since + self.remaining

    def expired(self, now: datetime) -> bool:
        return self.remaining_at(now) <= timedelta(0)


def eval_should_run(*, registered: bool, licenses_requested: bool, reservation_installed: bool = False) -> bool:
    """Eval counts only while unregistered and at least one licence is requested."""
    return not registered and not reservation_installed and licenses_requested


def sync_eval_clock(clock: EvalClock, *, should_run: bool, now: datetime) -> EvalClock:
    """Start or stop the clock to match ``should_run`` (idempotent)."""
    if should_run:
        return clock.start(now)
    return clock.stop(now) if clock.running else clock


# --- Notice series ------------------------------------------------------------------------------

Notice = tuple[int, datetime]  # (days_left, at); days_left 0 is the expiry itself


def notice_times(deadline: datetime, days: tuple[int, ...]) -> list[Notice]:
    """Notices N days before ``deadline`` plus the expiry, earliest first."""
    points = {(d, deadline - timedelta(days=d)) for d in days if d > 0}
    points.add((0, deadline))
    return sorted(points, key=lambda p: p[1])


def notices_due(deadline: datetime, days: tuple[int, ...], *, after: datetime | None, now: datetime) -> list[Notice]:
    """Notices with ``after < at <= now``, earliest first."""
    return [(d, at) for d, at in notice_times(deadline, days) if (after is None or at > after) and at <= now]


def _next_notice(
    deadline: datetime,
    days: tuple[int, ...],
    *,
    sent_through: int | None,
    since: datetime | None,
    now: datetime,
) -> Notice | None:
    pending = [
        (d, at)
        for d, at in notice_times(deadline, days)
        if (sent_through is None or d < sent_through) and (since is None or at >= since or d == 0)
    ]
    if not pending:
        return None
    overdue = [p for p in pending if p[1] <= now]
    return overdue[-1] if overdue else pending[0]


# --- Appliance timers ----------------------------------------------------------------------------

DueKind = Literal[
    "auth_renewal",
    "auth_expiry",
    "id_renewal",
    "id_expiry",
    "eval_notice",
    "eval_expiry",
    "ooc_notice",
    "ooc_expiry",
    "reservation_reminder",
    "dlc_completion",
    "reserved_license_warning",
    "reserved_license_expiry",
]


@dataclass(frozen=True)
class Due:
    kind: str
    at: datetime
    key: str  # dedupe key for the alert/job outbox, unique per occurrence
    subject: str = ""  # licence code for per-licence timers
    days_left: int | None = None  # for notice series; 0 = the expiry itself


@dataclass(frozen=True)
class TimerInputs:
    """Everything about one appliance that its timers depend on (plain data)."""

    registration_state: str = RegistrationState.UNREGISTERED
    authorization_state: str | None = None
    registered_at: datetime | None = None
    # Authorization (30-day renewal, 90-day expiry, 24-h retry after failure).
    last_auth_success_at: datetime | None = None
    last_auth_attempt_at: datetime | None = None
    last_auth_failed: bool = False
    # ID certificate (180-day renewal, 365-day expiry, 24-h retry after failure).
    id_cert_issued_at: datetime | None = None
    id_cert_expires_at: datetime | None = None
    last_id_renew_attempt_at: datetime | None = None
    last_id_renew_failed: bool = False
    # Evaluation period.
    eval: EvalClock | None = None
    eval_notices_sent_through: int | None = None
    # Out-of-compliance grace per licence code.
    ooc_since: Mapping[str, datetime] = field(default_factory=dict)
    ooc_notices_sent_through: Mapping[str, int] = field(default_factory=dict)
    # Reservation.
    reservation_state: str = ReservationState.NONE
    reservation_requested_at: datetime | None = None
    last_reservation_reminder_at: datetime | None = None
    reserved_license_ends: Mapping[str, datetime] = field(default_factory=dict)
    reserved_notices_sent_through: Mapping[str, int] = field(default_factory=dict)
    # Device Led Conversion.
    dlc_state: str = ConversionState.NOT_STARTED
    dlc_started_at: datetime | None = None

    def with_changes(self, **changes: object) -> TimerInputs:
        return replace(self, **changes)  # type: ignore[arg-type]


def _auth_timers(i: TimerInputs, now: datetime) -> list[Due]:
    if i.registration_state != RegistrationState.REGISTERED:
        return []
    out: list[Due] = []
    base = i.last_auth_success_at or i.registered_at
    failed_since_success = (
        i.last_auth_failed
        and i.last_auth_attempt_at is not None
        and (i.last_auth_success_at is None or i.last_auth_attempt_at >= i.last_auth_success_at)
    )
    if failed_since_success:
        renew_at = i.last_auth_attempt_at + AUTH_RETRY_INTERVAL  # type: ignore[operator]
    elif i.last_auth_success_at is not None:
        renew_at = i.last_auth_success_at + AUTH_RENEW_INTERVAL
    else:
        renew_at = base or now  # registered but never authorized: authorize now
    out.append(Due("auth_renewal", renew_at, f"auth_renewal:{_stamp(renew_at)}"))
    if base is not None and i.authorization_state != AuthorizationState.AUTH_EXPIRED:
        expiry = base + AUTH_EXPIRY
        out.append(Due("auth_expiry", expiry, f"auth_expiry:{_stamp(expiry)}"))
    return out


def _id_timers(i: TimerInputs) -> list[Due]:
    if i.registration_state != RegistrationState.REGISTERED:
        return []
    out: list[Due] = []
    if i.id_cert_issued_at is not None:
        renew_at = i.id_cert_issued_at + ID_RENEW_INTERVAL
        if (
            i.last_id_renew_failed
            and i.last_id_renew_attempt_at is not None
            and i.last_id_renew_attempt_at >= i.id_cert_issued_at
        ):
            renew_at = i.last_id_renew_attempt_at + ID_RETRY_INTERVAL
        out.append(Due("id_renewal", renew_at, f"id_renewal:{_stamp(renew_at)}"))
    expires = i.id_cert_expires_at or (i.id_cert_issued_at and i.id_cert_issued_at + ID_CERT_VALIDITY)
    if expires is not None:
        out.append(Due("id_expiry", expires, f"id_expiry:{_stamp(expires)}"))
    return out


def _series(
    *,
    deadline: datetime,
    days: tuple[int, ...],
    sent_through: int | None,
    since: datetime | None,
    now: datetime,
    notice_kind: str,
    expiry_kind: str,
    subject: str = "",
    episode: str = "",
) -> list[Due]:
    nxt = _next_notice(deadline, days, sent_through=sent_through, since=since, now=now)
    if nxt is None:
        return []
    d, at = nxt
    prefix = f"{subject}:" if subject else ""
    suffix = f"@{episode}" if episode else ""
    if d == 0:
        return [Due(expiry_kind, at, f"{expiry_kind}:{prefix}".rstrip(":") + suffix, subject, 0)]
    return [Due(notice_kind, at, f"{notice_kind}:{prefix}{d}{suffix}", subject, d)]


def next_due(inputs: TimerInputs, *, now: datetime) -> list[Due]:
    """Next firing time of every active timer, earliest first."""
    i, now = inputs, _aware(now)
    out = _auth_timers(i, now) + _id_timers(i)

    if i.eval is not None and (deadline := i.eval.expires_at()) is not None:
        out += _series(
            deadline=deadline,
            days=EVAL_NOTICE_DAYS,
            sent_through=i.eval_notices_sent_through,
            since=i.eval.running_since,
            now=now,
            notice_kind="eval_notice",
            expiry_kind="eval_expiry",
        )

    for code, since in sorted(i.ooc_since.items()):
        out += _series(
            deadline=since + OOC_GRACE,
            days=OOC_NOTICE_DAYS,
            sent_through=i.ooc_notices_sent_through.get(code),
            since=since,
            now=now,
            notice_kind="ooc_notice",
            expiry_kind="ooc_expiry",
            subject=code,
            episode=_stamp(since),
        )

    if i.reservation_state == ReservationState.REQUESTED and i.reservation_requested_at is not None:
        # §9 Q7: first reminder when the request code is generated, then every 24 h.
        last = i.last_reservation_reminder_at
        at = (
            last + RESERVATION_REMINDER_INTERVAL
            if last is not None and last >= i.reservation_requested_at
            else i.reservation_requested_at
        )
        out.append(Due("reservation_reminder", at, f"reservation_reminder:{_stamp(at)}"))

    for code, end in sorted(i.reserved_license_ends.items()):
        out += _series(
            deadline=end,
            days=LICENSE_EXPIRY_WARNING_DAYS,  # §9 Q6: reuse the CSSM cadence
            sent_through=i.reserved_notices_sent_through.get(code),
            since=None,
            now=now,
            notice_kind="reserved_license_warning",
            expiry_kind="reserved_license_expiry",
            subject=code,
            episode=_stamp(end),
        )

    if i.dlc_state == ConversionState.IN_PROGRESS and i.dlc_started_at is not None:
        at = i.dlc_started_at + DLC_DURATION
        out.append(Due("dlc_completion", at, f"dlc_completion:{_stamp(at)}"))

    return sorted(out, key=lambda d: (d.at, d.kind, d.subject))


def due_now(inputs: TimerInputs, *, now: datetime) -> list[Due]:
    return [d for d in next_due(inputs, now=now) if d.at <= now]


# --- CSSM side ------------------------------------------------------------------------------------


def token_expiry(created_at: datetime, days: int) -> datetime:
    """*Expire After* n days (1–365, §5.2)."""
    if isinstance(days, bool) or not isinstance(days, int) or not TOKEN_MIN_DAYS <= days <= TOKEN_MAX_DAYS:
        raise ValueError(f"Expire After must be between {TOKEN_MIN_DAYS} - {TOKEN_MAX_DAYS} days.")
    return _aware(created_at) + timedelta(days=days)


ConnectStatus = Literal["ok", "failed_to_connect", "failed_to_renew"]


def instance_connect_status(last_contact: datetime, *, now: datetime) -> ConnectStatus:
    """CSSM view of a product instance by its last contact (§7.2, INFERRED windows)."""
    age = _aware(now) - _aware(last_contact)
    if age > INSTANCE_RENEW_WINDOW:
        return "failed_to_renew"
    if age > INSTANCE_CONNECT_WINDOW:
        return "failed_to_connect"
    return "ok"


def term_end_at(end_date: date | datetime) -> datetime:
    """A term licence "expiring on" a date stops being valid at 00:00 UTC that day."""
    if isinstance(end_date, datetime):
        return _aware(end_date)
    return datetime.combine(end_date, time(0, 0), tzinfo=UTC)


def license_expiry_warnings(end_date: date | datetime, *, now: datetime) -> list[Notice]:
    """*Licenses Expiring* points (90/60/30/14/7/3/1 days) and the expiry reached by ``now``."""
    return notices_due(term_end_at(end_date), LICENSE_EXPIRY_WARNING_DAYS, after=None, now=_aware(now))


def current_expiry_warning(end_date: date | datetime, *, now: datetime) -> int | None:
    """Smallest days-left threshold reached (0 = expired), or None if none yet."""
    due = license_expiry_warnings(end_date, now=now)
    return due[-1][0] if due else None
