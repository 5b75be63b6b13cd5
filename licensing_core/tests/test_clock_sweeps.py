"""The lab clock, time travel through registered sweeps, and the lab page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from licensing_core import sweeps
from licensing_core.clock import ClockError, clock_freeze, clock_set, clock_unfreeze, lab_now
from licensing_core.events import event_record
from licensing_core.models import Event, Lab

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def lab():
    return Lab.objects.create(name="T", slug="t", clock_frozen_at=START)


@pytest.fixture
def reminder_sweep():
    """A sweep over a plain list of due times, standing in for an app's
    indexed due-time columns. It records the lab time each item ran at."""
    due = [START + timedelta(days=d) for d in (3, 1, 10)]
    ran = []

    def next_due(lab):
        return min(due) if due else None

    def process(lab, now):
        done = sorted(t for t in due if t <= now)
        for t in done:
            due.remove(t)
            ran.append((t, lab_now(lab)))
            # a chained effect: the first item schedules another 30 days later
            if t == START + timedelta(days=1):
                due.append(t + timedelta(days=30))
        return len(done)

    sweeps.sweep_register(name="test-reminders", next_due=next_due, process=process)
    yield ran
    sweeps._SWEEPS.pop("test-reminders")


def test_a_frozen_clock_stays_put_and_a_running_one_follows_the_wall(lab):
    assert lab_now(lab) == START
    lab.clock_frozen_at = None
    lab.clock_offset = timedelta(days=10)
    wall = datetime(2026, 6, 1, tzinfo=UTC)
    assert lab_now(lab, wall=wall) == wall + timedelta(days=10)


def test_the_clock_never_moves_backwards(lab):
    clock_set(lab=lab, to=START + timedelta(days=2))
    with pytest.raises(ClockError, match="never moves backwards"):
        clock_set(lab=lab, to=START + timedelta(days=1))
    lab.refresh_from_db()
    assert lab_now(lab) == START + timedelta(days=2)


def test_unfreezing_continues_from_the_frozen_instant(lab):
    clock_unfreeze(lab=lab)
    lab.refresh_from_db()
    assert lab.clock_frozen_at is None
    assert lab_now(lab) >= START
    assert lab_now(lab) - START < timedelta(minutes=1)
    clock_freeze(lab=lab)
    assert lab.clock_frozen_at is not None


def test_time_travel_processes_due_items_in_order_at_their_own_lab_time(lab, reminder_sweep):
    result = sweeps.lab_advance(lab=lab, to=START + timedelta(days=40))
    assert [ran_at for _, ran_at in reminder_sweep] == [due for due, _ in reminder_sweep]
    assert [due - START for due, _ in reminder_sweep] == [timedelta(days=d) for d in (1, 3, 10, 31)]
    assert result.processed == 4
    assert lab_now(lab) == START + timedelta(days=40)


def test_time_travel_leaves_later_items_for_later(lab, reminder_sweep):
    sweeps.lab_advance(lab=lab, to=START + timedelta(days=5))
    assert len(reminder_sweep) == 2
    sweeps.lab_advance_by(lab=lab, by=timedelta(days=30))
    assert len(reminder_sweep) == 4


def test_time_travel_refuses_to_go_back(lab):
    with pytest.raises(ClockError):
        sweeps.lab_advance(lab=lab, to=START - timedelta(days=1))
    with pytest.raises(ClockError):
        sweeps.lab_advance_by(lab=lab, by=timedelta(0))


def test_advance_clock_command(lab, reminder_sweep, capsys):
    call_command("advance_clock", "--lab", "t", "--days", "2")
    assert lab_now(Lab.objects.get(pk=lab.pk)) == START + timedelta(days=2)
    call_command("advance_clock", "--lab", "t", "--to", "2026-02-15")
    assert lab_now(Lab.objects.get(pk=lab.pk)) == datetime(2026, 2, 15, tzinfo=UTC)
    out = capsys.readouterr().out
    assert "1 due item(s) processed" in out.splitlines()[0]
    assert "3 due item(s) processed" in out.splitlines()[1]
    with pytest.raises(CommandError, match="never moves backwards"):
        call_command("advance_clock", "--lab", "t", "--to", "2026-01-01")
    with pytest.raises(CommandError, match="no lab"):
        call_command("advance_clock", "--lab", "nope", "--days", "1")
    with pytest.raises(CommandError, match="not an ISO 8601"):
        call_command("advance_clock", "--lab", "t", "--to", "next tuesday")


def test_events_are_append_only(lab):
    event = event_record(lab=lab, at=START, side="lab", kind="test", message="hello")
    event.message = "changed"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    assert Event.objects.get(pk=event.pk).message == "hello"
