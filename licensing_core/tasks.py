"""Celery tasks of the shared core. Tasks stay thin: they call services.

`task_send` is how code hands work to Celery: the work is always recorded in
the database first (an exchange's pending state, an outbox row, a due time),
so a broker that is down must not break the page that asked. The message is
then simply not sent; the beat sweep or a recovery task finds the recorded
work later and carries it out.
"""

import logging

from celery import shared_task

from licensing_core.models import JobRun, JobStatus, JobTrigger

log = logging.getLogger(__name__)

# Publishing gives up quickly when the broker is down: the page must answer.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def task_send(task, *args, **kwargs) -> bool:
    """`task.apply_async(args, kwargs)`, or False (logged) when the broker cannot
    take the message. Only for work whose state is already in the database."""
    from config.celery import app

    if app.conf.task_always_eager:
        task.apply_async(args=args, kwargs=kwargs)  # in-process: errors are the task's own
        return True
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:  # kombu OperationalError, redis errors, socket errors ...
        log.warning("Broker unavailable, %s left for the recovery sweep: %s", task.name, exc)
        return False
    return True


def job_start(*, kind: str, trigger: str, lab=None, lab_time=None, subject_id: int | None = None) -> JobRun:
    return JobRun.objects.create(lab=lab, kind=kind, trigger=trigger, lab_time=lab_time, subject_id=subject_id)


def job_finish(run: JobRun, *, ok: bool, detail: str = "") -> None:
    from licensing_core.clock import wall_now

    JobRun.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED if ok else JobStatus.FAILED, finished_at=wall_now(), detail=detail[:2000]
    )


@shared_task(name="licensing_core.tasks.heartbeat_task")
def heartbeat_task(trigger: str = JobTrigger.BEAT) -> int:
    """Record that a worker picked up a beat tick; the lab home shows the last
    one so a user can see the worker and beat are alive."""
    run = job_start(kind="heartbeat", trigger=trigger)
    job_finish(run, ok=True)
    return run.pk


@shared_task(name="licensing_core.tasks.sweep_labs_task")
def sweep_labs_task(trigger: str = JobTrigger.BEAT) -> int:
    """Process everything due in every lab at that lab's own time.

    Beat enqueues this every LAB_SWEEP_SECONDS. Due work is read from the
    database, so a tick that is lost or a worker that dies only delays it;
    each sweep claims its rows with a conditional UPDATE, so two workers
    sweeping at once do not process an item twice.
    """
    from licensing_core.clock import lab_now
    from licensing_core.models import Lab
    from licensing_core.sweeps import lab_sweep

    total = 0
    for lab in Lab.objects.all().iterator():
        now = lab_now(lab)
        run = job_start(lab=lab, kind="sweep", trigger=trigger, lab_time=now)
        try:
            processed = lab_sweep(lab=lab, now=now)
        except Exception as exc:
            job_finish(run, ok=False, detail=repr(exc))
            raise
        job_finish(run, ok=True, detail=f"{processed} item(s) processed")
        total += processed
    return total


@shared_task(name="licensing_core.tasks.outbox_deliver_task")
def outbox_deliver_task() -> int:
    """Deliver queued e-mails. Beat runs it often; mail_enqueue also sends it
    after commit so a message goes out without waiting for the next tick."""
    from licensing_core.clock import wall_now
    from licensing_core.mail import outbox_deliver

    return outbox_deliver(now=wall_now())
