"""Appliance timers for licensing_core.sweeps: what schedules.next_due says is due, fired in bulk, once.

`Appliance.next_due_at` holds the earliest due time of each appliance's timers
(in the appliance's own time; kept by services._save through
gateway_ui.timers), so:

- `gateway_next_due(lab)` is one query (per clock skew, so
  each appliance's skew is taken off exactly);
- `gateway_process(lab, now)` lists the due appliances in one query, then
  works through them in batches of up to 1,000 (LAB_SWEEP_BATCH_SIZE): one
  conditional UPDATE claims a batch (a lease in wall time,
  `sweep_claimed_until`, only on rows still due and unclaimed; RETURNING
  says which were won, with the columns their timers read), and their
  timers fire round by round (each appliance's first due timer per round,
  as the single path fires them one after the other): the services' own
  rules run on every appliance, read again under lock, with their writes
  deferred (gateway_ui.bulk) and written together — appliances, licence
  rows, events, alerts, e-mail — and the renewal exchanges of Direct
  appliances without a proxy go to the CSSM in batch POSTs
  (agent.client.exchange_many), each message built from the appliance as
  read once its exchange is claimed. Other exchanges (Transport Gateway,
  proxy, Device Led Conversion) run one by one as before. The UPDATEs of a
  thousand appliance rows cost ~40 ms each, so the exchange claim also
  extends the leases, and an appliance's last write releases its claims.

Two workers never fire the same appliance at once, and a worker killed
mid-sweep leaves leases that run out, after which the next sweep picks the
appliances up again (a batch's writes are one transaction: all or none);
before exchanges a batch extends its leases by the time they may take.
Timer alerts carry the Due.key, so an occurrence redone after a crash
raises no second alert and sends no second e-mail.

With `LAB_SWEEP_BATCH = False` (read at each sweep), or while the lab's CSSM
slow fault is on (each exchange then waits the delay against its own
timeout, as it does alone), every appliance is claimed and fired on its own:
the reference the batch path is tested against (gateway_ui/tests/test_sweep_batch.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Prefetch, Q

from gateway_ui import services
from gateway_ui.agent import client
from gateway_ui.agent.client import AgentError
from gateway_ui.bulk import DeferredWrites, save_changes, writes_deferred
from gateway_ui.models import Appliance, ApplianceLicense
from gateway_ui.timers import next_due_at, timer_inputs
from licensing_core.alerts import GatewayAlertKind as AK
from licensing_core.bulk import chunks, update_returning
from licensing_core.catalogue import license_by_code
from licensing_core.clock import wall_now
from licensing_core.faults import cssm_delay_seconds
from licensing_core.machines import (
    AUTHORIZATION,
    LICENSE,
    REGISTRATION,
    ConversionState,
    LicenseState,
    RegistrationState,
)
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


# The lab's distinct clock skews among appliances with a timer, walked up the
# (lab, clock_skew_minutes, next_due_at) index one value at a time (a "loose
# index scan"): a few index probes however many appliances the lab holds, where
# DISTINCT or GROUP BY read every appliance row of the lab (23 ms at 10,000).
_SKEWS_SQL = """
WITH RECURSIVE skews(k) AS (
    SELECT MIN(clock_skew_minutes) FROM {t} WHERE lab_id = %s AND next_due_at IS NOT NULL
    UNION ALL
    SELECT (SELECT MIN(clock_skew_minutes) FROM {t}
            WHERE lab_id = %s AND next_due_at IS NOT NULL AND clock_skew_minutes > skews.k)
    FROM skews WHERE skews.k IS NOT NULL
)
"""
# ... and for each skew, the appliance due first that no live claim holds (walking the same index in due order).
# (A table name goes in by format(); values are bound parameters.)
_FIRST_DUE_SQL = (
    _SKEWS_SQL  # noqa: S608
    + """SELECT id, next_due_at, clock_skew_minutes FROM {t} WHERE id IN (
    SELECT (SELECT a.id FROM {t} AS a
            WHERE a.lab_id = %s AND a.clock_skew_minutes = skews.k AND a.next_due_at IS NOT NULL
              AND (a.sweep_claimed_until IS NULL OR a.sweep_claimed_until < %s)
            ORDER BY a.next_due_at LIMIT 1)
    FROM skews WHERE skews.k IS NOT NULL)"""
)


def _skews(lab: Lab) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            (_SKEWS_SQL + "SELECT k FROM skews WHERE k IS NOT NULL").format(t=Appliance._meta.db_table),  # noqa: S608
            [lab.pk, lab.pk],
        )
        return [k for (k,) in cursor.fetchall()]


def gateway_next_due(lab: Lab) -> datetime | None:
    """Earliest due time in lab time (each appliance's due time minus its skew).

    One query whatever the lab's size: the first unclaimed due appliance of
    each distinct skew (index probes). Appliances another worker holds a live
    claim on are left out (their worker is firing them).
    """
    wall = connection.ops.adapt_datetimefield_value(wall_now())
    sql = _FIRST_DUE_SQL.format(t=Appliance._meta.db_table)  # the table name: no input
    # raw(): the model's own conversion of next_due_at, on every backend.
    firsts = Appliance.objects.raw(sql, [lab.pk, lab.pk, lab.pk, wall])
    return min((a.next_due_at - _skew(a.clock_skew_minutes) for a in firsts), default=None)


def _due_filter(lab: Lab, now: datetime) -> Q | None:
    skews = _skews(lab)
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
    due = Appliance.objects.filter(lab=lab).filter(due_q).filter(_unclaimed(wall_now())).order_by("next_due_at", "pk")
    if _batched(lab):
        size = min(getattr(settings, "LAB_SWEEP_BATCH_SIZE", client.BATCH_MAX), client.BATCH_MAX)
        ids = list(due.values_list("pk", flat=True))
        return sum(_process_batch(lab, part, due_q=due_q, lab_now=now) for part in chunks(ids, size))
    candidates = due.select_related("lab").prefetch_related(
        Prefetch("licenses", queryset=ApplianceLicense.objects.order_by("id"))
    )
    return sum(_process_one(snapshot, lab_now=now) for snapshot in candidates)


def _batched(lab: Lab) -> bool:
    if not getattr(settings, "LAB_SWEEP_BATCH", True):
        return False
    fresh = Lab.objects.only("faults").filter(pk=lab.pk).first()
    return fresh is not None and not cssm_delay_seconds(fresh)


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
                services._row_save(row, ["state"])
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
        row = _license(a, due.subject)
        name = license_by_code(a.product, row.code).name
        row.ooc_notices_sent_through = due.days_left
        if kind == "ooc_expiry" and LICENSE.allowed(row.state, "grace_expired"):
            row.state = LICENSE.apply(row.state, "grace_expired")
            services.alert_raise(a, kind=AK.FEATURE_EXPIRED, now=now, license=name, dedupe_key=f"feature:{key}")
        services._row_save(row, ["ooc_notices_sent_through", "state"])
        services._resync(a, now)
        services._save(a)
        services.alert_raise(
            a, kind=AK.OOC_GRACE_EXPIRY, now=now, days_left=due.days_left, license=name, dedupe_key=key
        )
    elif kind in ("reserved_license_warning", "reserved_license_expiry"):
        row = _license(a, due.subject)
        name = license_by_code(a.product, row.code).name
        row.reserved_notices_sent_through = due.days_left
        services._row_save(row, ["reserved_notices_sent_through"])
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


def _license(a: Appliance, code: str) -> ApplianceLicense:
    """The appliance's licence row for `code`, from `licenses.all()` (prefetched in the batch path)."""
    for row in a.licenses.all():
        if row.code == code:
            return row
    raise ApplianceLicense.DoesNotExist(f"{a.hostname} has no licence row {code!r}.")


# --- The batch path ------------------------------------------------------------------------------

EXCHANGE_TIMERS = ("auth_renewal", "id_renewal", "dlc_completion")
APPLY = {"auth_renewal": services.authorize_apply, "id_renewal": services.renew_id_apply}


def _at(lab_now: datetime, appliance: Appliance) -> datetime:
    return lab_now + _skew(appliance.clock_skew_minutes)


def _exchange_time(messages: int) -> timedelta:
    """How long an exchange of this many messages may take (connecting, then
    waiting for the answer: client.batch_timeout)."""
    return timedelta(seconds=sum(client.batch_timeout(messages)))


def _hold(held: set[int], extra: timedelta) -> None:
    """Extend the batch's claims by `extra`, before exchanges that may take
    that long: a claim must outlast the work it covers, or another worker
    would take the appliances over while they are still being fired."""
    until = wall_now() + claim_lease() + extra
    for part in chunks(sorted(held)):
        Appliance.objects.filter(pk__in=part).update(sweep_claimed_until=until)


def _claim_exchanges(pks: list[int], held: set[int], extra: timedelta) -> set[int]:
    """Claim these appliances' exchanges (won only where no exchange holds a
    live lease: a GUI "Renew Now" keeps its appliance) and hold their sweep
    claims over the exchange in the same UPDATE; the batch's other claims are
    held alone. Returns the exchanges won."""
    from gateway_ui.tasks import exchange_claim_many

    won = exchange_claim_many(pks, lease=claim_lease() + extra, hold_sweep=True)
    if held - won:
        _hold(held - won, extra)
    return won


# Which licence rows a read brings (each read brings no more than its use needs:
# at 1,000 appliances the rows are most of what a read costs).
# What schedules.next_due reads: the rows in grace or holding a reserved term (timers.timer_inputs).
TIMER_ROWS = Q(ooc_since__isnull=False) | Q(reserved_end__isnull=False, reserved_count__gt=0)
# What an authorize message reports (services._usage): the requested rows.
REQUESTED_ROWS = ~Q(state=LicenseState.NOT_REQUESTED)
# What the services read or change when a timer fires or a renewal's answer
# is applied: a row neither requested nor holding a grace period or reserved
# term is inert there (the licence machine moves a not-requested row only on
# a request, and nothing due reads it). Most rows of an appliance are such
# (10 of 14 in a fleet); the reference path reads them all and must agree
# (gateway_ui/tests/test_sweep_batch.py).
ACTIVE_ROWS = REQUESTED_ROWS | TIMER_ROWS
# What planning a round reads of an appliance: its timers (timers.timer_inputs
# and next_due_at), its clock and whether its exchange can go in a batch POST.
# A column missing here is read on first use, one query per appliance (the
# fixed-query tests would see it).
TIMER_FIELDS = (
    "lab_id", "licensing_mode", "registration_state", "authorization_state", "registered_at",
    "last_auth_success_at", "last_auth_attempt_at", "last_auth_ok", "id_issued_at", "id_expires_at",
    "last_id_attempt_at", "last_id_ok", "eval_remaining", "eval_running_since", "eval_notices_sent_through",
    "reservation_state", "reservation_requested_at", "last_reservation_reminder_at", "dlc_state",
    "dlc_started_at", "clock_skew_minutes", "transport_mode", "transport_url", "proxy_host",
)  # fmt: skip
# What a message needs of the appliance (envelope, body, transport) besides its rows.
MESSAGE_FIELDS = (
    "lab_id", "hostname", "product", "model_pid", "serial", "virtual", "registration_state",
    "device_key_pem", "transport_mode", "transport_url", "proxy_host", "clock_skew_minutes",
)  # fmt: skip


def _read(
    lab: Lab, pks: list[int], *, rows: Q | None, lock: bool = False, fields: tuple[str, ...] = ()
) -> list[Appliance]:
    """These appliances (in this order) with their licence rows matching
    `rows` prefetched (None: none), in the order the services read them;
    `lock` takes their row locks, `fields` reads only those columns.
    Appliances read with fewer than ACTIVE_ROWS or all fields are not for
    the services."""
    qs = Appliance.objects.filter(pk__in=pks)
    if rows is not None:
        qs = qs.prefetch_related(Prefetch("licenses", queryset=ApplianceLicense.objects.filter(rows).order_by("id")))
    if lock:
        qs = qs.select_for_update()
    if fields:
        qs = qs.only(*fields)
    by_pk = {}
    for a in qs:
        a.lab = lab  # the same lab row for all (the client reads the fault switches afresh)
        by_pk[a.pk] = a
    return [by_pk[pk] for pk in pks if pk in by_pk]


def _timer_rows(pks: list[int]) -> dict[int, list[ApplianceLicense]]:
    """Each appliance's TIMER_ROWS in row order (most have none: a list per
    appliance costs less than a prefetch cache per appliance)."""
    rows: dict[int, list[ApplianceLicense]] = {pk: [] for pk in pks}
    for row in ApplianceLicense.objects.filter(appliance_id__in=pks).filter(TIMER_ROWS).order_by("id"):
        rows[row.appliance_id].append(row)
    return rows


def _requested_codes(pks: list[int]) -> dict[int, list[str]]:
    """Each appliance's requested licence codes, in row order: all an
    authorize message says of its rows (services._usage), read as values
    (licence rows as objects are most of what a read costs)."""
    codes: dict[int, list[str]] = {pk: [] for pk in pks}
    rows = ApplianceLicense.objects.filter(appliance_id__in=pks).filter(REQUESTED_ROWS).order_by("id")
    for appliance_id, code in rows.values_list("appliance_id", "code"):
        codes[appliance_id].append(code)
    return codes


def _process_batch(lab: Lab, ids: list[int], *, due_q: Q, lab_now: datetime) -> int:
    """Claim these appliances (those still due and unclaimed) with one UPDATE
    and fire their due timers, round by round; returns how many fired."""
    wall = wall_now()
    claimable = Appliance.objects.filter(pk__in=ids).filter(due_q).filter(_unclaimed(wall))
    # The claim is also the read of what planning needs, as the claim left it.
    claimed = {
        a.pk: a for a in update_returning(claimable, fields=TIMER_FIELDS, sweep_claimed_until=wall + claim_lease())
    }
    if not claimed:
        return 0
    held = set(claimed)  # the claims still held: released with an appliance's last write, or at the end
    current = {pk: claimed[pk] for pk in ids if pk in claimed}
    rows = _timer_rows(list(current))  # each appliance's rows as its timers see them (timer_inputs)
    fired = dict.fromkeys(current, 0)
    try:
        active = list(current.values())
        for _ in range(MAX_FIRES_PER_APPLIANCE):
            plan = []
            for a in active:
                due = due_now(timer_inputs(a, rows[a.pk]), now=_at(lab_now, a))
                if due:
                    plan.append((a, due[0]))
            if not plan:
                break
            active = _fire_round(lab, plan, lab_now, held)
            for a in active:
                fired[a.pk] += 1
                current[a.pk], rows[a.pk] = a, list(a.licenses.all())
    finally:
        _release_batch(held, stale=[(a, rows[a.pk]) for a in current.values() if fired[a.pk] == 0])
    return sum(fired.values())


def _release_batch(held: set[int], *, stale: list[tuple[Appliance, list[ApplianceLicense]]]) -> None:
    """Release the claims still held; where nothing fired although the column
    said "due", it was stale (a write that bypassed services._save): correct it."""
    fixes = [(a, {"sweep_claimed_until": None, "next_due_at": next_due_at(a, rows)}) for a, rows in stale]
    save_changes(Appliance, fixes)
    rest = sorted(held - {a.pk for a, _ in stale})
    for part in chunks(rest):
        Appliance.objects.filter(pk__in=part).update(sweep_claimed_until=None)


def _release_with_write(writes: DeferredWrites, claimed: set[int], lab_now: datetime) -> tuple[set[int], set[int]]:
    """Let the write of each appliance it saves release its claims (one
    UPDATE less per claim kind and batch): its exchange claim, and its sweep
    claim where nothing more is due at this instant (so the next round would
    not plan it: _process_batch plans from the same state). Returns the
    (exchange, sweep) claims it releases once committed."""
    exchanges, sweeps = set(), set()
    for pk, a in writes.appliances.items():
        if pk in claimed:
            a.exchange_claimed_until = None
            exchanges.add(pk)
        if not due_now(timer_inputs(a, a.licenses.all()), now=_at(lab_now, a)):
            a.sweep_claimed_until = None
            sweeps.add(pk)
    return exchanges, sweeps


def _fire_round(lab: Lab, plan: list[tuple[Appliance, Due]], lab_now: datetime, held: set[int]) -> list[Appliance]:
    """Fire one due timer per planned appliance; returns the appliances that
    fired, in plan order, as they are now. An exchange another worker is
    running (a GUI "Renew Authorization Now") is not fired, as on the single
    path. `held` loses the sweep claims that the round's write released."""
    from gateway_ui.tasks import exchange_release_many

    together = [(a, d) for a, d in plan if d.kind in APPLY and client.batchable(a)]
    alone = [(a, d) for a, d in plan if d.kind in EXCHANGE_TIMERS and not (d.kind in APPLY and client.batchable(a))]
    after: dict[int, Appliance] = {}
    claimed = set()
    if together:
        claimed = _claim_exchanges([a.pk for a, _ in together], held, _exchange_time(len(together)))
    try:
        outcomes, idle = _exchange_together(lab, [(a, d) for a, d in together if a.pk in claimed], lab_now)
        # Read again under lock: what fires, and (unchanged) what had nothing to send.
        write = [a.pk for a, d in plan if a.pk in outcomes or a.pk in idle or d.kind not in EXCHANGE_TIMERS]
        if write:
            with transaction.atomic():
                locked = {a.pk: a for a in _read(lab, write, rows=ACTIVE_ROWS, lock=True)}
                with writes_deferred(locked.values()) as writes:
                    for a, due in plan:
                        if a.pk not in locked or a.pk in idle:
                            continue
                        if a.pk in outcomes:
                            APPLY[due.kind](locked[a.pk], outcome=outcomes[a.pk], now=_at(lab_now, a))
                        else:
                            _fire_local(locked[a.pk], due, _at(lab_now, a))
                    released = _release_with_write(writes, claimed, lab_now)
                    writes.flush()
            claimed -= released[0]
            held -= released[1]
            after.update(locked)
    finally:
        if claimed:
            exchange_release_many(claimed)
    full: dict[int, Appliance] = {}
    if alone:
        _hold(held, len(alone) * _exchange_time(1))
        # The services read these afresh, but from an appliance with every column
        # (one planned from TIMER_FIELDS would load each other column on its own).
        full = {a.pk: a for a in _read(lab, [a.pk for a, _ in alone], rows=None)}
    for a, due in alone:
        if a.pk in full and _fire(full[a.pk], due, _at(lab_now, a)):
            after[a.pk] = _read(lab, [a.pk], rows=TIMER_ROWS, fields=TIMER_FIELDS)[0]
    return [after[a.pk] for a, _ in plan if a.pk in after]


def _exchange_together(
    lab: Lab, pairs: list[tuple[Appliance, Due]], lab_now: datetime
) -> tuple[dict[int, dict | AgentError], set[int]]:
    """Send the renewals of claimed appliances in batch POSTs: each one's
    answer or failure by appliance id, and the appliances that had nothing
    to send. Like services.authorize_exchange and renew_id_exchange, each
    appliance is read afresh once its exchange is claimed, and one no longer
    registered sends nothing (its timer counts as fired: nothing is due for
    it any more)."""
    if not pairs:
        return {}, set()
    pks = [a.pk for a, _ in pairs]
    fresh = {a.pk: a for a in _read(lab, pks, rows=None, fields=MESSAGE_FIELDS)}
    send, idle = [], set()
    for a, due in pairs:
        appliance = fresh.get(a.pk)
        if appliance is None:
            continue
        if appliance.registration_state != RegistrationState.REGISTERED:
            idle.add(a.pk)
            continue
        send.append((appliance, services.EXCHANGE_OF_TIMER[due.kind]))
    codes = _requested_codes([a.pk for a, kind in send if kind == "authorize"])
    messages = [
        (a, kind, services.exchange_body(a, kind, requested=codes.get(a.pk)), _at(lab_now, a)) for a, kind in send
    ]
    results = client.exchange_many(messages)
    return {a.pk: result for (a, _), result in zip(send, results, strict=True)}, idle
