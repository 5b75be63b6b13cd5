"""Read-side queries of the portal: every list is one annotated queryset, so a
page costs the same number of queries whatever its number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Func,
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
from licensing_core.compiled import run_compiled
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
        # Only the ids, unordered: COUNT over at most `limit` index entries. The SQL QuerySet.count() writes for
        # a sliced query, without its aggregation machinery (about 0.4 ms of Python a page, as much as the
        # database takes for 10,000 entries).
        ids = self.object_list.order_by().values("pk")[:limit]
        try:
            sql, params = ids.query.get_compiler(using=ids.db).as_sql()
        except EmptyResultSet:  # a filter no row can match (an empty __in): what count() answers then
            return 0
        with connections[ids.db].cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) subquery", params)  # noqa: S608 (the ORM's SQL, bound params)
            n = cursor.fetchone()[0]
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
    columns: tuple[str, ...] = (),
):
    """Sort, page and keep the query string for a table (server side).

    With `columns`, the page's rows are named tuples of those columns, selected after paging: a column of a
    related table (a join) is then in the rows' query only, not in the COUNT's."""
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
    if columns:
        page.object_list = page.object_list.values_list(*columns, named=True)
    keep = request.GET.copy()
    for k in ("page", "sort", "dir"):
        keep.pop(k, None)
    return Table(page=page, sort=sort, direction=direction, q=request.GET.get("q", ""), params=keep.urlencode())


class LicenseName(Func):
    """The catalogue name of an entitlement tag, in SQL (the tag itself when the catalogue does not know it), so
    that tables sort and filter by name. A simple CASE built from the catalogue once per process: the same
    result as Case(When(tag=..., then=Value(name)), ..., default=F("tag")), whose twenty When clauses the ORM
    resolved and compiled on every query (over a millisecond per query)."""

    output_field = CharField()
    arity = 1

    def __init__(self, field: str = "tag") -> None:
        super().__init__(F(field))

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        whens, when_params = _license_names_sql()
        return f"CASE {sql} {whens} ELSE {sql} END", (*params, *when_params, *params)


@cache
def _license_names_sql() -> tuple[str, tuple[str, ...]]:
    lics = catalogue.ESA_LICENSES + catalogue.SMA_LICENSES
    return " ".join("WHEN %s THEN %s" for _ in lics), tuple(p for lic in lics for p in (lic.entitlement_tag, lic.name))


def tokens(va: VirtualAccount) -> QuerySet:
    return RegistrationToken.objects.filter(virtual_account=va)


def pools(vas) -> QuerySet:
    """Pools with their display name and balance; in_use is a column the
    services keep (no aggregate over the account's usage rows)."""
    return (
        LicensePool.objects.filter(virtual_account__in=vas)
        .select_related("virtual_account")
        .annotate(name=LicenseName(), balance=F("purchased") - F("in_use"))
    )


def token_rows(va: VirtualAccount) -> QuerySet:
    """The General tab's token table: the columns it shows, as named tuples."""
    return tokens(va).values_list(
        "pk",
        "value",
        "description",
        "created_by",
        "expires_at",
        "max_uses",
        "uses",
        "revoked_at",
        "export_controlled",
        named=True,
    )


def pool_rows(va: VirtualAccount) -> QuerySet:
    """The Licenses tab: `pools` of one Virtual Account as named tuples of the columns it shows."""
    return (
        LicensePool.objects.filter(virtual_account=va)
        .annotate(name=LicenseName(), balance=F("purchased") - F("in_use"))
        .values_list("pk", "tag", "name", "purchased", "in_use", "balance", "license_type", "end_date", named=True)
    )


def _open_alerts(va_id: int) -> QuerySet:
    return CssmAlert.objects.filter(virtual_account_id=va_id, cleared_at__isnull=True, dismissed_at__isnull=True)


def _counts_by_severity(va_id: int, _types) -> QuerySet:
    return _open_alerts(va_id).order_by().values_list("severity").annotate(n=Count("pk"))


def _keys_and_severities(va_id: int, types) -> QuerySet:
    qs = _open_alerts(va_id)
    if types is not None:
        qs = qs.filter(alert_type__in=list(types))
    return qs.values_list("dedupe_key", "severity")


def va_alert_counts(va: VirtualAccount) -> dict[str, int]:
    """Open Major and Minor alerts of `va`: the counters beside the Virtual Account selector."""
    by_severity = dict(run_compiled(_counts_by_severity, va.pk))
    return {"major": by_severity.get("Major", 0), "minor": by_severity.get("Minor", 0)}


def open_alert_keys(va: VirtualAccount, *, types=None) -> dict[str, str]:
    """dedupe key -> severity of the open alerts of `va` (of `types` only, if given:
    the Licenses tab needs the licence alerts, not one per failing instance)."""
    return dict(run_compiled(_keys_and_severities, va.pk, types=None if types is None else tuple(types)))


def _out_of_compliance() -> Exists:
    return Exists(LicenseUsage.objects.filter(instance=OuterRef("pk"), status=UsageStatus.OUT_OF_COMPLIANCE))


def _licenses_in_use() -> Coalesce:
    in_use = (
        LicenseUsage.objects.filter(instance=OuterRef("pk"))
        .order_by()
        .values("instance")
        .annotate(total=Sum("count"))
        .values("total")
    )
    return Coalesce(Subquery(in_use, output_field=IntegerField()), 0)


def instances(vas) -> QuerySet:
    """Product instances with their alert flag and licence count.

    Both are correlated subqueries, not a join with GROUP BY: PostgreSQL then
    walks the (virtual_account, name, id) index for the first page and runs
    them for the 25 rows shown only, and COUNT(*) for the paginator needs
    neither. (A Sum over the usage join aggregated every instance of the
    account before sorting: 2 s at 100,000 instances.)"""
    return (
        ProductInstance.objects.filter(virtual_account__in=vas)
        .select_related("virtual_account", "reservation")
        .annotate(out_of_compliance=_out_of_compliance(), licenses_in_use=_licenses_in_use())
    )


def instance_report_rows(vas) -> QuerySet:
    """The Product Instances report: the columns it shows with the licence count of `instances`, as named
    tuples (the Virtual Account by id: the page names it from the portal's list)."""
    return (
        ProductInstance.objects.filter(virtual_account__in=vas)
        .annotate(licenses_in_use=_licenses_in_use())
        .values_list("name", "product", "pid", "virtual_account_id", "last_contact", "licenses_in_use", named=True)
    )


# The Product Instances tab's columns (table(columns=...)): the reservation's join stays out of the COUNT,
# which it made twice as slow.
INSTANCE_ROW_COLUMNS = (
    "piid",
    "name",
    "product",
    "pid",
    "last_contact",
    "out_of_compliance",
    "reservation__id",
    "reservation__reservation_type",
    "reservation__pending_authorization_code",
)


def instance_rows(va: VirtualAccount) -> QuerySet:
    """The Product Instances tab, to be shown as INSTANCE_ROW_COLUMNS (no model instances, no certificate or
    nonce columns), with the Insufficient Licenses flag as in `instances`."""
    return ProductInstance.objects.filter(virtual_account=va).annotate(out_of_compliance=_out_of_compliance())


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


def alert_rows(sa, vas, *, q: str = "") -> QuerySet:
    """The Alerts page: `alerts` as named tuples of the columns it shows (the Virtual Account by id: the page
    names it from the portal's list)."""
    return alerts(sa, vas, q=q).values_list(
        "pk", "severity", "alert_type", "raised_at", "message", "virtual_account_id", named=True
    )


def transactions(sa, vas, *, sources=None) -> QuerySet:
    qs = LicenseTransaction.objects.filter(smart_account=sa, virtual_account__in=vas).select_related("virtual_account")
    if sources:
        qs = qs.filter(source__in=sources)
    return qs
