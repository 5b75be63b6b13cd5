"""Read-side queries of the portal: every list is one annotated queryset, so a
page costs the same number of queries whatever its number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.core.paginator import Paginator
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from cssm_portal.models import (
    CssmAlert,
    LicensePool,
    LicenseTransaction,
    LicenseUsage,
    ProductInstance,
    RegistrationToken,
    UsageStatus,
    VirtualAccount,
)
from licensing_core import catalogue
from licensing_core.models import Event, EventSide

PAGE_SIZE = 25
# A table counts its rows exactly up to this many past the page shown; beyond, it
# says "more than ..." so that a page view never counts 200,000 events.
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """A Paginator whose COUNT reads at most `cap` rows past the requested page
    (`page_hint`): exact when the table ends before that, else `capped` with the
    rows `known` to exist; paging goes on from any page (prev/next and the page
    numbers up to what is known)."""

    def __init__(self, object_list, per_page, *, page_hint=None, cap: int | None = None):
        super().__init__(object_list, per_page)
        self.cap = COUNT_CAP if cap is None else cap
        try:
            self.hint = max(1, min(int(page_hint), 10**6))
        except (TypeError, ValueError):
            self.hint = 1
        self.capped = False
        self.known = 0

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):
            return super().count
        # The requested page itself is always counted in full.
        limit = (self.hint - 1) * self.per_page + max(self.cap, self.per_page) + 1
        # Only the ids, unordered: COUNT over at most `limit` index entries.
        n = self.object_list.order_by().values("pk")[:limit].count()
        if n >= limit:
            self.capped, self.known = True, limit - 1
        return n

    @property
    def known_display(self) -> str:
        return f"{self.known:,}"

    @property
    def known_pages(self) -> int:
        return self.known // self.per_page


@dataclass
class Table:
    page: object
    sort: str
    direction: str
    q: str
    params: str  # query string without page/sort, for links

    @property
    def rows(self):
        return self.page.object_list


def table(
    request,
    qs: QuerySet,
    sorts: dict[str, tuple[str, ...]],
    default: str,
    *,
    default_dir: str = "asc",
    page_size: int = PAGE_SIZE,
):
    """Sort, page and keep the query string for a table (server side)."""
    sort = request.GET.get("sort", default)
    if sort not in sorts:
        sort = default
    direction = request.GET.get("dir", default_dir)
    if direction not in ("asc", "desc"):
        direction = "asc"
    fields = sorts[sort]
    order = [f"-{f}" if direction == "desc" else f for f in fields] + ["-pk" if direction == "desc" else "pk"]
    page = CappedPaginator(qs.order_by(*order), page_size, page_hint=request.GET.get("page")).get_page(
        request.GET.get("page")
    )
    keep = request.GET.copy()
    for k in ("page", "sort", "dir"):
        keep.pop(k, None)
    return Table(page=page, sort=sort, direction=direction, q=request.GET.get("q", ""), params=keep.urlencode())


def _name_case(field: str = "tag") -> Case:
    lics = catalogue.ESA_LICENSES + catalogue.SMA_LICENSES
    return Case(
        *[When(**{field: lic.entitlement_tag}, then=Value(lic.name)) for lic in lics],
        default=F(field),
        output_field=CharField(),
    )


def tokens(va: VirtualAccount) -> QuerySet:
    return RegistrationToken.objects.filter(virtual_account=va)


def pools(vas) -> QuerySet:
    """Pools with their display name and balance; in_use is a column the
    services keep (no aggregate over the account's usage rows)."""
    return (
        LicensePool.objects.filter(virtual_account__in=vas)
        .select_related("virtual_account")
        .annotate(name=_name_case(), balance=F("purchased") - F("in_use"))
    )


def va_alert_counts(va: VirtualAccount) -> dict[str, int]:
    row = CssmAlert.objects.filter(virtual_account=va, cleared_at__isnull=True, dismissed_at__isnull=True).aggregate(
        major=Count("pk", filter=Q(severity="Major")), minor=Count("pk", filter=Q(severity="Minor"))
    )
    return row


def open_alert_keys(va: VirtualAccount, *, types=None) -> dict[str, str]:
    """dedupe key -> severity of the open alerts of `va` (of `types` only, if given:
    the Licenses tab needs the licence alerts, not one per failing instance)."""
    qs = CssmAlert.objects.filter(virtual_account=va, cleared_at__isnull=True, dismissed_at__isnull=True)
    if types is not None:
        qs = qs.filter(alert_type__in=list(types))
    return dict(qs.values_list("dedupe_key", "severity"))


def instances(vas) -> QuerySet:
    """Product instances with their alert flag and licence count.

    Both are correlated subqueries, not a join with GROUP BY: PostgreSQL then
    walks the (virtual_account, name, id) index for the first page and runs
    them for the 25 rows shown only, and COUNT(*) for the paginator needs
    neither. (A Sum over the usage join aggregated every instance of the
    account before sorting: 2 s at 100,000 instances.)"""
    ooc = LicenseUsage.objects.filter(instance=OuterRef("pk"), status=UsageStatus.OUT_OF_COMPLIANCE)
    in_use = (
        LicenseUsage.objects.filter(instance=OuterRef("pk"))
        .order_by()
        .values("instance")
        .annotate(total=Sum("count"))
        .values("total")
    )
    return (
        ProductInstance.objects.filter(virtual_account__in=vas)
        .select_related("virtual_account", "reservation")
        .annotate(
            out_of_compliance=Exists(ooc),
            licenses_in_use=Coalesce(Subquery(in_use, output_field=IntegerField()), 0),
        )
    )


def events(*, lab, va=None, sa=None, instance_id=None, q: str = "") -> QuerySet:
    qs = Event.objects.filter(lab=lab, side=EventSide.CSSM)
    if va is not None:
        qs = qs.filter(virtual_account_id=va.pk)
    if sa is not None:
        qs = qs.filter(smart_account_id=sa.pk)
    if instance_id is not None:
        qs = qs.filter(product_instance_id=instance_id)
    if q:
        qs = qs.filter(Q(message__icontains=q) | Q(actor__icontains=q))
    return qs


def alerts(sa, vas, *, q: str = "") -> QuerySet:
    qs = CssmAlert.objects.filter(smart_account=sa, cleared_at__isnull=True, dismissed_at__isnull=True).filter(
        Q(virtual_account__in=vas) | Q(virtual_account__isnull=True)
    )
    if q:
        qs = qs.filter(Q(message__icontains=q) | Q(alert_type__icontains=q))
    return qs.select_related("virtual_account").annotate(
        sev_rank=Case(
            When(severity="Major", then=Value(0)),
            When(severity="Minor", then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
    )


def transactions(sa, vas, *, sources=None) -> QuerySet:
    qs = LicenseTransaction.objects.filter(smart_account=sa, virtual_account__in=vas).select_related("virtual_account")
    if sources:
        qs = qs.filter(source__in=sources)
    return qs
