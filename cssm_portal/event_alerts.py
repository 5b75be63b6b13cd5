"""Alerts raised by an event rather than by a rule (§5.8): an agreement published, a
satellite unregistered, an authorization file prepared, a restricted licence refused.

The rules in cssm_portal.services (alerts_refresh) raise and clear only their own
types (RULE_TYPES); these stay open until what they report is dealt with (the
service that deals with it clears them) or the user dismisses them.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q

from cssm_portal.models import CssmAlert, SmartAccount, VirtualAccount
from licensing_core.alerts import CSSM_ALERT_SEVERITY
from licensing_core.events import event_record
from licensing_core.models import EventSide


def alert_raise(
    *,
    smart_account: SmartAccount,
    virtual_account: VirtualAccount | None,
    alert_type: str,
    key: str,
    message: str,
    now: datetime,
) -> CssmAlert | None:
    """Open the alert unless one with `key` is open already (then None).

    The one-open-alert-per-key constraint settles a race between two callers."""
    if CssmAlert.objects.filter(smart_account=smart_account, dedupe_key=key, cleared_at__isnull=True).exists():
        return None
    try:
        with transaction.atomic():
            alert = CssmAlert.objects.create(
                smart_account=smart_account,
                virtual_account=virtual_account,
                alert_type=alert_type,
                severity=CSSM_ALERT_SEVERITY[alert_type],
                message=message,
                dedupe_key=key,
                raised_at=now,
            )
    except IntegrityError:
        return None
    alert_raised_record(smart_account=smart_account, alert=alert, now=now)
    return alert


def alert_raised_record(*, smart_account: SmartAccount, alert: CssmAlert, now: datetime) -> None:
    """The Event Log row of a newly raised alert (rule or event alike)."""
    event_record(
        lab=smart_account.lab,
        at=now,
        side=EventSide.CSSM,
        kind="cssm.alert.raised",
        message=f"{alert.alert_type}: {alert.message}",
        smart_account_id=smart_account.pk,
        virtual_account_id=alert.virtual_account_id,
    )


def alerts_clear(*, smart_account: SmartAccount, now: datetime, keys=None, types=None) -> int:
    """Clear the open alerts of the account with one of `keys` and/or of one of `types`."""
    qs = CssmAlert.objects.filter(smart_account=smart_account, cleared_at__isnull=True)
    if keys is not None:
        qs = qs.filter(dedupe_key__in=list(keys))
    if types is not None:
        qs = qs.filter(alert_type__in=list(types))
    return qs.update(cleared_at=now)


def dismissable(portal) -> Q:
    """The alerts this user may dismiss: those of the Virtual Accounts they can change,
    and, for a Smart Account role that can change things, the account's own alerts
    (Source = the Smart Account: agreements, satellites)."""
    editable = [va for va in portal.virtual_accounts if portal.can_edit(va)]
    q = Q(virtual_account__in=editable)
    if portal.sa_role is not None and editable:
        q |= Q(virtual_account__isnull=True)
    return q
