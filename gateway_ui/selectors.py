"""Read-side helpers for the appliance pages."""

from django.http import Http404

from gateway_ui.models import Appliance
from licensing_core.models import Event, LabMembership


def appliance_for_user(*, user, lab_slug: str, hostname: str) -> tuple[Appliance, str]:
    """The appliance and the user's AsyncOS role on it; 404 outside the user's labs."""
    membership = (
        LabMembership.objects.select_related("lab").filter(user=user, lab__slug=lab_slug).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise Http404("No such appliance.")
    appliance = Appliance.objects.select_related("lab", "cluster").filter(lab=membership.lab, hostname=hostname).first()
    if appliance is None:
        raise Http404("No such appliance.")
    return appliance, membership.gateway_role


def smartlicense_log(*, appliance: Appliance, limit: int = 500):
    return Event.objects.filter(appliance_id=appliance.pk, side="gateway").order_by("-at", "-id")[:limit]
