"""Read-side helpers for the appliance pages."""

from django.db.models import F
from django.http import Http404

from gateway_ui.models import Appliance, StagedChange
from licensing_core.models import Event


def appliance_for_user(*, user, lab_slug: str, hostname: str) -> tuple[Appliance, str]:
    """The appliance and the user's AsyncOS role on it; 404 outside the user's labs.

    One query: the membership is joined, not fetched first (every appliance page pays this)."""
    if not user.is_authenticated:
        raise Http404("No such appliance.")
    try:
        appliance = (
            Appliance.objects.select_related("lab", "cluster")
            .filter(lab__slug=lab_slug, hostname=hostname, lab__memberships__user=user)
            # After the filter, so it reads the membership joined there (one per lab and user): this user's.
            .annotate(viewer_role=F("lab__memberships__gateway_role"))
            .get()
        )
    except Appliance.DoesNotExist:
        raise Http404("No such appliance.") from None
    return appliance, appliance.viewer_role


def staged_kinds(appliance: Appliance) -> set[str]:
    """The kinds of change waiting for Commit Changes (one row per kind at most)."""
    return set(StagedChange.objects.filter(appliance_id=appliance.pk).values_list("kind", flat=True))


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
