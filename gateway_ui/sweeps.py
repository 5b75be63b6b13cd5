"""Appliance timers for licensing_core.sweeps: what schedules.next_due says is due, fired in bulk, once.

`Appliance.next_due_at` holds the earliest due time of each appliance's timers
(in the appliance's own time; kept by services._save through
gateway_ui.timers), so:

- `gateway_next_due(lab)` is one aggregate query (grouped by clock skew, so
  each appliance's skew is taken off exactly);
- `gateway_process(lab, now)` selects the due appliances in one query with
  their licence rows prefetched, then claims each with a conditional UPDATE
  (a lease in wall time, `sweep_claimed_until`) before firing its timers.
  Two workers never fire the same appliance at once, and a worker killed
  mid-sweep leaves a lease that runs out, after which the next sweep picks
  the appliance up again. Timer alerts carry the Due.key, so an occurrence
  redone after a crash raises no second alert and sends no second e-mail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Prefetch, Q

from gateway_ui import services
from gateway_ui.models import Appliance, ApplianceLicense
from gateway_ui.timers import next_due_at, timer_inputs
from licensing_core.alerts import GatewayAlertKind as AK
from licensing_core.catalogue import license_by_code
from licensing_core.clock import wall_now
from licensing_core.machines import AUTHORIZATION, LICENSE, REGISTRATION, ConversionState, LicenseState
from licensing_core.models import Lab
from licensing_core.schedules import Due, due_now

# Firing one timer changes the inputs; an appliance whose timers keep being
# due after this many firings at one instant is a bug, not work.
MAX_FIRES_PER_APPLIANCE = 20


def claim_lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "LAB_SWEEP_LEASE_SECONDS", 300))


def _skew(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


def _unclaimed(wall: datetime) -> Q:
    return Q(sweep_claimed_until__isnull=True) | Q(sweep_claimed_until__lt=wall)


def gateway_next_due(lab: Lab) -> datetime | None:
    """Earliest due time in lab time (each appliance's due time minus its skew).

    One query: the minimum per distinct skew value. Appliances another worker
    holds a live claim on are left out (their worker is firing them).
    """
    rows = (
        Appliance.objects.filter(lab=lab, next_due_at__isnull=False)
        .filter(_unclaimed(wall_now()))
        .values("clock_skew_minutes")
        .annotate(first=Min("next_due_at"))
        .order_by()
    )
    times = [r["first"] - _skew(r["clock_skew_minutes"]) for r in rows]
    return min(times) if times else None


def _due_filter(lab: Lab, now: datetime) -> Q | None:
    skews = list(
        Appliance.objects.filter(lab=lab, next_due_at__isnull=False)
        .values_list("clock_skew_minutes", flat=True)
        .distinct()
        .order_by()
    )
    if not skews:
        return None
    q = Q()
    for minutes in skews:
        q |= Q(clock_skew_minutes=minutes, next_due_at__lte=now + _skew(minutes))
    return q


def gateway_process(lab: Lab, now: datetime) -> int:
    """Fire everything due at lab time `now`; returns how many timers fired."""
    due_q = _due_filter(lab, now)
    if due_q is None:
        return 0
    wall = wall_now()
    candidates = list(
        Appliance.objects.select_related("lab")
        .filter(lab=lab)
        .filter(due_q)
        .filter(_unclaimed(wall))
        .prefetch_related(Prefetch("licenses", queryset=ApplianceLicense.objects.order_by("id")))
        .order_by("next_due_at", "pk")
    )
    processed = 0
    for snapshot in candidates:
        processed += _process_one(snapshot, lab_now=now)
    return processed


def _claim(appliance: Appliance) -> bool:
    """Conditional UPDATE: won only if nobody holds a live lease and the due
    time is still the one we read (nobody fired it since)."""
    wall = wall_now()
    won = (
        Appliance.objects.filter(pk=appliance.pk, next_due_at=appliance.next_due_at)
        .filter(_unclaimed(wall))
        .update(sweep_claimed_until=wall + claim_lease())
    )
    return won == 1


def _release(appliance: Appliance, *, fix_next_due: bool, next_due: datetime | None) -> None:
    changes: dict = {"sweep_claimed_until": None}
    if fix_next_due:
        changes["next_due_at"] = next_due
    Appliance.objects.filter(pk=appliance.pk).update(**changes)


def _process_one(snapshot: Appliance, *, lab_now: datetime) -> int:
    if not _claim(snapshot):
        return 0  # another worker has it, or it changed since we read it
    at = lab_now + _skew(snapshot.clock_skew_minutes)
    fired = 0
    appliance, rows = snapshot, list(snapshot.licenses.all())
    try:
        while fired < MAX_FIRES_PER_APPLIANCE:
            due = due_now(timer_inputs(appliance, rows), now=at)
            if not due:
                break
            if not _fire(appliance, due[0], at):
                break
            fired += 1
            appliance = Appliance.objects.select_related("lab").get(pk=snapshot.pk)
            rows = list(appliance.licenses.order_by("id"))
    finally:
        # Nothing fired although the column said "due": it was stale (a write
        # that bypassed services._save); correct it so the lab moves on.
        stale = fired == 0
        _release(snapshot, fix_next_due=stale, next_due=next_due_at(appliance, rows) if stale else None)
    return fired


def _fire(appliance: Appliance, due: Due, now: datetime) -> bool:
    """Fire one timer; False if its exchange is being run by someone else."""
    from gateway_ui.tasks import exchange_claimed

    kind = due.kind
    if kind in ("auth_renewal", "id_renewal", "dlc_completion"):
        with exchange_claimed(appliance.pk) as won:
            if not won:
                return False  # a GUI-requested exchange is running; it moves the timer on
            _fire_exchange(appliance, kind, now)
        return True
    with transaction.atomic():
        _fire_local(services._lock(appliance), due, now)
    return True


def _fire_exchange(appliance: Appliance, kind: str, now: datetime) -> None:
    if kind == "auth_renewal":
        services.authorize_exchange(appliance=appliance, now=now)
    elif kind == "id_renewal":
        services.renew_id_exchange(appliance=appliance, now=now)
    elif not services.dlc_complete(appliance=appliance, now=now):
        with transaction.atomic():
            a = services._lock(appliance)
            if a.dlc_state == ConversionState.IN_PROGRESS:  # not due after all: avoid a loop
                a.dlc_state, a.dlc_reason = ConversionState.FAILED, "Conversion stalled."
                services._save(a)


def _fire_local(a: Appliance, due: Due, now: datetime) -> None:  # noqa: C901
    """Timers that change only the appliance: state, alert (keyed by the Due) and
    bookkeeping in one transaction, so a crash redoes all of it or none."""
    kind, key = due.kind, due.key
    if kind == "auth_expiry":
        a.authorization_state = AUTHORIZATION.apply(a.authorization_state, "auth_deadline_passed")
        for row in a.licenses.all():
            if LICENSE.allowed(row.state, "auth_expired"):
                row.state = LICENSE.apply(row.state, "auth_expired")
                row.save(update_fields=["state"])
        services._save(a)
        services._event(a, now=now, kind="authorization.expired", message="Authorization of the product has expired")
        services.alert_raise(a, kind=AK.AUTH_EXPIRED, now=now, dedupe_key=key)
    elif kind == "id_expiry":
        a.registration_state = REGISTRATION.apply(a.registration_state, "id_cert_expired")
        services._save(a)
        services._event(a, now=now, kind="registration.expired", message="The Id certificate has expired")
        services.alert_raise(a, kind=AK.ID_EXPIRED, now=now, dedupe_key=key)
    elif kind == "eval_notice":
        a.eval_notices_sent_through = due.days_left
        services._save(a)
        services.alert_raise(a, kind=AK.EVAL_EXPIRY, now=now, days_left=due.days_left, dedupe_key=key)
    elif kind == "eval_expiry":
        a.eval_notices_sent_through = 0
        for row in a.licenses.all():
            if row.state == LicenseState.EVAL:
                services._set_license(a, row, "no_eval_left", now)
        services._resync(a, now)
        services._save(a)
        services._event(a, now=now, kind="eval.expired", message="The evaluation period has expired")
        services.alert_raise(a, kind=AK.EVAL_EXPIRY, now=now, days_left=0, dedupe_key=key)
    elif kind in ("ooc_notice", "ooc_expiry"):
        row = a.licenses.get(code=due.subject)
        name = license_by_code(a.product, row.code).name
        row.ooc_notices_sent_through = due.days_left
        if kind == "ooc_expiry" and LICENSE.allowed(row.state, "grace_expired"):
            row.state = LICENSE.apply(row.state, "grace_expired")
            services.alert_raise(a, kind=AK.FEATURE_EXPIRED, now=now, license=name, dedupe_key=f"feature:{key}")
        row.save(update_fields=["ooc_notices_sent_through", "state"])
        services._resync(a, now)
        services._save(a)
        services.alert_raise(
            a, kind=AK.OOC_GRACE_EXPIRY, now=now, days_left=due.days_left, license=name, dedupe_key=key
        )
    elif kind in ("reserved_license_warning", "reserved_license_expiry"):
        row = a.licenses.get(code=due.subject)
        name = license_by_code(a.product, row.code).name
        row.reserved_notices_sent_through = due.days_left
        row.save(update_fields=["reserved_notices_sent_through"])
        services._save(a)
        if kind == "reserved_license_expiry":
            services._event(a, now=now, kind="reservation.expired", message=f"Reservation of {name} has expired")
            services.alert_raise(a, kind=AK.RESERVATION_EXPIRED, now=now, license=name, dedupe_key=key)
        else:
            services.alert_raise(
                a, kind=AK.RESERVATION_EXPIRY_WARNING, now=now, days_left=due.days_left, license=name, dedupe_key=key
            )
    elif kind == "reservation_reminder":
        a.last_reservation_reminder_at = due.at
        services._save(a)
        services.alert_raise(
            a,
            kind=AK.RESERVATION_INSTALL_REMINDER,
            now=now,
            requested_on=services.gateway_datetime(a.reservation_requested_at),
            dedupe_key=key,
        )
    else:  # a Due kind without a handler would be due forever
        raise ValueError(f"No handler for timer {kind!r}")
