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
