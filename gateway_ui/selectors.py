"""Read-side helpers for the appliance pages."""

from django.db import DEFAULT_DB_ALIAS
from django.db.models import F, QuerySet
from django.http import Http404

from gateway_ui.models import Appliance, Cluster, StagedChange
from licensing_core.compiled import run_compiled
from licensing_core.models import Event, Lab

# Every column of the appliance, its lab and its cluster, as select_related("lab", "cluster") reads them.
_A = [f.attname for f in Appliance._meta.concrete_fields]
_L = [f.attname for f in Lab._meta.concrete_fields]
_C = [f.attname for f in Cluster._meta.concrete_fields]


def _appliance_rows(lab_slug: str, hostname: str, user_id: int, _types) -> QuerySet:
    return (
        Appliance.objects.filter(lab__slug=lab_slug, hostname=hostname, lab__memberships__user_id=user_id)
        .annotate(viewer_role=F("lab__memberships__gateway_role"))
        .values_list(
            *(f.name for f in Appliance._meta.concrete_fields),
            *(f"lab__{f.name}" for f in Lab._meta.concrete_fields),
            *(f"cluster__{f.name}" for f in Cluster._meta.concrete_fields),
            "viewer_role",
        )
    )


def appliance_for_user(*, user, lab_slug: str, hostname: str) -> tuple[Appliance, str]:
    """The appliance and the user's AsyncOS role on it; 404 outside the user's labs.

    One query: the membership is joined, not fetched first (every appliance page pays this), compiled once per
    process (the ORM took longer to build and compile it than the database to answer)."""
    if not user.is_authenticated:
        raise Http404("No such appliance.")
    rows = run_compiled(_appliance_rows, lab_slug, hostname, user.pk)
    if not rows:
        raise Http404("No such appliance.")
    (row,) = rows  # one appliance per (lab, hostname), one membership per (lab, user)
    na, nl = len(_A), len(_L)
    appliance = Appliance.from_db(DEFAULT_DB_ALIAS, _A, row[:na])
    appliance.lab = Lab.from_db(DEFAULT_DB_ALIAS, _L, row[na : na + nl])
    c = row[na + nl : na + nl + len(_C)]
    appliance.cluster = None if c[0] is None else Cluster.from_db(DEFAULT_DB_ALIAS, _C, c)
    appliance.viewer_role = row[-1]
    return appliance, appliance.viewer_role


def _staged(appliance_id: int, _types) -> QuerySet:
    return StagedChange.objects.filter(appliance_id=appliance_id).values_list("kind")


def staged_kinds(appliance: Appliance) -> set[str]:
    """The kinds of change waiting for Commit Changes (one row per kind at most)."""
    return {k for (k,) in run_compiled(_staged, appliance.pk)}


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
