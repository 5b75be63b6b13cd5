"""The lab clock: the only source of time for domain code.

Each lab's time is wall time + an offset, or a fixed instant while frozen.
Domain functions take `now` as an argument; views, tasks and commands get it
from `lab_now(lab)` (or an appliance's skewed clock, in gateway_ui) and pass
it down. A clock never moves backwards: `clock_floor` remembers the latest
lab time handed out and setting the clock earlier is refused.
"""

from datetime import UTC, datetime, timedelta

from django.db import transaction

from licensing_core.models import Lab


class ClockError(ValueError):
    """A clock change that is not allowed, with a reason for the user."""


def wall_now() -> datetime:
    # The one wall-clock read of the project; everything else asks a lab.
    return datetime.now(tz=UTC)


def lab_now(lab: Lab, *, wall: datetime | None = None) -> datetime:
    """The lab's current time (aware, UTC)."""
    frozen = lab.clock_frozen_at
    now = frozen if frozen is not None else (wall or wall_now()) + lab.clock_offset
    if lab.clock_floor is not None and now < lab.clock_floor:
        return lab.clock_floor
    return now


@transaction.atomic
def clock_set(*, lab: Lab, to: datetime) -> Lab:
    """Move the lab clock to `to`. Refuses to move backwards.

    This only moves time; processing what falls due on the way is the job of
    the time-travel service, which calls this step by step.
    """
    locked = Lab.objects.select_for_update().get(pk=lab.pk)
    current = lab_now(locked)
    if to.tzinfo is None:
        raise ClockError("The new lab time must include a time zone.")
    if to < current:
        raise ClockError(
            f"The lab clock never moves backwards: it is already {current:%d %b %Y %H:%M} UTC "
            f"and {to:%d %b %Y %H:%M} UTC is earlier."
        )
    if locked.clock_frozen_at is not None:
        locked.clock_frozen_at = to
    else:
        locked.clock_offset = to - wall_now()
    locked.clock_floor = to
    locked.save(update_fields=["clock_offset", "clock_frozen_at", "clock_floor"])
    _copy_clock(locked, lab)
    return lab


def clock_advance(*, lab: Lab, by: timedelta) -> Lab:
    if by < timedelta(0):
        raise ClockError("Time can only be advanced, not turned back.")
    return clock_set(lab=lab, to=lab_now(lab) + by)


@transaction.atomic
def clock_freeze(*, lab: Lab) -> Lab:
    """Stop the lab clock at its current time (useful for reproducible demos)."""
    locked = Lab.objects.select_for_update().get(pk=lab.pk)
    if locked.clock_frozen_at is None:
        now = lab_now(locked)
        locked.clock_frozen_at = now
        locked.clock_floor = now
        locked.save(update_fields=["clock_frozen_at", "clock_floor"])
    _copy_clock(locked, lab)
    return lab


@transaction.atomic
def clock_unfreeze(*, lab: Lab) -> Lab:
    """Let the lab clock run again from where it stood."""
    locked = Lab.objects.select_for_update().get(pk=lab.pk)
    if locked.clock_frozen_at is not None:
        locked.clock_offset = locked.clock_frozen_at - wall_now()
        locked.clock_floor = locked.clock_frozen_at
        locked.clock_frozen_at = None
        locked.save(update_fields=["clock_offset", "clock_frozen_at", "clock_floor"])
    _copy_clock(locked, lab)
    return lab


def _copy_clock(source: Lab, target: Lab) -> None:
    target.clock_offset = source.clock_offset
    target.clock_frozen_at = source.clock_frozen_at
    target.clock_floor = source.clock_floor
