"""Time-driven work: the registry of sweeps and the time-travel service.

Each app registers a sweep: a pair of functions over one lab,
  next_due(lab) -> datetime | None   the earliest due time it holds (one query)
  process(lab, now) -> int           do, in bulk, everything due at or before now
Both read their due times from indexed database columns, so the database is
the source of truth: a lost Celery message or a dead worker delays work but
loses none, and the next sweep picks it up.

`lab_advance` moves a lab's clock forward step by step, stopping at each due
time so that everything happens in chronological order and chained effects
(a failed renewal, then 90 days later the authorization expiry) land on the
lab date they would have in real time.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from licensing_core.clock import ClockError, clock_set, lab_now
from licensing_core.models import JobRun, JobStatus, JobTrigger, Lab


@dataclass(frozen=True)
class Sweep:
    name: str
    next_due: Callable[[Lab], datetime | None]
    process: Callable[[Lab, datetime], int]


_SWEEPS: dict[str, Sweep] = {}

# A safety net against a sweep that keeps reporting work due at the same
# instant (a bug): time travel stops with an error instead of spinning.
MAX_STEPS_AT_ONE_INSTANT = 50


def sweep_register(*, name: str, next_due: Callable, process: Callable) -> None:
    """Register (or replace, on reload) a sweep. Called from AppConfig.ready()."""
    _SWEEPS[name] = Sweep(name=name, next_due=next_due, process=process)


def sweeps() -> list[Sweep]:
    return list(_SWEEPS.values())


@dataclass
class AdvanceResult:
    started_at: datetime
    finished_at: datetime
    steps: int
    processed: int


def lab_sweep(*, lab: Lab, now: datetime) -> int:
    """Run every sweep once at `now`; returns how many items were processed."""
    return sum(sweep.process(lab, now) for sweep in sweeps())


def earliest_due(lab: Lab) -> datetime | None:
    """The lab time at which the next item falls due, across all sweeps."""
    return _earliest_due(lab)


def _earliest_due(lab: Lab) -> datetime | None:
    times = list(_due_times(lab).values())
    return min(times) if times else None


def _due_times(lab: Lab) -> dict[str, datetime]:
    """Each sweep's next due time (those with something due)."""
    times = {sweep.name: sweep.next_due(lab) for sweep in sweeps()}
    return {name: t for name, t in times.items() if t is not None}


def lab_advance(*, lab: Lab, to: datetime, trigger: str = JobTrigger.TIME_TRAVEL) -> AdvanceResult:
    """Move the lab clock to `to`, processing everything that falls due on the
    way, in order. Refuses to go backwards (ClockError). Recorded as one
    JobRun (kind "time_travel") for the lab page."""
    from licensing_core.tasks import job_finish, job_start

    start = lab_now(lab)
    if to < start:
        raise ClockError(
            f"The lab clock never moves backwards: it is already {start:%d %b %Y %H:%M} UTC "
            f"and {to:%d %b %Y %H:%M} UTC is earlier."
        )
    run = job_start(lab=lab, kind="time_travel", trigger=trigger, lab_time=to)
    try:
        result = _advance(lab, start, to)
    except Exception as exc:
        job_finish(run, ok=False, detail=repr(exc))
        raise
    job_finish(
        run,
        ok=True,
        detail=f"{start:%Y-%m-%d %H:%M} -> {to:%Y-%m-%d %H:%M} UTC: "
        f"{result.processed} item(s) in {result.steps} step(s)",
    )
    return result


def _advance(lab: Lab, start: datetime, to: datetime) -> AdvanceResult:
    steps = processed = 0
    last_instant, same_instant = None, 0
    # First catch up with anything already due now, then walk forward.
    processed += lab_sweep(lab=lab, now=start)
    while True:
        due_times = _due_times(lab)
        due = min(due_times.values(), default=None)
        if due is None or due > to:
            break
        step_to = max(due, lab_now(lab))
        if step_to == last_instant:
            same_instant += 1
            if same_instant > MAX_STEPS_AT_ONE_INSTANT:
                raise RuntimeError(f"Sweeps keep reporting work due at {step_to.isoformat()}; stopping.")
        else:
            last_instant, same_instant = step_to, 0
        clock_set(lab=lab, to=step_to)
        # Only the sweeps with something due by now: the others would only look
        # (the CSSM's look is a handful of aggregates over the whole account) and find nothing.
        due_now = [sweep for sweep in sweeps() if sweep.name in due_times and due_times[sweep.name] <= step_to]
        processed += sum(sweep.process(lab, step_to) for sweep in due_now)
        steps += 1
    clock_set(lab=lab, to=to)
    processed += lab_sweep(lab=lab, now=to)
    return AdvanceResult(started_at=start, finished_at=to, steps=steps, processed=processed)


@dataclass
class SweepStatus:
    last_sweep: JobRun | None  # the last run of the beat sweep for this lab
    last_time_travel: JobRun | None
    next_due: datetime | None  # lab time of the next item due


def sweep_status(*, lab: Lab) -> SweepStatus:
    """Last and next attempts for the lab page (a fixed number of queries)."""
    runs = JobRun.objects.filter(lab=lab).exclude(status=JobStatus.RUNNING)
    return SweepStatus(
        last_sweep=runs.filter(kind="sweep").order_by("-started_at", "-id").first(),
        last_time_travel=runs.filter(kind="time_travel").order_by("-started_at", "-id").first(),
        next_due=_earliest_due(lab),
    )


def lab_advance_by(*, lab: Lab, by: timedelta) -> AdvanceResult:
    if by <= timedelta(0):
        raise ClockError("Time can only be advanced by a positive amount.")
    return lab_advance(lab=lab, to=lab_now(lab) + by)
