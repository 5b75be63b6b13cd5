"""E-mail for appliance alerts (System Administration > Alerts, domain-notes §2.4, §7.1).

An alert goes to every alert recipient subscribed to its class at its
severity, from *From Address to Use When Sending Alerts* (default
``alert@<hostname>``). Duplicates (the same alert text again) are held back
per *Wait Before Sending a Duplicate Alert*: after an alert is e-mailed, the
same alert is not e-mailed again until the wait has passed; each time a
duplicate does go out the wait grows to ``initial + 2 × previous wait``
(5, 15, 35, 75 … seconds for an initial wait of 5), capped at the maximum.
INFERRED: once no duplicate has been e-mailed for longer than the maximum
wait, the series starts again at the initial wait. Waits are measured on the
appliance's clock, so time travel applies them as real time would.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction

from gateway_ui.models import AlertMailState, AlertRecipient, Appliance, ApplianceAlert
from licensing_core.mail import MailDraft, draft_enqueue, mail_enqueue_many

TEMPLATE = "gateway-alert"


def duplicate_wait_next(*, wait: int, initial: int, maximum: int) -> int:
    """The wait after a duplicate is sent: initial + twice the last wait, capped."""
    return max(min(initial + 2 * wait, maximum), initial)


def _subscribed(recipients: Iterable[AlertRecipient], *, alert_class: str, severity: str) -> list[str]:
    return [r.address for r in recipients if severity in (r.classes or {}).get(alert_class, [])]


def alert_recipients(appliance: Appliance, *, alert_class: str, severity: str) -> list[str]:
    """Addresses subscribed to this class at this severity (one query)."""
    return _subscribed(
        AlertRecipient.objects.filter(appliance=appliance).order_by("address"),
        alert_class=alert_class,
        severity=severity,
    )


def _fingerprint(alert: ApplianceAlert) -> str:
    return hashlib.sha256(f"{alert.kind}\n{alert.severity}\n{alert.text}".encode()).hexdigest()


def _duplicate_step(
    appliance: Appliance, state: AlertMailState | None, fingerprint: str, now: datetime
) -> tuple[bool, AlertMailState, list[str] | None]:
    """One send of an alert text against its duplicate-suppression state:
    (send it?, the state after, the fields changed — None for a new state row).
    Only the state object is changed; the caller saves it."""
    initial = appliance.alert_duplicate_initial_seconds
    maximum = max(appliance.alert_duplicate_max_seconds, initial)
    if state is None:
        new = AlertMailState(appliance=appliance, fingerprint=fingerprint, last_sent_at=now, wait_seconds=initial)
        return True, new, None
    elapsed = now - state.last_sent_at
    if elapsed < timedelta(seconds=state.wait_seconds):
        state.suppressed += 1
        return False, state, ["suppressed"]
    if elapsed > timedelta(seconds=maximum):
        state.wait_seconds = initial
    else:
        state.wait_seconds = duplicate_wait_next(wait=state.wait_seconds, initial=initial, maximum=maximum)
    state.last_sent_at = now
    return True, state, ["wait_seconds", "last_sent_at"]


def _duplicate_allows(appliance: Appliance, alert: ApplianceAlert, now: datetime) -> bool:
    """Record the send in the duplicate-suppression state; False to hold it back.
    Callers hold the appliance row lock or the sweep claim, so the state row
    is only read-modify-written by one worker at a time; select_for_update
    covers the other callers."""
    fingerprint = _fingerprint(alert)
    state = AlertMailState.objects.select_for_update().filter(appliance=appliance, fingerprint=fingerprint).first()
    allowed, state, fields = _duplicate_step(appliance, state, fingerprint, now)
    if fields is None:
        state.save(force_insert=True)
    else:
        state.save(update_fields=fields)
    return allowed


def _draft(appliance: Appliance, alert: ApplianceAlert, recipients: list[str], now: datetime) -> MailDraft:
    skew = timedelta(minutes=appliance.clock_skew_minutes)
    key = alert.dedupe_key or f"alert{alert.pk}"
    return MailDraft(
        lab=appliance.lab,
        lab_time=now - skew,
        template=TEMPLATE,
        context={
            "severity": alert.severity,
            "hostname": appliance.hostname,
            "alert_class": alert.alert_class,
            "text": alert.text,
            "version": appliance.software_version,
            "serial": appliance.serial,
            "timestamp": now,
        },
        recipients=recipients,
        sender=appliance.alert_from_address or f"alert@{appliance.hostname}",
        dedupe_key=f"gateway-alert:{appliance.pk}:{key}",
    )


def alert_mail(*, appliance: Appliance, alert: ApplianceAlert, now: datetime) -> bool:
    """Queue the alert's e-mail in the outbox; True if a message was queued."""
    recipients = alert_recipients(appliance, alert_class=alert.alert_class, severity=alert.severity)
    if not recipients:
        return False
    with transaction.atomic():
        if not _duplicate_allows(appliance, alert, now):
            return False
    message = draft_enqueue(_draft(appliance, alert, recipients, now))
    if message is None:
        return False
    ApplianceAlert.objects.filter(pk=alert.pk).update(emailed=True)
    alert.emailed = True
    return True


def alert_mail_many(raised: list[tuple[Appliance, ApplianceAlert]]) -> int:
    """`alert_mail` for many saved alerts (each at its own `at`), in order,
    in a fixed number of queries; returns how many were e-mailed. The same
    recipients, duplicate suppression and outbox rows as one by one: the
    suppression state of an alert text is carried from one alert to the
    next in memory. Callers hold the sweep claim on these appliances and
    run inside a transaction."""
    from gateway_ui.bulk import save_changes

    by_appliance: dict[int, list[AlertRecipient]] = defaultdict(list)
    ids = {appliance.pk for appliance, _ in raised}
    for r in AlertRecipient.objects.filter(appliance_id__in=ids).order_by("address"):
        by_appliance[r.appliance_id].append(r)
    todo = []
    for appliance, alert in raised:
        recipients = _subscribed(by_appliance[appliance.pk], alert_class=alert.alert_class, severity=alert.severity)
        if recipients:
            todo.append((appliance, alert, recipients, _fingerprint(alert)))
    if not todo:
        return 0
    states = {
        (s.appliance_id, s.fingerprint): s
        for s in AlertMailState.objects.select_for_update().filter(
            appliance_id__in={a.pk for a, *_ in todo}, fingerprint__in={fp for *_, fp in todo}
        )
    }
    new: dict[tuple[int, str], AlertMailState] = {}
    changed: dict[tuple[int, str], set[str]] = defaultdict(set)
    drafts: list[tuple[ApplianceAlert, MailDraft]] = []
    for appliance, alert, recipients, fingerprint in todo:
        key = (appliance.pk, fingerprint)
        allowed, states[key], changes = _duplicate_step(appliance, states.get(key), fingerprint, alert.at)
        if changes is None:
            new[key] = states[key]
        elif key not in new:
            changed[key].update(changes)
        if allowed:
            drafts.append((alert, _draft(appliance, alert, recipients, alert.at)))
    AlertMailState.objects.bulk_create(new.values())
    save_changes(AlertMailState, [(states[k], {f: getattr(states[k], f) for f in fs}) for k, fs in changed.items()])
    queued = mail_enqueue_many([d for _, d in drafts])
    emailed = [alert for (alert, _), message in zip(drafts, queued, strict=True) if message is not None]
    if emailed:
        ApplianceAlert.objects.filter(pk__in=[a.pk for a in emailed]).update(emailed=True)
    for alert in emailed:
        alert.emailed = True
    return len(emailed)


class AlertSettingsError(ValueError):
    """Refused alert settings, with the sentence the Alerts page shows."""

    @property
    def reason(self) -> str:
        return str(self)


def alert_settings_save(
    *, appliance: Appliance, from_address: str, initial_seconds: int, max_seconds: int, now: datetime, actor: str = ""
) -> None:
    """System Administration > Alerts > Edit Settings: From Address and Wait Before Sending a Duplicate Alert."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from licensing_core.events import event_record

    from_address = from_address.strip()
    if from_address:
        try:
            validate_email(from_address)
        except ValidationError:
            raise AlertSettingsError("Enter a valid From Address, e.g. alert@esa1.example.com.") from None
    if not 1 <= initial_seconds <= max_seconds:
        raise AlertSettingsError(
            "The initial number of seconds to wait must be at least 1 and no more than the maximum."
        )
    if max_seconds > 31_536_000:
        raise AlertSettingsError("The maximum number of seconds to wait may be at most 31536000 (a year).")
    Appliance.objects.filter(pk=appliance.pk).update(
        alert_from_address=from_address,
        alert_duplicate_initial_seconds=initial_seconds,
        alert_duplicate_max_seconds=max_seconds,
    )
    appliance.alert_from_address = from_address
    appliance.alert_duplicate_initial_seconds, appliance.alert_duplicate_max_seconds = initial_seconds, max_seconds
    event_record(
        lab=appliance.lab,
        at=now,
        side="gateway",
        kind="alerts.settings",
        message=f"Alert settings changed: duplicate alerts wait {initial_seconds} to {max_seconds} seconds",
        actor=actor,
        appliance_id=appliance.pk,
        subject_name=appliance.hostname,
    )
