"""Smart Agent exchanges in Celery: thin wrappers that fetch by id and call the service.

Each wrapper first claims the appliance's exchange with a conditional UPDATE
(a lease in wall time, `exchange_claimed_until`), so the message the page
sent and the recovery task (or the sweep) never run the same exchange at
once, and records a JobRun (what ran, why, how it ended) for the pages.
"""

import uuid
from contextlib import contextmanager
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, Exchange
from gateway_ui.sweeps import claim_lease
from licensing_core.bulk import chunks, update_returning_pks
from licensing_core.clock import wall_now
from licensing_core.context import request_id_var
from licensing_core.machines import AgentUpdateState
from licensing_core.models import JobTrigger
from licensing_core.tasks import job_finish, job_start


@contextmanager
def _request(request_id: str | None):
    token = request_id_var.set(uuid.UUID(request_id) if request_id else None)
    try:
        yield
    finally:
        request_id_var.reset(token)


def _get(appliance_id: int) -> Appliance | None:
    return Appliance.objects.select_related("lab").filter(pk=appliance_id).first()


def _free(wall) -> Q:
    return Q(exchange_claimed_until__isnull=True) | Q(exchange_claimed_until__lt=wall)


def exchange_claim(appliance_id: int) -> bool:
    """Won by exactly one caller while nobody else holds a live lease."""
    wall = wall_now()
    return (
        Appliance.objects.filter(pk=appliance_id)
        .filter(_free(wall))
        .update(exchange_claimed_until=wall + claim_lease())
        == 1
    )


def exchange_release(appliance_id: int) -> None:
    Appliance.objects.filter(pk=appliance_id).update(exchange_claimed_until=None)


def exchange_claim_many(
    appliance_ids: list[int], *, lease: timedelta | None = None, hold_sweep: bool = False
) -> set[int]:
    """`exchange_claim` for many appliances in one UPDATE: the ids won.
    `lease` (default LAB_SWEEP_LEASE_SECONDS) must cover the work, a batch
    exchange included. `hold_sweep`: the sweep's batch also holds its sweep
    claims on the ids won until then, in the same UPDATE (an UPDATE of a
    thousand appliance rows costs ~40 ms)."""
    wall = wall_now()
    until = wall + (lease or claim_lease())
    values = {"exchange_claimed_until": until} | ({"sweep_claimed_until": until} if hold_sweep else {})
    won: set[int] = set()
    for part in chunks(appliance_ids):
        free = Appliance.objects.filter(pk__in=part).filter(_free(wall))
        won.update(update_returning_pks(free, **values))
    return won


def exchange_release_many(appliance_ids: set[int] | list[int]) -> None:
    for part in chunks(list(appliance_ids)):
        Appliance.objects.filter(pk__in=part).update(exchange_claimed_until=None)


@contextmanager
def exchange_claimed(appliance_id: int):
    """`with exchange_claimed(pk) as won:` run the exchange only if won."""
    won = exchange_claim(appliance_id)
    try:
        yield won
    finally:
        if won:
            exchange_release(appliance_id)


def _run(kind: str, appliance_id: int, request_id: str | None, trigger: str, call) -> None:
    with _request(request_id), exchange_claimed(appliance_id) as won:
        if not won:
            return  # someone else is carrying this exchange out right now
        appliance = _get(appliance_id)
        if appliance is None:
            return
        now = appliance_now(appliance)
        run = job_start(kind=kind, trigger=trigger, lab=appliance.lab, lab_time=now, subject_id=appliance.pk)
        try:
            result = call(appliance, now)
        except Exception as exc:
            job_finish(run, ok=False, detail=repr(exc))
            raise
        job_finish(run, ok=result is not False, detail=appliance.hostname)


@shared_task
def agent_register_task(appliance_id: int, request_id: str | None = None, trigger: str = JobTrigger.GUI) -> None:
    _run(
        "register",
        appliance_id,
        request_id,
        trigger,
        lambda a, now: services.agent_register_exchange(appliance=a, now=now),
    )


@shared_task
def authorize_task(appliance_id: int, request_id: str | None = None, trigger: str = JobTrigger.GUI) -> None:
    _run(
        "auth_renewal",
        appliance_id,
        request_id,
        trigger,
        lambda a, now: services.authorize_exchange(appliance=a, now=now),
    )


@shared_task
def renew_id_task(appliance_id: int, request_id: str | None = None, trigger: str = JobTrigger.GUI) -> None:
    _run(
        "id_renewal", appliance_id, request_id, trigger, lambda a, now: services.renew_id_exchange(appliance=a, now=now)
    )


@shared_task
def deregister_task(appliance_id: int, request_id: str | None = None, trigger: str = JobTrigger.GUI) -> None:
    _run(
        "deregister",
        appliance_id,
        request_id,
        trigger,
        lambda a, now: services.deregister_exchange(appliance=a, now=now),
    )


@shared_task
def dlc_complete_task(appliance_id: int, request_id: str | None = None, trigger: str = JobTrigger.GUI) -> None:
    _run(
        "dlc_completion", appliance_id, request_id, trigger, lambda a, now: services.dlc_complete(appliance=a, now=now)
    )


@shared_task
def agent_update_task(appliance_id: int, request_id: str | None = None, trigger: str = JobTrigger.GUI) -> None:
    _run(
        "agent_update",
        appliance_id,
        request_id,
        trigger,
        lambda a, now: services.agent_update_run(appliance=a, now=now, latest=settings.SMART_AGENT_VERSION),
    )


EXCHANGE_TASKS = {
    Exchange.REGISTER: agent_register_task,
    Exchange.DEREGISTER: deregister_task,
    Exchange.AUTHORIZE: authorize_task,
    Exchange.RENEW_ID: renew_id_task,
}


@shared_task(name="gateway_ui.tasks.exchanges_recover_task")
def exchanges_recover_task() -> int:
    """Carry out exchanges still pending LAB_EXCHANGE_RECOVERY_SECONDS after
    the page queued them: their message never reached a worker (the broker
    was down, or the message was lost). Beat runs it; each run is claimed
    like any other, so it never doubles an exchange a worker is running."""
    wall = wall_now()
    cutoff = wall - timedelta(seconds=settings.LAB_EXCHANGE_RECOVERY_SECONDS)
    pending = list(
        Appliance.objects.filter(exchange_requested_at__lt=cutoff)
        .filter(_free(wall))
        .values_list("pk", "exchange", "agent_update_state", "exchange_requested_at")
    )
    recovered = 0
    for pk, exchange, update_state, requested_at in pending:
        task = EXCHANGE_TASKS.get(exchange)
        if task is None and update_state == AgentUpdateState.UPDATING:
            task = agent_update_task
        if task is not None:
            task(pk, trigger=JobTrigger.BEAT)  # in this worker, now
            recovered += 1
        # Still pending and untouched (the service found nothing to do): try
        # again after another interval rather than on every tick.
        Appliance.objects.filter(pk=pk, exchange_requested_at=requested_at).update(exchange_requested_at=wall_now())
    return recovered
