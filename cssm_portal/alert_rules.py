"""The CSSM's alert rules: which alerts hold for the facts of a Smart Account,
and the refresh that raises what holds and clears what no longer does.

Each rule is a query that returns only what it holds for (failing instances,
short pools, duplicated serials), never the whole account, so a refresh costs
work proportional to what is failing. A refresh can also be *targeted*: the
services that change a fact refresh only the alerts that fact can change —
Insufficient Licenses for the (virtual account, tag) pairs whose use or
purchases moved, Duplicate Licenses for a serial, the instance rules for the
instances touched. The whole-account refresh runs in the lab sweep when a
time-driven rule falls due (cssm_portal.sweeps) and after bulk loads.

Keys (CssmAlert.dedupe_key) are "<rule>:<virtual account id>:<tag>[:<end date>]"
for the pool rules, "<rule>:<piid>" for the instance rules, "duplicate:<serial>"
and "sat_<rule>:<satellite id>"; labs/transfer.py remaps the virtual account ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q

from cssm_portal.event_alerts import alert_raised_record
from cssm_portal.models import (
    CssmAlert,
    LicensePool,
    LicenseType,
    LicenseUsage,
    ProductInstance,
    SatelliteInstance,
    SmartAccount,
    UsageStatus,
)
from licensing_core import formats, schedules
from licensing_core.alerts import CSSM_ALERT_SEVERITY, CssmAlertType

T = CssmAlertType
RULE_TYPES = frozenset(
    {
        T.INSUFFICIENT_LICENSES,
        T.LICENSES_EXPIRING,
        T.LICENSES_EXPIRED,
        T.PRODUCT_INSTANCE_FAILED_TO_CONNECT,
        T.PRODUCT_INSTANCE_FAILED_TO_RENEW,
        T.RESERVED_LICENSE_EXPIRED,
        T.AUTHORIZATION_PENDING,
        T.DUPLICATE_LICENSES,
        T.SYNCHRONIZATION_OVERDUE,
        T.SATELLITE_SYNC_DEADLINE,
        T.SATELLITE_EXPIRED_AND_REMOVED,
    }
)
POOL_RULES = {"insufficient": T.INSUFFICIENT_LICENSES, "expiring": T.LICENSES_EXPIRING}
POOL_RULES |= {"expired": T.LICENSES_EXPIRED, "reserved_expired": T.RESERVED_LICENSE_EXPIRED}
POOL_TYPES = frozenset(POOL_RULES.values())
INSTANCE_RULES = {
    "failed_renew": T.PRODUCT_INSTANCE_FAILED_TO_RENEW,
    "failed_connect": T.PRODUCT_INSTANCE_FAILED_TO_CONNECT,
    "auth_pending": T.AUTHORIZATION_PENDING,
}
# Rules that change with facts alone (a registration, a reservation update), never
# with time: the services keep them; the sweep's time-driven refresh leaves them be.
EVENT_DRIVEN_TYPES = frozenset({T.DUPLICATE_LICENSES, T.AUTHORIZATION_PENDING})
SATELLITE_TYPES = frozenset({T.SYNCHRONIZATION_OVERDUE, T.SATELLITE_SYNC_DEADLINE, T.SATELLITE_EXPIRED_AND_REMOVED})

Desired = dict[str, tuple]  # key -> (alert_type, virtual account or None, message)


@dataclass
class Scope:
    """What a change can affect: (virtual account id, tag) pairs, serials, product
    instance ids (piid, as text; an instance that is gone clears its alerts)."""

    pools: set[tuple[int, str]] = field(default_factory=set)
    serials: set[str] = field(default_factory=set)
    piids: set[str] = field(default_factory=set)

    def add(self, other: Scope) -> Scope:
        self.pools |= other.pools
        self.serials |= other.serials
        self.piids |= other.piids
        return self

    def __bool__(self) -> bool:
        return bool(self.pools or self.serials or self.piids)


class _Vas(dict):
    """The account's virtual accounts by id, read on first use: a refresh with
    nothing to raise (most renewals) does not read them."""

    def __init__(self, smart_account: SmartAccount):
        super().__init__()
        self.smart_account = smart_account

    def __missing__(self, va_id: int):
        if not self:
            self.update({va.pk: va for va in self.smart_account.virtual_accounts.all()})
        if va_id not in self:
            raise KeyError(va_id)
        return self.get(va_id)


def _vas(smart_account: SmartAccount) -> dict:
    return _Vas(smart_account)


# --- the rules -----------------------------------------------------------------------------------


def _pool_rules(smart_account, pools, vas, now: datetime) -> Desired:
    """Insufficient Licenses, Licenses Expiring / Expired, Reserved License Expired."""
    from cssm_portal.services import license_name, pool_effective  # services imports this module

    pools = list(pools)
    out: Desired = {}
    expired_terms = []
    for p in pools:
        have = pool_effective(p, now)
        term = p.license_type == LicenseType.TERM and p.end_date and p.purchased != 0
        days = schedules.current_expiry_warning(p.end_date, now=now) if term else None
        if p.in_use <= have and days is None:
            continue  # no rule holds (the virtual account is not even read)
        va = vas[p.virtual_account_id]
        if p.in_use > have:
            out[f"insufficient:{va.pk}:{p.tag}"] = (
                T.INSUFFICIENT_LICENSES,
                va,
                f'The Virtual Account "{va.name}" has a shortage of {license_name(p.tag)} '
                f"({p.in_use} in use, {have} purchased).",
            )
        stamp = p.end_date.isoformat() if term else ""
        if days == 0:
            out[f"expired:{va.pk}:{p.tag}:{stamp}"] = (
                T.LICENSES_EXPIRED,
                va,
                f'{p.purchased} {license_name(p.tag)} licenses in Virtual Account "{va.name}" expired on '
                f"{formats.cssm_date(p.end_date)}.",
            )
            expired_terms.append(p)
        elif days is not None:
            left = (schedules.term_end_at(p.end_date) - now).days + 1
            out[f"expiring:{va.pk}:{p.tag}:{stamp}"] = (
                T.LICENSES_EXPIRING,
                va,
                f'{p.purchased} {license_name(p.tag)} licenses in Virtual Account "{va.name}" expire on '
                f"{formats.cssm_date(p.end_date)} (in {left} days).",
            )
    if expired_terms:
        reserved = set(
            LicenseUsage.objects.filter(
                _pairs_q([(p.virtual_account_id, p.tag) for p in expired_terms]), status=UsageStatus.RESERVED
            )
            .values_list("instance__virtual_account_id", "tag")
            .distinct()
        )
        for p in expired_terms:
            if (p.virtual_account_id, p.tag) in reserved:
                va = vas[p.virtual_account_id]
                out[f"reserved_expired:{va.pk}:{p.tag}:{p.end_date.isoformat()}"] = (
                    T.RESERVED_LICENSE_EXPIRED,
                    va,
                    f'Reserved {license_name(p.tag)} licenses in Virtual Account "{va.name}" expired on '
                    f"{formats.cssm_date(p.end_date)}.",
                )
    return out


def _pairs_q(pairs) -> Q:
    from cssm_portal.services import _pairs

    return _pairs(pairs, "instance__virtual_account_id")


def _failed_to_renew(name: str, va, contact: datetime) -> tuple:
    return (
        T.PRODUCT_INSTANCE_FAILED_TO_RENEW,
        va,
        f'Product instance "{name}" has not connected within its maximum renewal period '
        f"(last contact {formats.cssm_datetime(contact)}).",
    )


def _failed_to_connect(name: str, va, contact: datetime) -> tuple:
    return (
        T.PRODUCT_INSTANCE_FAILED_TO_CONNECT,
        va,
        f'Product instance "{name}" has not connected during its renewal period '
        f"(last contact {formats.cssm_datetime(contact)}).",
    )


def _authorization_pending(name: str, va) -> tuple:
    return (
        T.AUTHORIZATION_PENDING,
        va,
        f'The reservation update of "{name}" is waiting for the confirmation code from the product.',
    )


def _windows(now: datetime) -> tuple[datetime, datetime]:
    """`age > window` is `last_contact < now - window`: instance_connect_status's boundaries."""
    return now - schedules.INSTANCE_RENEW_WINDOW, now - schedules.INSTANCE_CONNECT_WINDOW


def _instance_rules(instances, vas, now: datetime, *, pending: bool = True) -> Desired:
    """Failed to Renew / Failed to Connect (by last contact, instances without a
    reservation) and Authorization Pending (a reservation update waiting for its
    confirmation code): one query each, returning only the instances they hold for."""
    out: Desired = {}
    plain = instances.filter(reservation__isnull=True)
    renew_before, connect_before = _windows(now)
    fields = ("piid", "name", "virtual_account_id", "last_contact")
    for piid, name, va_id, contact in plain.filter(last_contact__lt=renew_before).values_list(*fields):
        out[f"failed_renew:{piid}"] = _failed_to_renew(name, vas[va_id], contact)
    connect = plain.filter(last_contact__lt=connect_before, last_contact__gte=renew_before)
    for piid, name, va_id, contact in connect.values_list(*fields):
        out[f"failed_connect:{piid}"] = _failed_to_connect(name, vas[va_id], contact)
    if not pending:
        return out
    waiting = instances.filter(reservation__isnull=False).exclude(reservation__pending_authorization_code="")
    for piid, name, va_id in waiting.values_list("piid", "name", "virtual_account_id"):
        out[f"auth_pending:{piid}"] = _authorization_pending(name, vas[va_id])
    return out


def _named_instance_rules(instances, vas, now: datetime) -> Desired:
    """The same rules for the few instances a change touched, in one query."""
    out: Desired = {}
    renew_before, connect_before = _windows(now)
    fields = ("piid", "name", "virtual_account_id", "last_contact")
    rows = instances.values_list(*fields, "reservation__id", "reservation__pending_authorization_code")
    for piid, name, va_id, contact, reservation, pending_code in rows:
        if reservation is not None:
            if pending_code:
                out[f"auth_pending:{piid}"] = _authorization_pending(name, vas[va_id])
        elif contact < renew_before:
            out[f"failed_renew:{piid}"] = _failed_to_renew(name, vas[va_id], contact)
        elif contact < connect_before:
            out[f"failed_connect:{piid}"] = _failed_to_connect(name, vas[va_id], contact)
    return out


def _duplicate_rules(instances, vas, serials: Iterable[str] | None = None) -> Desired:
    """Duplicate Licenses: product instances sharing a serial (the alert names the
    virtual account of the first of them by name)."""
    if serials is not None:
        instances = instances.filter(serial__in=list(serials))
    shared = instances.order_by().values("serial").annotate(n=Count("pk")).filter(n__gt=1).values("serial")
    groups: dict[str, list] = defaultdict(list)
    for serial, name, va_id in (
        instances.filter(serial__in=shared)
        .order_by("serial", "name", "pk")
        .values_list("serial", "name", "virtual_account_id")
    ):
        groups[serial].append((name, va_id))
    return {
        f"duplicate:{serial}": (
            T.DUPLICATE_LICENSES,
            vas[group[0][1]],
            f"Product instances {', '.join(sorted(n for n, _ in group))} share serial number {serial} "
            "and consume licenses twice.",
        )
        for serial, group in groups.items()
    }


def _satellite_rules(smart_account, now: datetime) -> Desired:
    out: Desired = {}
    for sat in SatelliteInstance.objects.filter(smart_account=smart_account, last_sync__isnull=False):
        age = now - sat.last_sync
        if age > timedelta(days=90):
            out[f"sat_removed:{sat.pk}"] = (
                T.SATELLITE_EXPIRED_AND_REMOVED,
                None,
                f'Satellite "{sat.name}" has not synchronized for 90 days.',
            )
        elif age > timedelta(days=60):
            out[f"sat_deadline:{sat.pk}"] = (
                T.SATELLITE_SYNC_DEADLINE,
                None,
                f'Satellite "{sat.name}" must synchronize by {formats.cssm_date(sat.last_sync + timedelta(days=90))}.',
            )
        elif age > timedelta(days=30):
            out[f"sat_overdue:{sat.pk}"] = (
                T.SYNCHRONIZATION_OVERDUE,
                None,
                f'Satellite "{sat.name}" last synchronized on {formats.cssm_date(sat.last_sync)}.',
            )
    return out


def _instances(smart_account: SmartAccount):
    # lab_id first: the (lab_id, last_contact) index serves the Failed to Connect / Renew rules.
    return ProductInstance.objects.filter(lab_id=smart_account.lab_id, virtual_account__smart_account=smart_account)


def alerts_desired(*, smart_account: SmartAccount, now: datetime, time_driven_only: bool = False) -> Desired:
    """key -> (alert_type, va, message) for every rule that holds now (only the
    rules that change with time when `time_driven_only`)."""
    vas = _vas(smart_account)
    instances = _instances(smart_account)
    out = _pool_rules(smart_account, LicensePool.objects.filter(virtual_account__smart_account=smart_account), vas, now)
    out |= _instance_rules(instances, vas, now, pending=not time_driven_only)
    if not time_driven_only:
        out |= _duplicate_rules(instances, vas)
    out |= _satellite_rules(smart_account, now)
    return out


# --- refresh -------------------------------------------------------------------------------------


def _apply(*, smart_account: SmartAccount, desired: Desired, open_alerts, now: datetime) -> tuple[int, int]:
    """Raise the desired alerts not open yet; clear the open ones no longer desired."""
    open_by_key = {a.dedupe_key: a.pk for a in open_alerts}
    stale = [pk for key, pk in open_by_key.items() if key not in desired]
    if stale:
        CssmAlert.objects.filter(pk__in=stale).update(cleared_at=now)
    new = [
        _alert(sa=smart_account, va=va, alert_type=alert_type, key=key, message=message, now=now)
        for key, (alert_type, va, message) in desired.items()
        if key not in open_by_key
    ]
    if new:
        CssmAlert.objects.bulk_create(new)
        for alert in new:
            alert_raised_record(smart_account=smart_account, alert=alert, now=now)
    return len(new), len(stale)


def _open(smart_account: SmartAccount, types) -> Iterable[CssmAlert]:
    return CssmAlert.objects.filter(smart_account=smart_account, cleared_at__isnull=True, alert_type__in=list(types))


def alerts_refresh(*, smart_account: SmartAccount, now: datetime, time_driven_only: bool = False) -> tuple[int, int]:
    """Raise the alerts whose rule holds and clear those whose rule no longer does,
    over the whole account (the rules that change with time only, for the sweep,
    when `time_driven_only`: the others are kept by the services). Returns (raised, cleared)."""
    desired = alerts_desired(smart_account=smart_account, now=now, time_driven_only=time_driven_only)
    types = RULE_TYPES - EVENT_DRIVEN_TYPES if time_driven_only else RULE_TYPES
    return _apply(smart_account=smart_account, desired=desired, open_alerts=_open(smart_account, types), now=now)


def satellite_alerts_refresh(*, smart_account: SmartAccount, now: datetime) -> tuple[int, int]:
    """Only the Satellite synchronization rules: what a Satellite's own change can
    affect (its unregistration, its synchronization), without the account's instances."""
    return _apply(
        smart_account=smart_account,
        desired=_satellite_rules(smart_account, now),
        open_alerts=_open(smart_account, SATELLITE_TYPES),
        now=now,
    )


def alerts_refresh_scope(*, smart_account: SmartAccount, scope: Scope, now: datetime) -> tuple[int, int]:
    """The refresh of what `scope` can change, with the same result for those keys
    as a whole-account refresh. Returns (raised, cleared)."""
    if not scope:
        return 0, 0
    vas = _vas(smart_account)
    desired: Desired = {}
    keys: list[str] = []
    wanted = Q(pk__in=[])  # the open alerts the scope covers, read in one query
    if scope.pools:
        pools = LicensePool.objects.filter(_pool_pairs(scope.pools))
        desired |= _pool_rules(smart_account, pools, vas, now)
        va_ids = {va_id for va_id, _ in scope.pools}
        wanted |= Q(virtual_account_id__in=va_ids, alert_type__in=list(POOL_RULES.values()))
    instances = _instances(smart_account)
    if scope.piids:
        desired |= _named_instance_rules(instances.filter(piid__in=list(scope.piids)), vas, now)
        keys += [f"{rule}:{piid}" for rule in INSTANCE_RULES for piid in scope.piids]
    if scope.serials:
        desired |= _duplicate_rules(instances, vas, scope.serials)
        keys += [f"duplicate:{serial}" for serial in scope.serials]
    if keys:
        wanted |= Q(dedupe_key__in=keys)
    open_alerts = [
        a
        for a in _open(smart_account, RULE_TYPES).filter(wanted)
        if a.dedupe_key in keys or (a.alert_type in POOL_TYPES and _key_pair(a.dedupe_key) in scope.pools)
    ]
    return _apply(smart_account=smart_account, desired=desired, open_alerts=open_alerts, now=now)


def _pool_pairs(pairs) -> Q:
    from cssm_portal.services import _pairs

    return _pairs(pairs)


def _key_pair(key: str) -> tuple[int, str]:
    parts = key.split(":")
    return int(parts[1]), parts[2]


def _alert(*, sa, va, alert_type, key, message, now) -> CssmAlert:
    """A new (unsaved) open alert."""
    return CssmAlert(
        smart_account=sa,
        virtual_account=va,
        alert_type=alert_type,
        severity=CSSM_ALERT_SEVERITY[alert_type],
        message=message,
        dedupe_key=key,
        raised_at=now,
    )


def alert_once(*, sa, va, alert_type, key, message, now) -> None:
    """Raise an alert that no rule clears, unless one with `key` is open."""
    if not CssmAlert.objects.filter(smart_account=sa, dedupe_key=key, cleared_at__isnull=True).exists():
        _alert(sa=sa, va=va, alert_type=alert_type, key=key, message=message, now=now).save()
