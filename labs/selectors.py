"""Reads for the lab pages."""

from itertools import islice

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, OuterRef, Prefetch, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber
from django.http import Http404

from gateway_ui.models import Appliance
from licensing_core.models import Event, JobRun, Lab, LabMembership, MailMessage

# A fleet lab holds thousands of appliances: the lab home shows the first few of
# each lab, the lab page a page of them at a time.
HOME_APPLIANCES = 10
LAB_APPLIANCES_PER_PAGE = 50
SKEW_CHOICES_MAX = 100


def labs_for_user(*, user) -> QuerySet[Lab]:
    """The labs a user belongs to (superusers see all), with their first
    HOME_APPLIANCES appliances (`appliances_shown`), how many they hold
    (`appliance_count`) and their Smart Accounts: a fixed number of queries and a
    bounded page whatever the labs hold."""
    labs = Lab.objects.all() if user.is_superuser else Lab.objects.filter(memberships__user=user)
    count = Appliance.objects.filter(lab=OuterRef("pk")).order_by().values("lab").annotate(n=Count("pk")).values("n")
    first = (
        Appliance.objects.annotate(rank=Window(RowNumber(), partition_by=F("lab_id"), order_by=F("hostname").asc()))
        .filter(rank__lte=HOME_APPLIANCES)
        .order_by("hostname")
    )
    return (
        labs.annotate(appliance_count=Coalesce(Subquery(count), 0))
        .prefetch_related(Prefetch("appliances", queryset=first, to_attr="appliances_shown"), "smart_accounts")
        .order_by("name")
    )


def lab_appliances(*, lab: Lab, query: str = "", page: str | int = 1) -> Page:
    """A page of the lab's appliances by host name, those whose host name
    contains `query` when given (two queries: the count and the page)."""
    appliances = Appliance.objects.filter(lab=lab).order_by("hostname")
    if query:
        appliances = appliances.filter(hostname__icontains=query)
    fields = ("hostname", "product", "model_pid", "virtual")
    return Paginator(appliances.only(*fields), LAB_APPLIANCES_PER_PAGE).get_page(page)


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


# --- the lab page's manager panels ------------------------------------------------------------


def lab_members(*, lab: Lab) -> QuerySet[LabMembership]:
    return LabMembership.objects.filter(lab=lab).select_related("user").order_by("user__username")


def lab_fault_choices(*, lab: Lab, now) -> dict:
    """What the action faults can act on: appliances, active tokens, and each virtual
    account's licences with a balance (four queries)."""
    from cssm_portal import selectors as cssm_selectors
    from cssm_portal.models import RegistrationToken, VirtualAccount
    from licensing_core import codes

    tokens = (
        RegistrationToken.objects.filter(
            virtual_account__smart_account__lab=lab, revoked_at__isnull=True, expires_at__gt=now
        )
        .exclude(max_uses__isnull=False, uses__gte=F("max_uses"))
        .select_related("virtual_account")
        .order_by("-created_at", "-id")
    )
    vas = list(VirtualAccount.objects.filter(smart_account__lab=lab).select_related("smart_account").order_by(
        "smart_account__name", "name"))  # fmt: skip
    pools = cssm_selectors.pools(vas).filter(purchased__gt=0).order_by("virtual_account__name", "name")
    appliances = list(
        Appliance.objects.filter(lab=lab)
        .order_by("hostname")
        .only("hostname", "clock_skew_minutes")[: SKEW_CHOICES_MAX + 1]
    )
    return {
        # A list to choose from for a lab of up to SKEW_CHOICES_MAX appliances; a host name to type beyond.
        "appliances": appliances[:SKEW_CHOICES_MAX],
        "appliances_listed": len(appliances) <= SKEW_CHOICES_MAX,
        "tokens": [{"token": t, "display": codes.token_display(t.value)} for t in tokens],
        "virtual_accounts": vas,
        "pools": list(pools),
    }


def split_rows(*, lab: Lab, appliance: Appliance, instance, limit: int = 60) -> list[dict]:
    """Recent event rows of the appliance and of its product instance, grouped by
    request id (newest group first); rows without a request id each form their own group."""
    from django.db.models import Q

    where = Q(appliance_id=appliance.pk)
    if instance is not None:
        where |= Q(product_instance_id=instance.pk)
    rows = list(Event.objects.filter(where, lab=lab).order_by("-at", "-id")[:limit])
    rids = {r.request_id for r in rows if r.request_id}
    if rids:
        # Rows of the same requests that name neither (e.g. CSSM alerts raised by the exchange).
        seen = {r.pk for r in rows}
        rows += [r for r in Event.objects.filter(lab=lab, request_id__in=rids).order_by("-at", "-id")[:limit]
                 if r.pk not in seen]  # fmt: skip
    groups: dict = {}
    order = []
    for row in sorted(rows, key=lambda r: (r.at, r.pk), reverse=True):
        key = row.request_id or f"row-{row.pk}"
        if key not in groups:
            groups[key] = {"request_id": row.request_id, "at": row.at, "gateway": [], "cssm": [], "lab": []}
            order.append(key)
        groups[key][row.side].append(row)
    return [groups[k] for k in order]
