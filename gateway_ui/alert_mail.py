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
from datetime import datetime, timedelta

from django.db import transaction

from gateway_ui.models import AlertMailState, AlertRecipient, Appliance, ApplianceAlert
from licensing_core.mail import mail_enqueue

TEMPLATE = "gateway-alert"


def duplicate_wait_next(*, wait: int, initial: int, maximum: int) -> int:
    """The wait after a duplicate is sent: initial + twice the last wait, capped."""
    return max(min(initial + 2 * wait, maximum), initial)


def alert_recipients(appliance: Appliance, *, alert_class: str, severity: str) -> list[str]:
    """Addresses subscribed to this class at this severity (one query)."""
    return [
        r.address
        for r in AlertRecipient.objects.filter(appliance=appliance).order_by("address")
        if severity in (r.classes or {}).get(alert_class, [])
    ]


def _fingerprint(alert: ApplianceAlert) -> str:
    return hashlib.sha256(f"{alert.kind}\n{alert.severity}\n{alert.text}".encode()).hexdigest()


def _duplicate_allows(appliance: Appliance, alert: ApplianceAlert, now: datetime) -> bool:
    """Record the send in the duplicate-suppression state; False to hold it back.
    Callers hold the appliance row lock or the sweep claim, so the state row
    is only read-modify-written by one worker at a time; select_for_update
    covers the other callers."""
    initial = appliance.alert_duplicate_initial_seconds
    maximum = max(appliance.alert_duplicate_max_seconds, initial)
    fingerprint = _fingerprint(alert)
    state = AlertMailState.objects.select_for_update().filter(appliance=appliance, fingerprint=fingerprint).first()
    if state is None:
        AlertMailState.objects.create(
            appliance=appliance, fingerprint=fingerprint, last_sent_at=now, wait_seconds=initial
        )
        return True
    elapsed = now - state.last_sent_at
    if elapsed < timedelta(seconds=state.wait_seconds):
        state.suppressed += 1
        state.save(update_fields=["suppressed"])
        return False
    if elapsed > timedelta(seconds=maximum):
        state.wait_seconds = initial
    else:
        state.wait_seconds = duplicate_wait_next(wait=state.wait_seconds, initial=initial, maximum=maximum)
    state.last_sent_at = now
    state.save(update_fields=["wait_seconds", "last_sent_at"])
    return True


def alert_mail(*, appliance: Appliance, alert: ApplianceAlert, now: datetime) -> bool:
    """Queue the alert's e-mail in the outbox; True if a message was queued."""
    recipients = alert_recipients(appliance, alert_class=alert.alert_class, severity=alert.severity)
    if not recipients:
        return False
    with transaction.atomic():
        if not _duplicate_allows(appliance, alert, now):
            return False
    skew = timedelta(minutes=appliance.clock_skew_minutes)
    key = alert.dedupe_key or f"alert{alert.pk}"
    message = mail_enqueue(
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
    if message is None:
        return False
    ApplianceAlert.objects.filter(pk=alert.pk).update(emailed=True)
    alert.emailed = True
    return True


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
