from datetime import UTC, datetime, timedelta

import pytest

from licensing_core import sweeps
from licensing_core.models import JobRun, Lab
from licensing_core.tasks import sweep_labs_task

pytestmark = pytest.mark.django_db


def test_the_beat_sweep_processes_each_lab_at_its_own_time():
    a = Lab.objects.create(name="A", slug="a", clock_frozen_at=datetime(2026, 1, 1, tzinfo=UTC))
    b = Lab.objects.create(name="B", slug="b", clock_frozen_at=datetime(2027, 6, 1, tzinfo=UTC))
    seen = {}

    def process(lab, now):
        seen[lab.slug] = now
        return 1

    sweeps.sweep_register(name="test-seen", next_due=lambda lab: None, process=process)
    try:
        assert sweep_labs_task.delay().get() == 2
    finally:
        sweeps._SWEEPS.pop("test-seen")
    assert seen == {"a": a.clock_frozen_at, "b": b.clock_frozen_at}
    runs = JobRun.objects.filter(kind="sweep").order_by("lab__slug")
    assert [(r.lab.slug, r.status, r.lab_time) for r in runs] == [
        ("a", "succeeded", a.clock_frozen_at),
        ("b", "succeeded", b.clock_frozen_at),
    ]


def test_a_failing_sweep_is_recorded_as_failed():
    Lab.objects.create(name="A", slug="a", clock_frozen_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(0))

    def process(lab, now):
        raise RuntimeError("boom")

    sweeps.sweep_register(name="test-boom", next_due=lambda lab: None, process=process)
    try:
        with pytest.raises(RuntimeError):
            sweep_labs_task.delay()
    finally:
        sweeps._SWEEPS.pop("test-boom")
    run = JobRun.objects.get(kind="sweep")
    assert run.status == "failed"
    assert "boom" in run.detail
