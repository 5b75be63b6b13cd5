"""Reads for the lab pages."""

from django.db.models import Prefetch, QuerySet

from gateway_ui.models import Appliance
from licensing_core.models import JobRun, Lab


def labs_for_user(*, user) -> QuerySet[Lab]:
    """The labs a user belongs to (superusers see all), with their appliances
    and Smart Accounts prefetched: a fixed number of queries for any size."""
    labs = Lab.objects.all() if user.is_superuser else Lab.objects.filter(memberships__user=user)
    return labs.prefetch_related(
        Prefetch("appliances", queryset=Appliance.objects.order_by("hostname")),
        "smart_accounts",
    ).order_by("name")


def last_heartbeat() -> JobRun | None:
    return JobRun.objects.filter(kind="heartbeat").order_by("-started_at").first()
