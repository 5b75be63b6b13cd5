"""One appliance's timers as licensing_core.schedules sees them, and the
bookkeeping column that makes the sweep a single indexed query.

`timer_inputs` maps the appliance columns (and its licence rows) to the plain
`TimerInputs`; `next_due_at` is the earliest time schedules.next_due reports,
in the appliance's own time. Services call `timers_bookkeep` on every save
(gateway_ui.services._save), so `Appliance.next_due_at` is always what
schedules.next_due says; nothing else computes due times.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from licensing_core.machines import LicensingMode
from licensing_core.schedules import EvalClock, TimerInputs, next_due, term_end_at

# next_due's `now` only chooses between overdue notices of a series; from the
# epoch it lists the earliest pending one, which is what the column holds.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timer_inputs(appliance, rows: Iterable) -> TimerInputs:
    """`rows`: the appliance's licence rows (all, or at least those in grace or reserved)."""
    rows = list(rows)
    grace = [r for r in rows if r.ooc_since is not None]
    reserved = [r for r in rows if r.reserved_end is not None and r.reserved_count]
    return TimerInputs(
        registration_state=appliance.registration_state,
        authorization_state=appliance.authorization_state,
        registered_at=appliance.registered_at,
        last_auth_success_at=appliance.last_auth_success_at,
        last_auth_attempt_at=appliance.last_auth_attempt_at,
        last_auth_failed=appliance.last_auth_ok is False,
        id_cert_issued_at=appliance.id_issued_at,
        id_cert_expires_at=appliance.id_expires_at,
        last_id_renew_attempt_at=appliance.last_id_attempt_at,
        last_id_renew_failed=appliance.last_id_ok is False,
        eval=EvalClock(appliance.eval_remaining, appliance.eval_running_since),
        eval_notices_sent_through=appliance.eval_notices_sent_through,
        ooc_since={r.code: r.ooc_since for r in grace},
        ooc_notices_sent_through={
            r.code: r.ooc_notices_sent_through for r in grace if r.ooc_notices_sent_through is not None
        },
        reservation_state=appliance.reservation_state,
        reservation_requested_at=appliance.reservation_requested_at,
        last_reservation_reminder_at=appliance.last_reservation_reminder_at,
        reserved_license_ends={r.code: term_end_at(r.reserved_end) for r in reserved},
        reserved_notices_sent_through={
            r.code: r.reserved_notices_sent_through for r in reserved if r.reserved_notices_sent_through is not None
        },
        dlc_state=appliance.dlc_state,
        dlc_started_at=appliance.dlc_started_at,
    )


def next_due_at(appliance, rows: Iterable) -> datetime | None:
    """Earliest due time of the appliance's timers (appliance time), or None."""
    if appliance.licensing_mode != LicensingMode.SMART:
        return None
    upcoming = next_due(timer_inputs(appliance, rows), now=EPOCH)
    return upcoming[0].at if upcoming else None


def timers_bookkeep(appliance) -> None:
    """Set `appliance.next_due_at` from its current state (saved by the caller)."""
    appliance.next_due_at = next_due_at(appliance, appliance.licenses.all()) if appliance.pk else None
