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


def registration_status_label(appliance: Appliance) -> str:
    """The *Registration Status* label, one rule for the GUI page and CLI STATUS:
    in reservation mode the reservation state speaks (unless the agent went back
    to Unidentified), otherwise the registration state."""
    from licensing_core.machines import RegistrationState, ReservationState

    if appliance.in_reservation_mode and appliance.registration_state != RegistrationState.UNIDENTIFIED:
        return ReservationState(appliance.reservation_state).label
    return RegistrationState(appliance.registration_state).label


def authorization_time_shown(appliance: Appliance) -> bool:
    """Whether *License Authorization Status* carries the time of the last
    successful authorization, as `Authorized ( 22 Aug 2018 07:21 )` does."""
    from licensing_core.machines import AuthorizationState, RegistrationState

    return bool(
        appliance.registration_state == RegistrationState.REGISTERED
        and appliance.last_auth_success_at
        and appliance.authorization_state in (AuthorizationState.AUTHORIZED, AuthorizationState.OUT_OF_COMPLIANCE)
    )
