"""Celery tasks of the shared core. Tasks stay thin: they call services."""

from celery import shared_task

from licensing_core.models import JobRun, JobStatus, JobTrigger


@shared_task(name="licensing_core.tasks.heartbeat_task")
def heartbeat_task(trigger: str = JobTrigger.BEAT) -> int:
    """Record that a worker picked up a beat tick; the lab home shows the last
    one so a user can see the worker and beat are alive."""
    from licensing_core.clock import wall_now

    run = JobRun.objects.create(kind="heartbeat", trigger=trigger, status=JobStatus.SUCCEEDED)
    JobRun.objects.filter(pk=run.pk).update(finished_at=wall_now())
    return run.pk


@shared_task(name="licensing_core.tasks.sweep_labs_task")
def sweep_labs_task(trigger: str = JobTrigger.BEAT) -> int:
    """Process everything due in every lab at that lab's own time.

    Beat enqueues this every minute. Due work is read from the database, so
    a tick that is lost or a worker that dies only delays it; each sweep
    claims its rows with a conditional UPDATE, so two workers sweeping at once
    do not process an item twice.
    """
    from licensing_core.clock import lab_now, wall_now
    from licensing_core.models import Lab
    from licensing_core.sweeps import lab_sweep

    total = 0
    for lab in Lab.objects.all().iterator():
        now = lab_now(lab)
        run = JobRun.objects.create(lab=lab, kind="sweep", trigger=trigger, lab_time=now)
        try:
            processed = lab_sweep(lab=lab, now=now)
        except Exception as exc:
            JobRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED, finished_at=wall_now(), detail=repr(exc))
            raise
        JobRun.objects.filter(pk=run.pk).update(
            status=JobStatus.SUCCEEDED, finished_at=wall_now(), detail=f"{processed} item(s) processed"
        )
        total += processed
    return total


@shared_task(name="licensing_core.tasks.outbox_deliver_task")
def outbox_deliver_task() -> int:
    """Deliver queued e-mails. Beat runs it often; services also enqueue it
    after commit so a message goes out without waiting for the next tick."""
    from licensing_core.clock import wall_now
    from licensing_core.mail import outbox_deliver

    return outbox_deliver(now=wall_now())
