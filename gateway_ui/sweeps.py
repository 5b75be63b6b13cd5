"""Appliance timers for licensing_core.sweeps: what schedules.next_due says is due, fired in bulk.

Due times come from the appliance columns (indexed) through licensing_core.schedules,
so the sweep and the pages agree on "when". Each firing changes the inputs so the
same item is never due twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q

from gateway_ui import services
from gateway_ui.models import Appliance
from licensing_core.alerts import GatewayAlertKind as AK
from licensing_core.catalogue import license_by_code
from licensing_core.machines import (
    AUTHORIZATION,
    LICENSE,
    REGISTRATION,
    LicenseState,
    LicensingMode,
    RegistrationState,
)
from licensing_core.models import Lab
from licensing_core.schedules import Due, EvalClock, TimerInputs, due_now, next_due


def _candidates(lab: Lab):
    return (
        Appliance.objects.select_related("lab")
        .filter(lab=lab, licensing_mode=LicensingMode.SMART)
        .filter(
            Q(registration_state=RegistrationState.REGISTERED)
            | Q(eval_running_since__isnull=False)
            | Q(reservation_requested_at__isnull=False)
            | Q(dlc_started_at__isnull=False, dlc_state="in_progress")
            | Q(licenses__ooc_since__isnull=False)
        )
        .distinct()
    )


def timer_inputs(appliance: Appliance) -> TimerInputs:
    rows = list(appliance.licenses.filter(ooc_since__isnull=False))
    return TimerInputs(
        registration_state=appliance.registration_state,
        authorization_state=appliance.authorization_state,
        registered_at=appliance.registered_at,
        last_auth_success_at=appliance.last_auth_success_at,
        last_auth_attempt_at=appliance.last_auth_attempt_at,
        last_auth_failed=appliance.last_auth_ok is False,
        id_cert_issued_at=appliance.id_issued_at,
        id_cert_expires_at=appliance.id_expires_at,
        last_id_renew_attempt_at=appliance.last_id_attempt_at,
        last_id_renew_failed=appliance.last_id_ok is False,
        eval=EvalClock(appliance.eval_remaining, appliance.eval_running_since),
        eval_notices_sent_through=appliance.eval_notices_sent_through,
        ooc_since={r.code: r.ooc_since for r in rows},
        ooc_notices_sent_through={r.code: r.ooc_notices_sent_through for r in rows if r.ooc_notices_sent_through},
        reservation_state=appliance.reservation_state,
        reservation_requested_at=appliance.reservation_requested_at,
        last_reservation_reminder_at=appliance.last_reservation_reminder_at,
        dlc_state=appliance.dlc_state,
        dlc_started_at=appliance.dlc_started_at,
    )


def _skew(appliance: Appliance) -> timedelta:
    return timedelta(minutes=appliance.clock_skew_minutes)


def gateway_next_due(lab: Lab) -> datetime | None:
    """Earliest due time in lab time (appliance times minus their skew)."""
    times = []
    for appliance in _candidates(lab):
        upcoming = next_due(timer_inputs(appliance), now=_EPOCH)
        if upcoming:
            times.append(upcoming[0].at - _skew(appliance))
    return min(times) if times else None


# "now" only chooses between overdue notices; from the epoch, next_due lists the earliest pending one.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def gateway_process(lab: Lab, now: datetime) -> int:
    processed = 0
    for appliance in _candidates(lab):
        at = now + _skew(appliance)
        for due in due_now(timer_inputs(appliance), now=at):
            appliance.refresh_from_db()
            _fire(appliance, due, at)
            processed += 1
    return processed


def _fire(appliance: Appliance, due: Due, now: datetime) -> None:  # noqa: C901
    kind = due.kind
    if kind == "auth_renewal":
        services.authorize_exchange(appliance=appliance, now=now)
    elif kind == "id_renewal":
        services.renew_id_exchange(appliance=appliance, now=now)
    elif kind == "dlc_completion":
        if not services.dlc_complete(appliance=appliance, now=now):
            appliance.refresh_from_db()
            if appliance.dlc_state == "in_progress":  # not due after all: avoid a loop
                Appliance.objects.filter(pk=appliance.pk).update(dlc_state="failed", dlc_reason="Conversion stalled.")
    else:
        with transaction.atomic():
            a = Appliance.objects.select_for_update().select_related("lab").get(pk=appliance.pk)
            _fire_local(a, due, now)


def _fire_local(a: Appliance, due: Due, now: datetime) -> None:
    kind = due.kind
    if kind == "auth_expiry":
        a.authorization_state = AUTHORIZATION.apply(a.authorization_state, "auth_deadline_passed")
        for row in a.licenses.all():
            if LICENSE.allowed(row.state, "auth_expired"):
                row.state = LICENSE.apply(row.state, "auth_expired")
                row.save(update_fields=["state"])
        a.save()
        services._event(a, now=now, kind="authorization.expired", message="Authorization of the product has expired")
        services.alert_raise(a, kind=AK.AUTH_EXPIRED, now=now)
    elif kind == "id_expiry":
        a.registration_state = REGISTRATION.apply(a.registration_state, "id_cert_expired")
        a.save()
        services._event(a, now=now, kind="registration.expired", message="The Id certificate has expired")
        services.alert_raise(a, kind=AK.ID_EXPIRED, now=now)
    elif kind == "eval_notice":
        a.eval_notices_sent_through = due.days_left
        a.save(update_fields=["eval_notices_sent_through"])
        services.alert_raise(a, kind=AK.EVAL_EXPIRY, now=now, days_left=due.days_left)
    elif kind == "eval_expiry":
        a.eval_notices_sent_through = 0
        for row in a.licenses.all():
            if row.state == LicenseState.EVAL:
                services._set_license(a, row, "no_eval_left", now)
        services._resync(a, now)
        a.save()
        services._event(a, now=now, kind="eval.expired", message="The evaluation period has expired")
        services.alert_raise(a, kind=AK.EVAL_EXPIRY, now=now, days_left=0)
    elif kind in ("ooc_notice", "ooc_expiry"):
        row = a.licenses.get(code=due.subject)
        name = license_by_code(a.product, row.code).name
        row.ooc_notices_sent_through = due.days_left
        if kind == "ooc_expiry" and LICENSE.allowed(row.state, "grace_expired"):
            row.state = LICENSE.apply(row.state, "grace_expired")
            services.alert_raise(a, kind=AK.FEATURE_EXPIRED, now=now, license=name)
        row.save(update_fields=["ooc_notices_sent_through", "state"])
        services.alert_raise(a, kind=AK.OOC_GRACE_EXPIRY, now=now, days_left=due.days_left, license=name)
    elif kind == "reservation_reminder":
        a.last_reservation_reminder_at = due.at
        a.save(update_fields=["last_reservation_reminder_at"])
        services.alert_raise(
            a,
            kind=AK.RESERVATION_INSTALL_REMINDER,
            now=now,
            requested_on=services.gateway_datetime(a.reservation_requested_at),
        )
