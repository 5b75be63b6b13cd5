"""Smart Licensing on the appliance: every state change goes through here.

Each service takes the appliance's time as ``now`` (gateway_ui.clock.appliance_now),
checks the move against the transition tables of licensing_core.machines
(TransitionRefused.reason is what the user reads), writes one event row and
raises the §7.1 alert where the guide says so.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from gateway_ui.agent.client import AgentError, exchange
from gateway_ui.bulk import deferred
from gateway_ui.models import (
    Appliance,
    ApplianceAlert,
    ApplianceLicense,
    ChangeKind,
    Exchange,
    StagedChange,
    TransportMode,
)
from gateway_ui.timers import timers_bookkeep
from licensing_core import codes, pki
from licensing_core.alerts import GatewayAlertKind as AK
from licensing_core.alerts import alert_for, render_alert, severity_for
from licensing_core.catalogue import License, license_by_tag, licenses_for, smart_account_name_problems
from licensing_core.context import request_id_var
from licensing_core.events import event_build
from licensing_core.formats import eval_remaining_gui, gateway_datetime
from licensing_core.machines import (
    AGENT_UPDATE,
    AUTHORIZATION,
    DLC,
    LICENSE,
    LICENSING_MODE,
    REGISTRATION,
    REGISTRATION_MODE,
    RESERVATION,
    AgentUpdateState,
    ConversionState,
    LicenseState,
    LicensingMode,
    RegistrationMode,
    RegistrationState,
    ReservationState,
    TransitionRefused,
    aggregate_authorization,
    apply_license,
    check_release,
    initial_license_state,
)
from licensing_core.schedules import DLC_DURATION, EvalClock, eval_should_run, sync_eval_clock
from licensing_core.trust import lab_trust

LS = LicenseState
RS = RegistrationState
RV = ReservationState

__all__ = ["AgentError", "TransitionRefused", "ServiceError"]


class ServiceError(TransitionRefused):
    """Refused input (bad URL, bad code ...) with a sentence for the user."""


# --- helpers -------------------------------------------------------------------------------------


def _event(appliance: Appliance, *, now: datetime, kind: str, message: str, actor: str = "", **extra) -> None:
    event = event_build(
        lab=appliance.lab,
        at=now,
        side="gateway",
        kind=kind,
        message=message,
        actor=actor,
        appliance_id=appliance.pk,
        subject_name=appliance.hostname,
        **extra,
    )
    writes = deferred()
    if writes is not None:
        writes.events.append(event)
    else:
        event.save(force_insert=True)


def alert_raise(
    appliance: Appliance,
    *,
    kind: str,
    now: datetime,
    days_left: int | None = None,
    dedupe_key: str | None = None,
    **values,
) -> ApplianceAlert | None:
    """Raise a §7.1 alert at appliance time `now` and e-mail it to the alert
    recipients subscribed to its class and severity, unless it is a duplicate
    still inside its "Wait Before Sending a Duplicate Alert" interval.

    `dedupe_key` (a schedules.Due.key) makes the alert and its e-mail happen
    once per timer occurrence: a second call with the same key does nothing
    and returns None. Under bulk.writes_deferred the alert is returned
    unsaved and written (or found a duplicate) with its e-mail at flush.
    """
    from gateway_ui.alert_mail import alert_mail

    spec = alert_for(kind)
    alert = ApplianceAlert(
        appliance=appliance,
        kind=spec.kind,
        code=spec.code,
        severity=severity_for(kind, days_left),
        alert_class=spec.alert_class,
        text=render_alert(kind, days_left=days_left, **values),
        at=now,
        dedupe_key=dedupe_key,
        request_id=request_id_var.get(),
    )
    writes = deferred()
    if writes is not None:
        writes.alerts.append((appliance, alert))
        return alert
    if dedupe_key is None:
        alert.save()
    else:
        try:
            with transaction.atomic():
                alert.save()
        except IntegrityError:
            return None  # this occurrence already raised its alert
    alert_mail(appliance=appliance, alert=alert, now=now)
    return alert


def _lock(appliance: Appliance) -> Appliance:
    return Appliance.objects.select_for_update().select_related("lab").get(pk=appliance.pk)


def _catalogue(appliance: Appliance) -> dict[str, License]:
    return {lic.code: lic for lic in licenses_for(appliance.product)}


def _rows(appliance: Appliance) -> list[ApplianceLicense]:
    return list(appliance.licenses.all())


def _eval_clock(appliance: Appliance) -> EvalClock:
    return EvalClock(appliance.eval_remaining, appliance.eval_running_since)


def eval_remaining(appliance: Appliance, now: datetime) -> timedelta:
    return _eval_clock(appliance).remaining_at(now)


def eval_left(appliance: Appliance, now: datetime) -> bool:
    return appliance.eval_eligible and eval_remaining(appliance, now) > timedelta(0)


def _unregistered_action(appliance: Appliance, now: datetime) -> str:
    """What a requested licence becomes while unregistered: Eval while the
    evaluation period lasts, Eval Expired after it, and Not Authorized on a
    product that never had one (a new virtual gateway)."""
    if eval_left(appliance, now):
        return "eval_granted"
    return "no_eval_left" if appliance.eval_eligible else "no_eval"


def _resync(appliance: Appliance, now: datetime) -> None:
    """Eval clock and overall authorization status from the per-licence states."""
    rows = _rows(appliance)
    cat = _catalogue(appliance)
    registered = appliance.registration_state == RS.REGISTERED
    installed = appliance.reservation_state in (RV.SLR_INSTALLED, RV.PLR_INSTALLED)
    requested = any(r.requested for r in rows)  # product base licences keep the countdown running
    should_run = appliance.eval_eligible and eval_should_run(
        registered=registered, licenses_requested=requested, reservation_installed=installed
    )
    clock = sync_eval_clock(_eval_clock(appliance), should_run=should_run, now=now)
    appliance.eval_remaining, appliance.eval_running_since = clock.remaining, clock.running_since
    appliance.authorization_state = aggregate_authorization(
        [r.state for r in rows if not (cat[r.code].is_base and not appliance.virtual)],
        registered=registered,
        reservation=appliance.in_reservation_mode and not registered,
        eval_left=eval_left(appliance, now),
    )


def _set_license(appliance: Appliance, row: ApplianceLicense, action: str, now: datetime) -> bool:
    lic = _catalogue(appliance)[row.code]
    new = apply_license(lic, row.state, action, virtual=appliance.virtual)
    if new == row.state:
        return False
    old = row.state
    row.state = new
    row.changed_at = now
    if new == LS.OOC_GRACE and old != LS.OOC_GRACE:
        row.ooc_since = now
    elif new not in (LS.OOC_GRACE, LS.OOC_EXPIRED):
        row.ooc_since = None
    _row_save(row, ["state", "changed_at", "ooc_since"])
    if new == LS.EVAL:
        _event(
            appliance,
            now=now,
            kind="license.eval",
            message=f"{lic.name} license in eval mode is requested successfully on the appliance",
        )
    elif new == LS.IN_COMPLIANCE and not (lic.is_base and not appliance.virtual):
        _event(
            appliance,
            now=now,
            kind="license.in_compliance",
            message=f"{lic.name} license has been moved to In Compliance successfully",
        )
    elif new == LS.NOT_REQUESTED:
        _event(
            appliance,
            now=now,
            kind="license.released",
            message=f"{lic.name} license is released successfully from the appliance",
        )
    elif new == LS.OOC_GRACE:
        _event(
            appliance,
            now=now,
            kind="license.out_of_compliance",
            message=f"{lic.name} license has been moved to Out Of Compliance",
        )
    else:
        _event(appliance, now=now, kind=f"license.{new}", message=f"{lic.name} license is {LS(new).label}")
    return True


def _back_to_eval(appliance: Appliance, now: datetime) -> None:
    """After deregistering or returning a reservation: requested licences go back to eval."""
    action = _unregistered_action(appliance, now)
    for row in _rows(appliance):
        if row.requested and row.state != LS.EVAL and LICENSE.allowed(row.state, action):  # noqa: SIM114
            _set_license(appliance, row, action, now)
        elif row.state == LS.EVAL and action == "no_eval_left":
            _set_license(appliance, row, action, now)


def _save(appliance: Appliance) -> None:
    """Every appliance write of the services goes through here: the timer
    bookkeeping (next_due_at, read by the sweep) and the pending-exchange
    stamp (read by the recovery task) are kept with the state they follow."""
    from licensing_core.clock import wall_now

    timers_bookkeep(appliance)
    pending = bool(appliance.exchange) or appliance.agent_update_state == AgentUpdateState.UPDATING
    if not pending:
        appliance.exchange_requested_at = None
    elif appliance.exchange_requested_at is None:
        appliance.exchange_requested_at = wall_now()  # real-world: when the work was handed to Celery
    writes = deferred()
    if writes is not None:
        writes.appliance_saved(appliance)
    else:
        appliance.save()


def _row_save(row: ApplianceLicense, fields: list[str]) -> None:
    """Save these fields of a licence row (or collect them, under bulk.writes_deferred)."""
    writes = deferred()
    if writes is not None:
        writes.row_saved(row, fields)
    else:
        row.save(update_fields=fields)


def _on_commit_task(name: str, appliance_id: int, **kwargs) -> None:
    """Hand an exchange to Celery once the transaction commits. The pending
    state is already in the database (Appliance.exchange and
    exchange_requested_at), so if the broker is down the page still answers
    and tasks.exchanges_recover_task carries the exchange out later."""
    from gateway_ui import tasks
    from licensing_core.context import request_id_var
    from licensing_core.tasks import task_send

    task = getattr(tasks, name)
    request_id = request_id_var.get()
    transaction.on_commit(
        lambda: task_send(task, appliance_id, request_id=str(request_id) if request_id else None, **kwargs)
    )


def _require_smart(appliance: Appliance) -> None:
    if appliance.licensing_mode != LicensingMode.SMART:
        raise TransitionRefused("Smart Software Licensing is not enabled. Enable it and commit your changes first.")


# --- Enable + commit ----------------------------------------------------------------------------------


@transaction.atomic
def sl_enable(*, appliance: Appliance, user, now: datetime, all_in_cluster: bool = False) -> list[Appliance]:
    """Enable Smart Software Licensing → OK: staged until Commit Changes."""
    targets = [appliance]
    if all_in_cluster and appliance.cluster_id:
        targets = list(appliance.cluster.members.exclude(pk=appliance.pk)) + [appliance]
    for target in targets:
        LICENSING_MODE.apply(target.licensing_mode, "enable")
        if StagedChange.objects.filter(appliance=target, kind=ChangeKind.ENABLE_SL).exists():
            raise TransitionRefused("Enabling Smart Software Licensing is already waiting to be committed.")
    for target in targets:
        StagedChange.objects.create(appliance=target, kind=ChangeKind.ENABLE_SL, staged_by=user, staged_at=now)
        _event(
            target,
            now=now,
            kind="changes.staged",
            actor=str(user or ""),
            message="Enable Smart Software Licensing (uncommitted)",
        )
    return targets


def _apply_enable(appliance: Appliance, now: datetime, actor: str) -> None:
    appliance.licensing_mode = LICENSING_MODE.apply(appliance.licensing_mode, "enable")
    appliance.sl_enabled_at = now
    if not appliance.device_key_pem:
        appliance.device_key_pem = pki.make_device_key().decode()
    # New virtual users without classic licences get no evaluation period (§1.5).
    appliance.eval_eligible = not appliance.virtual or bool(appliance.classic_feature_keys)
    if not appliance.eval_eligible:
        appliance.eval_remaining = timedelta(0)
    classic = set(appliance.classic_feature_keys or [])
    for lic in licenses_for(appliance.product):
        state = initial_license_state(
            lic,
            virtual=appliance.virtual,
            eval_available=appliance.eval_eligible,
            registered=False,
            eval_granted=appliance.eval_eligible,
        )
        # Features held under classic licensing stay available: requested in eval.
        if not lic.is_base and lic.code in classic and appliance.eval_eligible:
            state = LS.EVAL
        ApplianceLicense.objects.update_or_create(
            appliance=appliance, code=lic.code, defaults={"state": state, "changed_at": now}
        )
    _resync(appliance, now)
    _save(appliance)
    _event(appliance, now=now, kind="sl.enabled", message="Smart Licensing is enabled", actor=actor)
    alert_raise(appliance, kind=AK.SL_ENABLED, now=now)
    if appliance.eval_running_since is not None:
        alert_raise(
            appliance, kind=AK.EVAL_STARTED, now=now, remaining=eval_remaining_gui(eval_remaining(appliance, now))
        )


@transaction.atomic
def changes_commit(*, appliance: Appliance, user, role: str, now: datetime, comment: str = "") -> int:
    from gateway_ui.permissions import role_require

    appliance = _lock(appliance)
    changes = list(appliance.staged_changes.all())
    if not changes:
        raise TransitionRefused("No Changes Pending")
    role_require(role, "commit")
    if any(c.kind == ChangeKind.ENABLE_SL for c in changes):
        role_require(role, "commit_enable")
    actor = str(user or "")
    for change in changes:
        if change.kind == ChangeKind.ENABLE_SL:
            if appliance.licensing_mode == LicensingMode.CLASSIC:
                _apply_enable(appliance, now, actor)
        elif change.kind == ChangeKind.TRANSPORT:
            REGISTRATION.apply(appliance.registration_state, "edit_transport")
            appliance.transport_mode = change.payload["mode"]
            appliance.transport_url = change.payload.get("url", "")
            _save(appliance)
            option = "transport_gateway" if appliance.transport_mode == TransportMode.GATEWAY else "direct"
            _event(
                appliance,
                now=now,
                kind="transport.changed",
                actor=actor,
                message=f"transport settings is successful to {option} option",
            )
        elif change.kind == ChangeKind.PROXY:
            for key in ("proxy_host", "proxy_port", "proxy_username", "proxy_password"):
                setattr(appliance, key, change.payload.get(key) or ("" if key != "proxy_port" else None))
            _save(appliance)
            _event(
                appliance,
                now=now,
                kind="proxy.changed",
                actor=actor,
                message=f"Service Updates proxy set to {appliance.proxy_host or 'none'}",
            )
    count = len(changes)
    appliance.staged_changes.all().delete()
    _event(
        appliance,
        now=now,
        kind="changes.committed",
        actor=actor,
        message=f"Changes committed{': ' + comment if comment else ''}",
    )
    return count


@transaction.atomic
def changes_abandon(*, appliance: Appliance, user, now: datetime) -> int:
    count, _ = appliance.staged_changes.all().delete()
    if not count:
        raise TransitionRefused("No Changes Pending")
    _event(appliance, now=now, kind="changes.abandoned", actor=str(user or ""), message="Changes abandoned")
    return count


# --- Transport / proxy -----------------------------------------------------------------------------

INVALID_GATEWAY_URL = "Entered Invalid Gateway URL"


def transport_url_check(url: str, *, fips: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if not url or parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise ServiceError(INVALID_GATEWAY_URL)
    if fips and parts.scheme != "https":
        raise ServiceError("In FIPS mode, Transport Gateway supports only HTTPS. " + INVALID_GATEWAY_URL)
    return url


@transaction.atomic
def transport_stage(*, appliance: Appliance, mode: str, url: str, user, now: datetime) -> None:
    _require_smart(appliance)
    if appliance.in_reservation_mode:
        raise TransitionRefused("Transport settings are not used in license reservation mode.")
    if appliance.registration_state == RS.REGISTERED:
        raise TransitionRefused("Please deregister product to edit transport settings")
    REGISTRATION.apply(appliance.registration_state, "edit_transport")
    if mode not in TransportMode.values:
        raise ServiceError("Choose Direct or Transport Gateway.")
    payload = {"mode": mode, "url": ""}
    if mode == TransportMode.GATEWAY:
        payload["url"] = transport_url_check(url, fips=appliance.fips_mode)
    StagedChange.objects.update_or_create(
        appliance=appliance,
        kind=ChangeKind.TRANSPORT,
        defaults={"payload": payload, "staged_by": user, "staged_at": now},
    )


_HOST_RE = re.compile(r"^[A-Za-z0-9.-]+$")


@transaction.atomic
def proxy_stage(*, appliance: Appliance, host: str, port: int | None, username: str, password: str, user, now) -> None:
    host, username = host.strip(), username.strip()
    if host and not _HOST_RE.fullmatch(host):
        raise ServiceError("Enter a valid proxy host name or IP address.")
    if host and (port is None or not 1 <= port <= 65535):
        raise ServiceError("Enter a proxy port between 1 and 65535.")
    if "\\" in username:
        raise ServiceError(
            "The proxy user name must not include a domain: DOMAIN\\user is not supported. Enter the user name only."
        )
    payload = {
        "proxy_host": host,
        "proxy_port": port if host else None,
        "proxy_username": username if host else "",
        "proxy_password": password if host else "",
    }
    StagedChange.objects.update_or_create(
        appliance=appliance, kind=ChangeKind.PROXY, defaults={"payload": payload, "staged_by": user, "staged_at": now}
    )


# --- Registration mode / reservation enable-disable ------------------------------------------------


@transaction.atomic
def registration_mode_set(
    *, appliance: Appliance, mode: str, now: datetime, actor: str = "", all_in_cluster: bool = False
) -> list[tuple[Appliance, str]]:
    """Registration Mode radios + Confirm, or Change Type + Submit. Returns a result per machine."""
    targets = [appliance]
    if all_in_cluster and appliance.cluster_id:
        targets = [appliance] + list(appliance.cluster.members.exclude(pk=appliance.pk))
    results = []
    for target in targets:
        try:
            with transaction.atomic():
                _mode_set_one(_lock(target), mode, now, actor)
            results.append((target, "OK"))
        except TransitionRefused as exc:
            if target.pk == appliance.pk:
                raise
            results.append((target, exc.reason))
    return results


def _mode_set_one(appliance: Appliance, mode: str, now: datetime, actor: str) -> None:
    _require_smart(appliance)
    if mode not in RegistrationMode.values:
        raise ServiceError("Choose a registration mode.")
    if mode == appliance.registration_mode:
        if mode == RegistrationMode.SMART_LICENSE_REGISTRATION:
            return  # Confirm on the default: nothing to change
        raise TransitionRefused("License reservation is already enabled.")
    if appliance.exchange:
        raise TransitionRefused("A registration is already in progress.")
    REGISTRATION.apply(appliance.registration_state, "change_registration_mode")
    if mode == RegistrationMode.LICENSE_RESERVATION:
        appliance.registration_mode = REGISTRATION_MODE.apply(appliance.registration_mode, "enable_reservation")
        appliance.reservation_state = RESERVATION.apply(appliance.reservation_state, "enable")
        if appliance.registration_state == RS.UNIDENTIFIED:
            appliance.registration_state = REGISTRATION.apply(appliance.registration_state, "reservation_resumed")
        message = "License reservation is enabled"
    else:
        appliance.registration_mode = REGISTRATION_MODE.apply(appliance.registration_mode, "disable_reservation")
        old = appliance.reservation_state
        appliance.reservation_state = RESERVATION.apply(old, "disable")
        if old == RV.REQUESTED:
            appliance.reservation_request_code = ""
            appliance.reservation_requested_at = None
        if old in (RV.SLR_INSTALLED, RV.PLR_INSTALLED):
            appliance.registration_state = REGISTRATION.apply(appliance.registration_state, "reservation_kept")
        message = "License reservation is disabled"
    _resync(appliance, now)
    _save(appliance)
    _event(appliance, now=now, kind="reservation.mode", message=message, actor=actor)


# --- Online registration ---------------------------------------------------------------------------


@transaction.atomic
def agent_register(
    *, appliance: Appliance, token: str, force: bool, now: datetime, actor: str = "", reregister: bool = False
) -> None:
    """Register (or Reregister): validate, move to Registration Pending, run the exchange in Celery."""
    appliance = _lock(appliance)
    _require_smart(appliance)
    if appliance.in_reservation_mode:
        raise TransitionRefused(
            "In license reservation mode, Register generates a request code instead of using a token."
        )
    token = "".join(token.split())
    if not token:
        raise ServiceError(codes.TOKEN_EMPTY)
    if len(token) > 2000:
        raise ServiceError(codes.TOKEN_INVALID)
    action = "reregister" if reregister else "register"
    appliance.registration_state = REGISTRATION.apply(appliance.registration_state, action)
    appliance.pending_token = token
    appliance.pending_force = force or reregister
    appliance.registration_error = ""
    appliance.exchange = Exchange.REGISTER
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="registration.started",
        actor=actor,
        message="Registration of the product with Smart Software Manager is in progress",
    )
    _on_commit_task("agent_register_task", appliance.pk)


def agent_register_exchange(*, appliance: Appliance, now: datetime) -> None:
    """The register exchange (runs in Celery). Then authorization and DLC."""
    with transaction.atomic():
        appliance = _lock(appliance)
        if appliance.registration_state != RS.REGISTERING:
            return
        token, force = appliance.pending_token, appliance.pending_force
        appliance.pending_token = ""
        _save(appliance)
    body = {
        "token": token,
        "csr": pki.make_csr(
            key_pem=appliance.device_key_pem.encode(), common_name=appliance.hostname, udi=appliance.udi
        ).decode(),
        "hostname": appliance.hostname,
        "product": appliance.product,
        "pid": appliance.model_pid,
        "serial": appliance.serial,
        "software_version": appliance.software_version,
        "agent_version": appliance.agent_version,
        "force": bool(force),
    }
    try:
        answer = exchange(appliance=appliance, kind="register", body=body, now=now)
        cert = answer["certificate"]
        pki.cert_info(cert.encode())
    except AgentError as exc:
        _registration_failed(appliance, now, exc.reason)
        return
    except (KeyError, TypeError, pki.PkiError):
        _registration_failed(appliance, now, "Smart Software Manager sent an answer the Smart Agent cannot read.")
        return
    with transaction.atomic():
        appliance = _lock(appliance)
        appliance.registration_state = REGISTRATION.apply(appliance.registration_state, "registration_succeeded")
        info = pki.cert_info(cert.encode())
        appliance.id_cert_pem = cert
        appliance.piid = str(answer.get("instance_id", ""))
        appliance.smart_account_name = str(answer.get("smart_account", ""))
        appliance.virtual_account_name = str(answer.get("virtual_account", ""))
        appliance.export_controlled = bool(answer.get("export_controlled"))
        appliance.registered_at = now
        appliance.id_issued_at = now
        appliance.id_expires_at = _parse_dt(answer.get("registration_expires")) or info.not_after
        appliance.next_id_renewal_at = now + timedelta(days=180)
        appliance.last_id_ok, appliance.last_id_attempt_at, appliance.last_id_reason = True, now, ""
        appliance.exchange = Exchange.NONE
        appliance.cloud_services_registered = True
        if appliance.virtual and not appliance.vln:
            appliance.vln = "VLN" + appliance.product + appliance.piid.replace("-", "")[:12].upper()
        _resync(appliance, now)
        _save(appliance)
        _event(appliance, now=now, kind="registration.succeeded", message="The product is registered successfully")
        alert_raise(appliance, kind=AK.REGISTERED, now=now)
        problems = smart_account_name_problems(appliance.smart_account_name)
        if problems:
            _event(appliance, now=now, kind="talos.certificate_failed", message=problems[0])
            alert_raise(appliance, kind=AK.REGISTRATION_FAILED, now=now, reason=problems[0])
        else:
            _event(
                appliance,
                now=now,
                kind="cloud_services.registered",
                message="Cisco Cloud Services portal is enabled and registered",
            )
    authorize_exchange(appliance=appliance, now=now)
    appliance.refresh_from_db()
    if appliance.classic_feature_keys and appliance.dlc_state == ConversionState.NOT_STARTED:
        dlc_start(appliance=appliance, now=now)


def _parse_dt(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _registration_failed(appliance: Appliance, now: datetime, reason: str) -> None:
    with transaction.atomic():
        appliance = _lock(appliance)
        if appliance.registration_state == RS.REGISTERING:
            appliance.registration_state = REGISTRATION.apply(appliance.registration_state, "registration_failed")
        appliance.registration_error = reason
        appliance.exchange = Exchange.NONE
        appliance.pending_token = ""
        _save(appliance)
        _event(
            appliance,
            now=now,
            kind="registration.failed",
            message=f"registration of the product with Smart Software Manager failed: {reason}",
        )
        alert_raise(appliance, kind=AK.REGISTRATION_FAILED, now=now, reason=reason)


def _usage(appliance: Appliance, requested: list[str] | None = None) -> list[dict]:
    """What an authorize message reports: the requested licences, from the
    rows or, where the caller read them, their codes in row order."""
    cat = _catalogue(appliance)
    if requested is None:
        requested = [r.code for r in _rows(appliance) if r.requested]
    return [
        {"tag": cat[code].entitlement_tag, "count": 1}
        for code in requested
        if not (cat[code].is_base and not appliance.virtual)
    ]


UNREADABLE_ANSWER = "Smart Software Manager sent an answer the Smart Agent cannot read."
# The sweep's timer kinds whose exchange these services carry out.
EXCHANGE_OF_TIMER = {"auth_renewal": "authorize", "id_renewal": "renew_id"}


def exchange_body(appliance: Appliance, kind: str, *, requested: list[str] | None = None) -> dict:
    """The body of an authorize or renew_id message, from the appliance's
    current state (`requested`: its requested licence codes, if read already)."""
    if kind == "authorize":
        return {"usage": _usage(appliance, requested)}
    if kind == "renew_id":
        csr = pki.make_csr(key_pem=appliance.device_key_pem.encode(), common_name=appliance.hostname, udi=appliance.udi)
        return {"csr": csr.decode()}
    raise ValueError(f"No body for {kind!r}")


def _exchange_outcome(appliance: Appliance, kind: str, now: datetime) -> dict | AgentError:
    try:
        return exchange(appliance=appliance, kind=kind, body=exchange_body(appliance, kind), now=now)
    except AgentError as exc:
        return exc


def authorize_exchange(*, appliance: Appliance, now: datetime, actor: str = "") -> bool:
    """Authorization renewal (after registration, Renew Authorization Now, licence request/release, 30-day timer)."""
    appliance.refresh_from_db()
    if appliance.registration_state != RS.REGISTERED:
        return False
    outcome = _exchange_outcome(appliance, "authorize", now)
    with transaction.atomic():
        return authorize_apply(_lock(appliance), outcome=outcome, now=now, actor=actor)


# The CSSM's per-licence answer -> the licence machine's action. "not_authorized"
# is an export-restricted licence the product's registration does not allow: it
# shows Not Authorized (no grace period: buying more would not help).
ANSWER_ACTIONS = {"authorized": "authorized", "out_of_compliance": "shortage", "not_authorized": "not_authorized"}


def authorize_apply(appliance: Appliance, *, outcome: dict | AgentError, now: datetime, actor: str = "") -> bool:
    """Record an authorize exchange's answer (or failure) on the locked
    appliance: licence states, timers, event and alert. True if authorized.
    The single exchange and the sweep's batch share it."""
    licenses = (outcome.get("licenses") or []) if isinstance(outcome, dict) else None
    if licenses is not None and not isinstance(licenses, list):
        outcome = AgentError("bad_answer", UNREADABLE_ANSWER)
    if isinstance(outcome, AgentError):
        appliance.last_auth_attempt_at, appliance.last_auth_ok, appliance.last_auth_reason = now, False, outcome.reason
        appliance.next_auth_renewal_at = now + timedelta(hours=24)
        appliance.exchange = Exchange.NONE
        _save(appliance)
        _event(
            appliance,
            now=now,
            kind="authorization.failed",
            actor=actor,
            message=f"Renew authorization of the product with Smart Software Manager failed: {outcome.reason}",
        )
        alert_raise(appliance, kind=AK.AUTHORIZATION_FAILED, now=now, reason=outcome.reason)
        return False
    by_code = {}
    for item in licenses:
        try:
            by_code[license_by_tag(str(item.get("tag"))).code] = str(item.get("status"))
        except (KeyError, AttributeError):
            continue
    for row in _rows(appliance):
        if not row.requested or row.code not in by_code:
            continue
        action = ANSWER_ACTIONS.get(by_code[row.code], "shortage")
        if action == "not_authorized" and not LICENSE.allowed(row.state, action):
            action = "shortage"  # an authorized licence refused later: out of compliance, with its grace
        if LICENSE.allowed(row.state, action) or _catalogue(appliance)[row.code].is_base:
            _set_license(appliance, row, action, now)
    appliance.last_auth_attempt_at, appliance.last_auth_ok, appliance.last_auth_reason = now, True, ""
    appliance.last_auth_success_at = _parse_dt(outcome.get("authorized_at")) or now
    appliance.auth_expires_at = _parse_dt(outcome.get("expires_at")) or now + timedelta(days=90)
    appliance.next_auth_renewal_at = _parse_dt(outcome.get("next_renewal")) or now + timedelta(days=30)
    appliance.exchange = Exchange.NONE
    _resync(appliance, now)
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="authorization.succeeded",
        actor=actor,
        message="Renew authorization of the product with Smart Software Manager is successful",
    )
    alert_raise(appliance, kind=AK.AUTHORIZED, now=now)
    return True


@transaction.atomic
def renew_authorization(*, appliance: Appliance, now: datetime, actor: str = "") -> None:
    appliance = _lock(appliance)
    _require_smart(appliance)
    REGISTRATION.apply(appliance.registration_state, "renew_auth")
    _busy_check(appliance)
    appliance.exchange = Exchange.AUTHORIZE
    _save(appliance)
    _on_commit_task("authorize_task", appliance.pk)


@transaction.atomic
def renew_id_certificate(*, appliance: Appliance, now: datetime, actor: str = "") -> None:
    appliance = _lock(appliance)
    _require_smart(appliance)
    REGISTRATION.apply(appliance.registration_state, "renew_id")
    _busy_check(appliance)
    appliance.exchange = Exchange.RENEW_ID
    _save(appliance)
    _on_commit_task("renew_id_task", appliance.pk)


def _busy_check(appliance: Appliance) -> None:
    if appliance.exchange:
        raise TransitionRefused(
            f"{Exchange(appliance.exchange).label} is in progress. Wait until it completes and try again."
        )


def renew_id_exchange(*, appliance: Appliance, now: datetime) -> bool:
    appliance.refresh_from_db()
    if appliance.registration_state != RS.REGISTERED:
        return False
    outcome = _exchange_outcome(appliance, "renew_id", now)
    with transaction.atomic():
        return renew_id_apply(_lock(appliance), outcome=outcome, now=now)


def renew_id_apply(appliance: Appliance, *, outcome: dict | AgentError, now: datetime) -> bool:
    """Record a renew_id exchange's answer (or failure) on the locked
    appliance: the new ID certificate, timers, event and alert. True if
    renewed. The single exchange and the sweep's batch share it."""
    reason = outcome.reason if isinstance(outcome, AgentError) else None
    if reason is None:
        try:
            cert = str(outcome["certificate"])
            info = pki.cert_info(cert.encode())
        except (KeyError, pki.PkiError) as exc:
            reason = getattr(exc, "reason", UNREADABLE_ANSWER)
    if reason is not None:
        appliance.last_id_attempt_at, appliance.last_id_ok, appliance.last_id_reason = now, False, reason
        appliance.next_id_renewal_at = now + timedelta(hours=24)
        appliance.exchange = Exchange.NONE
        _save(appliance)
        _event(appliance, now=now, kind="id_renewal.failed", message=f"Renewal of the Id certificate failed: {reason}")
        alert_raise(appliance, kind=AK.ID_RENEW_FAILED, now=now, reason=reason)
        return False
    appliance.id_cert_pem = cert
    appliance.id_issued_at = now
    appliance.id_expires_at = _parse_dt(outcome.get("registration_expires")) or info.not_after
    appliance.next_id_renewal_at = now + timedelta(days=180)
    appliance.last_id_attempt_at, appliance.last_id_ok, appliance.last_id_reason = now, True, ""
    appliance.exchange = Exchange.NONE
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="id_renewal.succeeded",
        message="Renew registration of the product with Smart Software Manager is successful",
    )
    alert_raise(appliance, kind=AK.ID_RENEWED, now=now, expires_on=gateway_datetime(appliance.id_expires_at))
    return True


@transaction.atomic
def agent_deregister(*, appliance: Appliance, now: datetime, actor: str = "") -> None:
    appliance = _lock(appliance)
    _require_smart(appliance)
    REGISTRATION.apply(appliance.registration_state, "deregister")
    _busy_check(appliance)
    appliance.exchange = Exchange.DEREGISTER
    _save(appliance)
    _on_commit_task("deregister_task", appliance.pk)


def deregister_exchange(*, appliance: Appliance, now: datetime) -> bool:
    appliance.refresh_from_db()
    if appliance.registration_state != RS.REGISTERED:
        return False
    try:
        exchange(appliance=appliance, kind="deregister", body={}, now=now)
    except AgentError as exc:
        if exc.code != "unknown_instance":  # already removed in CSSM: deregister locally
            with transaction.atomic():
                appliance = _lock(appliance)
                appliance.exchange = Exchange.NONE
                appliance.registration_error = exc.reason
                _save(appliance)
                _event(
                    appliance,
                    now=now,
                    kind="deregistration.failed",
                    message=f"Deregistration of the product from Smart Software Manager failed: {exc.reason}",
                )
                alert_raise(appliance, kind=AK.DEREGISTRATION_FAILED, now=now, reason=exc.reason)
            return False
    with transaction.atomic():
        appliance = _lock(appliance)
        appliance.registration_state = REGISTRATION.apply(appliance.registration_state, "deregister")
        _clear_identity(appliance)
        appliance.exchange = Exchange.NONE
        appliance.registration_error = ""
        _back_to_eval(appliance, now)
        _resync(appliance, now)
        _save(appliance)
        _event(
            appliance,
            now=now,
            kind="deregistration.succeeded",
            message="The product is deregistered successfully from Smart Software Manager",
        )
        alert_raise(appliance, kind=AK.DEREGISTERED, now=now)
    return True


def _clear_identity(appliance: Appliance) -> None:
    appliance.id_cert_pem = ""
    appliance.piid = ""
    appliance.smart_account_name = ""
    appliance.virtual_account_name = ""
    appliance.registered_at = None
    appliance.id_issued_at = appliance.id_expires_at = appliance.next_id_renewal_at = None
    appliance.auth_expires_at = appliance.next_auth_renewal_at = None
    appliance.cloud_services_registered = False


# --- Licences ------------------------------------------------------------------------------------------


@transaction.atomic
def licenses_submit(*, appliance: Appliance, requested: set[str], now: datetime, actor: str = "") -> list[str]:
    """Licenses > Edit Settings > Submit: tick = request, untick = release. Returns change summaries."""
    appliance = _lock(appliance)
    _require_smart(appliance)
    cat = _catalogue(appliance)
    unknown = requested - set(cat)
    if unknown:
        raise ServiceError(f"Unknown license: {', '.join(sorted(unknown))}.")
    registered = appliance.registration_state == RS.REGISTERED
    changed = []
    rows = {r.code: r for r in _rows(appliance)}
    for code, lic in cat.items():
        row = rows[code]
        if lic.is_base:
            continue  # requested by default; no check box
        want = code in requested
        if want and not row.requested:
            _set_license(appliance, row, "request", now)
            if appliance.reservation_state in (RV.SLR_INSTALLED, RV.PLR_INSTALLED):
                action = "reserved" if appliance.reservation_state == RV.PLR_INSTALLED else "not_authorized"
                _set_license(appliance, row, action, now)
            elif not registered:
                _set_license(appliance, row, _unregistered_action(appliance, now), now)
            changed.append(f"{lic.name}: requested")
        elif not want and row.requested:
            check_release(lic, row.state, virtual=appliance.virtual)
            _set_license(appliance, row, "release", now)
            changed.append(f"{lic.name}: released")
    if not changed:
        raise TransitionRefused("No license changes were made. Check or uncheck a license to request or release it.")
    if registered:
        appliance.exchange = Exchange.AUTHORIZE
        _on_commit_task("authorize_task", appliance.pk)
    _resync(appliance, now)
    _save(appliance)
    return changed


# --- License reservation -----------------------------------------------------------------------------


def _require_reservation(appliance: Appliance) -> None:
    _require_smart(appliance)
    if not appliance.in_reservation_mode:
        raise TransitionRefused(
            "License reservation is not enabled. Select Specific/Permanent License Reservation and click Confirm."
        )


@transaction.atomic
def reservation_request_code(*, appliance: Appliance, now: datetime, actor: str = "") -> str:
    appliance = _lock(appliance)
    _require_reservation(appliance)
    old = appliance.reservation_state
    appliance.reservation_state = RESERVATION.apply(old, "request_code")
    if old == RV.REQUESTED and appliance.reservation_request_code:
        return appliance.reservation_request_code
    appliance.reservation_request_code = codes.request_code_generate(pid=appliance.model_pid, serial=appliance.serial)
    appliance.reservation_requested_at = now
    appliance.last_reservation_reminder_at = now
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="reservation.requested",
        actor=actor,
        message=f"Reservation request code generated: {appliance.reservation_request_code}",
    )
    alert_raise(appliance, kind=AK.RESERVATION_INSTALL_REMINDER, now=now, requested_on=gateway_datetime(now))
    return appliance.reservation_request_code


@transaction.atomic
def reservation_cancel(*, appliance: Appliance, now: datetime, actor: str = "") -> None:
    appliance = _lock(appliance)
    _require_reservation(appliance)
    appliance.reservation_state = RESERVATION.apply(appliance.reservation_state, "cancel_request")
    code = appliance.reservation_request_code
    appliance.reservation_request_code = ""
    appliance.reservation_requested_at = None
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="reservation.cancelled",
        actor=actor,
        message=f"Reservation request code {code} is cancelled",
    )


def _parse_auth_code(appliance: Appliance, text: str, *, request_code: str | None, now) -> codes.AuthorizationCode:
    trust = lab_trust(lab=appliance.lab, now=now)
    if not text.strip():
        raise ServiceError("Paste the authorization code or upload the file that contains it.")
    try:
        return codes.authorization_code_parse(
            text, ca_cert_pem=bytes(trust.ca_cert_pem), expected_request_code=request_code, expected_udi=appliance.udi
        )
    except codes.CodeError as exc:
        raise ServiceError(exc.reason) from None


def _clear_reservation(row: ApplianceLicense) -> None:
    """A licence no longer covered by a reservation: nothing reserved, no term, no warnings pending."""
    row.reserved_count, row.reserved_end, row.reserved_notices_sent_through = 0, None, None
    row.save(update_fields=["reserved_count", "reserved_end", "reserved_notices_sent_through"])


def _apply_reservation(appliance: Appliance, parsed: codes.AuthorizationCode, now: datetime) -> None:
    reserved: dict[str, codes.Entitlement] = {}
    for ent in parsed.entitlements:
        try:
            lic = license_by_tag(ent.tag)
        except KeyError:
            continue
        if lic.product == appliance.product:
            reserved[lic.code] = ent
    for row in _rows(appliance):
        lic = _catalogue(appliance)[row.code]
        if parsed.is_permanent or row.code in reserved:
            if not row.requested:
                _set_license(appliance, row, "request", now)
            _set_license(appliance, row, "reserved", now)
            ent = reserved.get(row.code)
            row.reserved_count = ent.count if ent else 1
            end = ent.end_date if ent else None
            if end != row.reserved_end:  # a new term: its expiry warnings start afresh
                row.reserved_notices_sent_through = None
            row.reserved_end = end
            row.save(update_fields=["reserved_count", "reserved_end", "reserved_notices_sent_through"])
        elif row.requested and not lic.is_base:
            _set_license(appliance, row, "not_authorized", now)
            _clear_reservation(row)
    auth = "reservation_authorized"
    appliance.authorization_state = (
        AUTHORIZATION.apply(appliance.authorization_state, auth)
        if AUTHORIZATION.allowed(appliance.authorization_state, auth)
        else appliance.authorization_state
    )


@transaction.atomic
def reservation_install(*, appliance: Appliance, code: str, now: datetime, actor: str = "") -> str:
    appliance = _lock(appliance)
    _require_reservation(appliance)
    if appliance.reservation_state != RV.REQUESTED:
        RESERVATION.apply(appliance.reservation_state, "install_slr")  # raises the right reason
    parsed = _parse_auth_code(appliance, code, request_code=appliance.reservation_request_code, now=now)
    action = "install_plr" if parsed.is_permanent else "install_slr"
    appliance.reservation_state = RESERVATION.apply(appliance.reservation_state, action)
    appliance.reservation_auth_code = parsed.code
    appliance.reservation_type = parsed.reservation_type
    appliance.piid = parsed.piid
    appliance.reservation_request_code = ""
    appliance.reservation_requested_at = None
    _apply_reservation(appliance, parsed, now)
    _resync(appliance, now)
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="reservation.installed",
        actor=actor,
        message="Smart Agent successfully installed the license reservation",
    )
    alert_raise(appliance, kind=AK.RESERVATION_INSTALLED, now=now)
    return parsed.reservation_type


@transaction.atomic
def reservation_reauthorize(*, appliance: Appliance, code: str, now: datetime, actor: str = "") -> str:
    appliance = _lock(appliance)
    _require_reservation(appliance)
    RESERVATION.apply(appliance.reservation_state, "reauthorize")
    parsed = _parse_auth_code(appliance, code, request_code=None, now=now)
    if parsed.is_permanent:
        raise ServiceError("A permanent license reservation cannot be updated, so Reauthorize is not available.")
    if appliance.piid and parsed.piid != appliance.piid:
        raise ServiceError(codes.AUTH_WRONG_UDI)
    if "".join(parsed.code.split()) == "".join(appliance.reservation_auth_code.split()):
        raise ServiceError(
            "This authorization code is already installed. Generate a new one in Smart Software Manager."
        )
    appliance.reservation_auth_code = parsed.code
    _apply_reservation(appliance, parsed, now)
    appliance.confirmation_code = codes.confirmation_code(parsed.code)
    _resync(appliance, now)
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="reservation.reauthorized",
        actor=actor,
        message=f"License reservation updated; confirmation code {appliance.confirmation_code}",
    )
    alert_raise(appliance, kind=AK.RESERVATION_INSTALLED, now=now)
    return appliance.confirmation_code


@transaction.atomic
def reservation_return(*, appliance: Appliance, now: datetime, actor: str = "") -> str:
    appliance = _lock(appliance)
    _require_reservation(appliance)
    appliance.reservation_state = RESERVATION.apply(appliance.reservation_state, "return_reservation")
    trust = lab_trust(lab=appliance.lab, now=now)
    appliance.return_code = codes.return_code_generate(
        secret=bytes(trust.return_code_secret), piid=appliance.piid, udi=appliance.udi
    )
    appliance.reservation_auth_code = ""
    appliance.reservation_type = ""
    for row in _rows(appliance):
        if row.reserved_count:
            _clear_reservation(row)
    _back_to_eval(appliance, now)
    _resync(appliance, now)
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="reservation.returned",
        actor=actor,
        message=f"Return code generated: {appliance.return_code}",
    )
    alert_raise(appliance, kind=AK.RETURN_CODE_GENERATED, now=now)
    return appliance.return_code


# --- Device Led Conversion ------------------------------------------------------------------------------


@transaction.atomic
def dlc_start(*, appliance: Appliance, now: datetime, actor: str = "") -> None:
    appliance = _lock(appliance)
    if appliance.registration_state != RS.REGISTERED:
        raise TransitionRefused("Device Led Conversion runs only after the product is registered.")
    action = "restart" if appliance.dlc_state == ConversionState.FAILED else "start"
    appliance.dlc_state = DLC.apply(appliance.dlc_state, action)
    appliance.dlc_started_at = now
    appliance.dlc_reason = ""
    _save(appliance)
    _event(appliance, now=now, kind="dlc.started", actor=actor, message="Device Led Conversion started")


def dlc_due(appliance: Appliance, now: datetime) -> bool:
    return (
        appliance.dlc_state == ConversionState.IN_PROGRESS
        and appliance.dlc_started_at is not None
        and appliance.dlc_started_at + DLC_DURATION <= now
    )


def dlc_complete(*, appliance: Appliance, now: datetime) -> bool:
    appliance.refresh_from_db()
    if not dlc_due(appliance, now):
        return False
    cat = _catalogue(appliance)
    licenses = [
        {"tag": cat[c].entitlement_tag, "count": 1, "classic_feature": c}
        for c in appliance.classic_feature_keys
        if c in cat
    ]
    try:
        answer = exchange(appliance=appliance, kind="dlc_deposit", body={"licenses": licenses}, now=now)
        ok, reason = answer.get("conversion") == "success", "Smart Software Manager did not confirm the conversion."
    except AgentError as exc:
        ok, reason = False, exc.reason
    with transaction.atomic():
        appliance = _lock(appliance)
        if ok:
            appliance.dlc_state = DLC.apply(appliance.dlc_state, "succeed")
            _event(appliance, now=now, kind="dlc.succeeded", message="Device Led Conversion completed: success")
        else:
            appliance.dlc_state = DLC.apply(appliance.dlc_state, "fail")
            appliance.dlc_reason = reason
            _event(appliance, now=now, kind="dlc.failed", message=f"Device Led Conversion failed: {reason}")
            alert_raise(appliance, kind=AK.DLC_FAILED, now=now, reason=reason)
        _save(appliance)
    return ok


# --- Smart Agent update ------------------------------------------------------------------------------------


@transaction.atomic
def agent_update(*, appliance: Appliance, now: datetime, actor: str = "") -> None:
    appliance = _lock(appliance)
    _require_smart(appliance)
    appliance.agent_update_state = AGENT_UPDATE.apply(appliance.agent_update_state, "update")
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="agent.update_requested",
        actor=actor,
        message="Requesting update of Smart License Agent",
    )
    _on_commit_task("agent_update_task", appliance.pk)


def agent_update_run(*, appliance: Appliance, now: datetime, latest: str) -> None:
    with transaction.atomic():
        appliance = _lock(appliance)
        if appliance.agent_update_state != AgentUpdateState.UPDATING:
            return
        if _version(appliance.agent_version) >= _version(latest):
            appliance.agent_update_state = AGENT_UPDATE.apply(appliance.agent_update_state, "already_current")
            message = "smart license is up to date"
        else:
            appliance.agent_update_state = AGENT_UPDATE.apply(appliance.agent_update_state, "update_completed")
            appliance.agent_version = latest
            appliance.agent_updated_at = now
            message = "smart_agent update completed"
        _save(appliance)
        _event(appliance, now=now, kind="agent.update", message=message)


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


# --- Air-gap for virtual gateways --------------------------------------------------------------------------


def vlinfo(*, appliance: Appliance) -> dict[str, str]:
    if not appliance.virtual:
        raise TransitionRefused("vlinfo is available only on virtual email gateways.")
    if appliance.registration_state != RS.REGISTERED or not appliance.vln:
        raise TransitionRefused(
            "Register this virtual gateway with Smart Software Manager to obtain the VLN, certificate and key."
        )
    return {"vln": appliance.vln, "certificate": appliance.id_cert_pem, "key": appliance.device_key_pem}


_VLN_RE = re.compile(r"^VLN[A-Z0-9]{4,40}$")


@transaction.atomic
def airgap_apply(*, appliance: Appliance, vln: str, certificate: str, key: str, now: datetime, actor: str = "") -> None:
    """updateconfig > VLNID and CLIENTCERTIFICATE on a virtual gateway in reservation mode."""
    appliance = _lock(appliance)
    if not appliance.virtual:
        raise TransitionRefused("The VLN and client certificate apply only to virtual email gateways.")
    _require_reservation(appliance)
    vln = vln.strip()
    if not _VLN_RE.fullmatch(vln):
        raise ServiceError("Enter the VLN exactly as vlinfo shows it (it starts with VLN).")
    try:
        info = pki.cert_info(certificate.strip().encode())
        signed = pki.sign(key_pem=key.strip().encode(), data=b"check")
        pki.verify_signature(cert_pem=certificate.strip().encode(), data=b"check", signature=signed)
    except pki.PkiError as exc:
        raise ServiceError(f"{exc.reason} The certificate and key must be copied from vlinfo.") from None
    trust = lab_trust(lab=appliance.lab, now=now)
    try:
        pki.verify_certificate(ca_cert_pem=bytes(trust.ca_cert_pem), cert_pem=certificate.strip().encode(), now=now)
    except pki.PkiError as exc:
        raise ServiceError(exc.reason) from None
    appliance.vln = vln
    appliance.client_certificate_pem = certificate.strip()
    appliance.client_key_pem = key.strip()
    _save(appliance)
    _event(
        appliance,
        now=now,
        kind="airgap.applied",
        actor=actor,
        message=f"VLN {vln} and client certificate of {info.common_name} applied",
    )


def license_row_display(appliance: Appliance) -> list[dict]:
    rows = {r.code: r for r in _rows(appliance)}
    out = []
    for lic in licenses_for(appliance.product):
        row = rows.get(lic.code)
        out.append(
            {
                "license": lic,
                "row": row,
                "state_label": LS(row.state).label if row else "Not requested",
                "requested": bool(row and row.requested),
            }
        )
    return out
