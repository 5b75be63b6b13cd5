"""Faults that are actions rather than switches (licensing_core.faults holds
the switches): an appliance clock skew, a token revoked behind the admin's
back, a licence shortage in the virtual account. Each goes through the
ordinary service and leaves an event row saying what the lab did."""

from datetime import datetime

from django.db import transaction

from cssm_portal import services as cssm
from cssm_portal.models import RegistrationToken, VirtualAccount
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from licensing_core.events import event_record
from licensing_core.models import EventSide

MAX_SKEW_MINUTES = 60 * 24 * 400


class FaultError(ValueError):
    """A fault that cannot be applied, with a sentence for the user."""


@transaction.atomic
def clock_skew_set(*, appliance: Appliance, minutes: int, actor: str) -> Appliance:
    """Set the appliance's clock this many minutes ahead of (or behind) the lab clock."""
    if not -MAX_SKEW_MINUTES <= minutes <= MAX_SKEW_MINUTES:
        raise FaultError("The clock skew must be within 400 days either way.")
    locked = Appliance.objects.select_for_update().select_related("lab").get(pk=appliance.pk)
    old = locked.clock_skew_minutes
    if old == minutes:
        return locked
    locked.clock_skew_minutes = minutes
    locked.save(update_fields=["clock_skew_minutes"])
    event_record(
        lab=locked.lab,
        at=appliance_now(locked),
        side=EventSide.LAB,
        kind="lab.fault.clock_skew",
        message=f"Clock of {locked.hostname} set {_describe(minutes)}",
        actor=actor,
        appliance_id=locked.pk,
        subject_name=locked.hostname,
        old=old,
        new=minutes,
    )
    appliance.clock_skew_minutes = minutes
    return locked


def _describe(minutes: int) -> str:
    if minutes == 0:
        return "back in sync with the lab clock"
    direction = "ahead of" if minutes > 0 else "behind"
    return f"{abs(minutes)} minute{'s' if abs(minutes) != 1 else ''} {direction} the lab clock"


def token_revoke_behind_back(*, token: RegistrationToken, now: datetime) -> RegistrationToken:
    """Someone else in the customer's company revokes the token."""
    try:
        return cssm.token_revoke(token=token, actor="another administrator", now=now)
    except cssm.ServiceError as exc:
        raise FaultError(str(exc)) from None


def license_shortage(
    *, source: VirtualAccount, target: VirtualAccount, tag: str, quantity: int, actor: str, now: datetime
) -> None:
    """Move licences out of a virtual account (a transfer someone else made)."""
    try:
        cssm.license_transfer(source=source, target=target, tag=tag, quantity=quantity, actor=actor, now=now)
    except cssm.ServiceError as exc:
        raise FaultError(str(exc)) from None
