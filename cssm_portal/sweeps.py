"""Time-driven CSSM work for licensing_core.sweeps: the alert rules that
change with time alone (Failed to Connect / Renew, Licenses Expiring /
Expired, Satellite synchronization) are re-evaluated when they fall due,
registration tokens expire on time (an Event Log row at their expiry), and
the Daily Event Summary goes out at each lab midnight.

A sweep first asks, in a fixed handful of aggregate queries, whether any of
these fell due since the lab was last checked (SmartAccount.rules_checked_at);
only then does it do the work, so a sweep with nothing due costs the same
whatever the account's size."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min

from cssm_portal import alert_rules, services
from cssm_portal.models import (
    LicensePool,
    LicenseType,
    NotificationPreference,
    ProductInstance,
    RegistrationToken,
    SatelliteInstance,
    SmartAccount,
)
from licensing_core import codes, schedules
from licensing_core.clock import lab_now
from licensing_core.events import event_record
from licensing_core.models import Event, EventSide, Lab

INSTANCE_WINDOWS = (schedules.INSTANCE_CONNECT_WINDOW, schedules.INSTANCE_RENEW_WINDOW)
# instance_connect_status() and the Satellite rules compare with ">": a rule
# changes just after the window has passed.
JUST_AFTER = timedelta(microseconds=1)
SATELLITE_WINDOWS = (timedelta(days=30), timedelta(days=60), timedelta(days=90))


def cssm_next_due(lab: Lab) -> datetime | None:
    """The first instant after the lab's now at which something time-driven happens."""
    return _first_change_after(lab, lab_now(lab))


def _first_change_after(lab: Lab, now: datetime) -> datetime | None:
    """The first instant after `now` at which a rule changes, a token expires
    or a Daily Event Summary is due."""
    times: list[datetime] = []
    instances = ProductInstance.objects.filter(lab=lab, reservation__isnull=True)
    for window in INSTANCE_WINDOWS:
        # ORDER BY ... LIMIT 1, not MIN(): the (lab, last_contact) index is walked
        # from its start and stops at the first instance without a reservation.
        first = (
            instances.filter(last_contact__gte=now - window)
            .order_by("last_contact")
            .values_list("last_contact", flat=True)
            .first()
        )
        if first is not None:
            times.append(first + window + JUST_AFTER)
    satellites = SatelliteInstance.objects.filter(smart_account__lab=lab, last_sync__isnull=False)
    for window in SATELLITE_WINDOWS:
        first = satellites.filter(last_sync__gte=now - window).aggregate(m=Min("last_sync"))["m"]
        if first is not None:
            times.append(first + window + JUST_AFTER)
    ends = (
        LicensePool.objects.filter(
            virtual_account__smart_account__lab=lab, license_type=LicenseType.TERM, purchased__gt=0
        )
        .order_by()
        .values_list("end_date", flat=True)
        .distinct()
    )
    for end in ends:
        deadline = schedules.term_end_at(end)
        for days in (*schedules.LICENSE_EXPIRY_WARNING_DAYS, 0):
            at = deadline - timedelta(days=days)
            if at > now:
                times.append(at)
    first_expiry = RegistrationToken.objects.filter(
        virtual_account__smart_account__lab=lab, expires_at__gt=now, revoked_at__isnull=True
    ).aggregate(m=Min("expires_at"))["m"]
    if first_expiry is not None:
        times.append(first_expiry)
    if NotificationPreference.objects.filter(smart_account__lab=lab, daily_summary=True).exclude(email="").exists():
        # The Daily Event Summary goes out at every lab midnight (UTC).
        times.append(now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1))
    return min(times) if times else None


def cssm_process(lab: Lab, now: datetime) -> int:
    """Re-evaluate the time-driven alert rules and queue due Daily Event Summaries.

    Runs with the lab row locked: two workers sweeping the same lab take
    turns, and the second finds the alerts already raised (alerts_refresh
    raises only what is not open yet) and the summaries already queued (the
    outbox dedupes on subscriber and day), so nothing is done twice."""
    with transaction.atomic():
        Lab.objects.select_for_update().filter(pk=lab.pk).first()
        accounts = SmartAccount.objects.filter(lab=lab)
        checked = accounts.aggregate(m=Min("rules_checked_at"))["m"]
        never = accounts.filter(rules_checked_at__isnull=True).exists()
        if not never and checked is not None:
            due = _first_change_after(lab, checked)
            if due is None or due > now:
                return 0  # nothing fell due since the last check
        changed = tokens_expire(lab=lab, now=now)
        for account in accounts:
            # The rules the services keep (Duplicate Licenses, Authorization Pending)
            # are left to them once an account has been checked in full.
            first = account.rules_checked_at is None
            raised, cleared = alert_rules.alerts_refresh(smart_account=account, now=now, time_driven_only=not first)
            changed += raised + cleared
        accounts.update(rules_checked_at=now)
        return changed + services.daily_summaries_send(lab=lab, now=now)


def tokens_expire(*, lab: Lab, now: datetime) -> int:
    """One Event Log row per registration token that reached its expiration
    date, at that date (tokens are refused after it by the endpoint anyway).
    Idempotent: a token already logged as expired is skipped."""
    logged = Event.objects.filter(lab=lab, kind="cssm.token.expired").values_list("new__token_id", flat=True)
    expired = (
        RegistrationToken.objects.filter(
            virtual_account__smart_account__lab=lab, expires_at__lte=now, revoked_at__isnull=True
        )
        .exclude(token_id__in=[str(t) for t in logged if t])
        .select_related("virtual_account__smart_account")
        .order_by("expires_at")
    )
    count = 0
    for token in expired:
        va = token.virtual_account
        event_record(
            lab=lab,
            at=token.expires_at,
            side=EventSide.CSSM,
            kind="cssm.token.expired",
            message=f"Product Instance Registration Token {codes.token_display(token.value)} expired.",
            actor="System",
            smart_account_id=va.smart_account_id,
            virtual_account_id=va.pk,
            subject_name=codes.token_display(token.value),
            new={"token_id": str(token.token_id)},
        )
        count += 1
    return count
