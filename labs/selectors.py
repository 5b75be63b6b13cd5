"""Reads for the lab pages."""

from itertools import islice

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from gateway_ui.models import Appliance
from licensing_core.models import Event, JobRun, Lab, LabMembership, MailMessage


def labs_for_user(*, user) -> QuerySet[Lab]:
    """The labs a user belongs to (superusers see all), with their appliances
    and Smart Accounts prefetched: a fixed number of queries for any size."""
    labs = Lab.objects.all() if user.is_superuser else Lab.objects.filter(memberships__user=user)
    return labs.prefetch_related(
        Prefetch("appliances", queryset=Appliance.objects.order_by("hostname")),
        "smart_accounts",
    ).order_by("name")


def lab_for_user(*, user, slug: str) -> tuple[Lab, LabMembership | None]:
    """The lab and the user's membership; 404 for a lab the user is not in."""
    membership = LabMembership.objects.select_related("lab").filter(lab__slug=slug, user=user).first()
    if membership is not None:
        return membership.lab, membership
    if user.is_superuser:
        lab = Lab.objects.filter(slug=slug).first()
        if lab is not None:
            return lab, None
    raise Http404("No such lab.")


def lab_timeline(*, lab: Lab, limit: int = 200) -> list[dict]:
    """Events and e-mails of a lab, newest first, by lab time: two queries."""
    events = Event.objects.filter(lab=lab).order_by("-at", "-id")[:limit]
    mails = MailMessage.objects.filter(lab=lab).order_by("-lab_time", "-id")[:limit]
    items = [{"at": e.at, "kind": "event", "side": e.get_side_display(), "text": e.message, "obj": e} for e in events]
    items += [
        {"at": m.lab_time or m.created_at, "kind": "mail", "side": "E-mail", "text": m.subject, "obj": m} for m in mails
    ]
    items.sort(key=lambda item: item["at"], reverse=True)
    return list(islice(items, limit))


def lab_mailbox(*, lab: Lab) -> QuerySet[MailMessage]:
    return MailMessage.objects.filter(lab=lab).order_by("-lab_time", "-id")


def last_heartbeat() -> JobRun | None:
    return JobRun.objects.filter(kind="heartbeat").order_by("-started_at").first()
