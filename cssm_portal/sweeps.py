"""Time-driven CSSM work for licensing_core.sweeps: the alert rules that
change with time alone (Failed to Connect / Renew, Licenses Expiring /
Expired, Satellite synchronization) are re-evaluated when they fall due."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min

from cssm_portal import services
from cssm_portal.models import (
    LicensePool,
    LicenseType,
    NotificationPreference,
    ProductInstance,
    SatelliteInstance,
    SmartAccount,
)
from licensing_core import schedules
from licensing_core.clock import lab_now
from licensing_core.models import Lab

INSTANCE_WINDOWS = (schedules.INSTANCE_CONNECT_WINDOW, schedules.INSTANCE_RENEW_WINDOW)
# instance_connect_status() and the Satellite rules compare with ">": a rule
# changes just after the window has passed.
JUST_AFTER = timedelta(microseconds=1)
SATELLITE_WINDOWS = (timedelta(days=30), timedelta(days=60), timedelta(days=90))


def cssm_next_due(lab: Lab) -> datetime | None:
    """The first instant after the lab's now at which an alert rule changes."""
    now = lab_now(lab)
    times: list[datetime] = []
    instances = ProductInstance.objects.filter(lab=lab, reservation__isnull=True)
    for window in INSTANCE_WINDOWS:
        first = instances.filter(last_contact__gte=now - window).aggregate(m=Min("last_contact"))["m"]
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
        .values_list("end_date", flat=True)
        .distinct()
    )
    for end in ends:
        deadline = schedules.term_end_at(end)
        for days in (*schedules.LICENSE_EXPIRY_WARNING_DAYS, 0):
            at = deadline - timedelta(days=days)
            if at > now:
                times.append(at)
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
        changed = 0
        for account in SmartAccount.objects.filter(lab=lab):
            raised, cleared = services.alerts_refresh(smart_account=account, now=now)
            changed += raised + cleared
        return changed + services.daily_summaries_send(lab=lab, now=now)
