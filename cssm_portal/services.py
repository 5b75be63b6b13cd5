"""State changes of the Smart Software Manager. Every function takes `now` (lab
time) and writes its event rows; views and the agent endpoint stay thin."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from cssm_portal.alert_rules import (  # RULE_TYPES, alerts_desired, alerts_refresh: for existing callers
    RULE_TYPES,  # noqa: F401
    Scope,
    alert_once,
    alerts_desired,  # noqa: F401
    alerts_refresh,  # noqa: F401
    alerts_refresh_scope,
)
from cssm_portal.models import (
    AccountAccess,
    CssmAlert,
    CssmRole,
    LicensePool,
    LicenseTransaction,
    LicenseType,
    LicenseUsage,
    NotificationPreference,
    ProductInstance,
    RegistrationToken,
    Reservation,
    ReservationType,
    SmartAccount,
    SmartAccountRequest,
    SmartAccountRequestStatus,
    TransactionSource,
    UsageStatus,
    VirtualAccount,
)
from cssm_portal.restricted import restricted_alerts_clear, restricted_split
from licensing_core import catalogue, codes, pki, schedules
from licensing_core.alerts import CssmAlertType
from licensing_core.bulk import update_each
from licensing_core.context import request_id_var
from licensing_core.events import event_record
from licensing_core.models import Event, EventSide, Lab
from licensing_core.trust import certificate_authority, lab_trust


class ServiceError(ValueError):
    """A refused change; `reason` is shown to the user, next to `field` if given."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class AgentRefusal(Exception):
    """A refused Smart Agent message (docs/protocol.md, Refusals)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _event(
    *,
    lab: Lab,
    now: datetime,
    kind: str,
    message: str,
    actor: str = "",
    va=None,
    instance=None,
    sa=None,
    subject_name: str = "",
    old=None,
    new=None,
):
    if va is not None and sa is None:
        sa = va.smart_account
    return event_record(
        lab=lab,
        at=now,
        side=EventSide.CSSM,
        kind=kind,
        message=message,
        actor=actor,
        smart_account_id=sa.pk if sa is not None else None,
        virtual_account_id=va.pk if va is not None else None,
        product_instance_id=instance.pk if instance is not None else None,
        subject_name=subject_name or (instance.name if instance is not None else ""),
        old=old,
        new=new,
    )


def license_name(tag: str) -> str:
    try:
        return catalogue.license_by_tag(tag).name
    except KeyError:
        return tag


def license_sku(tag: str) -> str:
    try:
        return catalogue.license_by_tag(tag).sku
    except KeyError:
        return ""


def pool_effective(pool: LicensePool, now: datetime) -> int:
    """Purchased licences still valid at `now` (an expired term pool counts 0)."""
    if pool.license_type == LicenseType.TERM and pool.end_date and schedules.term_end_at(pool.end_date) <= now:
        return 0
    return pool.purchased


def in_use_by_tag(va: VirtualAccount) -> dict[str, int]:
    """The sum of the account's usage rows per tag (what LicensePool.in_use holds)."""
    rows = LicenseUsage.objects.filter(instance__virtual_account=va).values("tag").annotate(total=Sum("count"))
    return {r["tag"]: r["total"] for r in rows}


# --- Licences in use: LicensePool.in_use and the usage rows' status ----------------------------


def _pairs(keys, va_field: str = "virtual_account_id", tag_field: str = "tag") -> Q:
    """Q for a set of (virtual account id, tag) pairs, one term per account."""
    by_va: dict[int, set[str]] = defaultdict(set)
    for va_id, tag in keys:
        by_va[va_id].add(tag)
    q = Q(pk__in=[])
    for va_id, tags in sorted(by_va.items()):
        q |= Q(**{va_field: va_id, f"{tag_field}__in": sorted(tags)})
    return q


def pools_change(*, keys, deltas: dict[tuple[int, str], int] | None = None) -> dict[tuple[int, str], LicensePool]:
    """The pools of `keys` ((virtual account id, tag) pairs), with `deltas` added to
    their in_use (F() increments on rows locked in id order, in the caller's
    transaction). Usage of a tag the account holds no pool for gets one with
    purchased 0, so every usage row counts in exactly one pool."""
    deltas = {k: d for k, d in (deltas or {}).items() if d}
    keys = set(keys) | set(deltas)
    if not keys:
        return {}
    qs = LicensePool.objects.filter(_pairs(keys))
    if deltas:
        qs = qs.select_for_update().order_by("pk")
    pools = {(p.virtual_account_id, p.tag): p for p in qs}
    missing = [k for k, d in deltas.items() if d > 0 and k not in pools]
    if missing:
        LicensePool.objects.bulk_create(
            [LicensePool(virtual_account_id=va_id, tag=tag) for va_id, tag in sorted(missing)], ignore_conflicts=True
        )
        pools = {(p.virtual_account_id, p.tag): p for p in qs.all()}
    changed = {k: d for k, d in deltas.items() if k in pools}
    if changed:
        LicensePool.objects.filter(pk__in=[pools[k].pk for k in changed]).update(
            in_use=F("in_use")
            + Case(*[When(pk=pools[k].pk, then=Value(d)) for k, d in changed.items()], default=Value(0))
        )
        for k, d in changed.items():
            pools[k].in_use += d
    return pools


def verdicts_apply(*, pools, now: datetime) -> dict[tuple[int, str], bool]:
    """(virtual account id, tag) -> whether its use is within its valid purchases.

    Every non-reserved usage row of a tag carries the account's verdict as its
    status; the rows are rewritten only when the verdict differs from the one
    last written (LicensePool.in_compliance), not on every renewal."""
    pools = list(pools)
    verdict = {p.pk: p.in_use <= pool_effective(p, now) for p in pools}
    if any(verdict[p.pk] != p.in_compliance for p in pools):
        # Decide again on the locked rows (those of a renewal whose use did not
        # change were read without a lock), then flip the tags that need it.
        fresh = {p.pk: p for p in _locked_pools([p.pk for p in pools if verdict[p.pk] != p.in_compliance])}
        for p in pools:
            if p.pk in fresh:
                p.in_use, p.in_compliance = fresh[p.pk].in_use, fresh[p.pk].in_compliance
                verdict[p.pk] = p.in_use <= pool_effective(p, now)
        _verdicts_write({p: verdict[p.pk] for p in pools if verdict[p.pk] != p.in_compliance})
    return {(p.virtual_account_id, p.tag): verdict[p.pk] for p in pools}


def _locked_pools(pks) -> list[LicensePool]:
    return list(LicensePool.objects.select_for_update().filter(pk__in=pks).order_by("pk"))


def _verdicts_write(flips: dict[LicensePool, bool]) -> None:
    """Write each pool's new verdict to its non-reserved usage rows and to the
    pool (the caller holds the pool rows)."""
    for fine in (True, False):
        changed = [p for p, f in flips.items() if f is fine]
        if not changed:
            continue
        keys = [(p.virtual_account_id, p.tag) for p in changed]
        LicenseUsage.objects.filter(_pairs(keys, "instance__virtual_account_id")).exclude(
            status=UsageStatus.RESERVED
        ).update(status=UsageStatus.AUTHORIZED if fine else UsageStatus.OUT_OF_COMPLIANCE)
        LicensePool.objects.filter(pk__in=[p.pk for p in changed]).update(in_compliance=fine)
        for p in changed:
            p.in_compliance = fine


def pools_recount(*, virtual_accounts) -> int:
    """Recompute in_use (and the verdict last written) of the accounts' pools from
    their usage rows, creating the pools usage needs: for bulk loaders
    (seed_fleet, lab import) that write usage rows without the services."""
    va_ids = [getattr(va, "pk", va) for va in virtual_accounts]
    usage = LicenseUsage.objects.filter(instance__virtual_account_id__in=va_ids)
    needed = set(usage.values_list("instance__virtual_account_id", "tag").distinct())
    have = set(LicensePool.objects.filter(virtual_account_id__in=va_ids).values_list("virtual_account_id", "tag"))
    LicensePool.objects.bulk_create(
        [LicensePool(virtual_account_id=va_id, tag=tag) for va_id, tag in sorted(needed - have)], ignore_conflicts=True
    )
    rows = LicenseUsage.objects.filter(
        instance__virtual_account_id=OuterRef("virtual_account_id"), tag=OuterRef("tag")
    ).order_by()
    total = rows.values("tag").annotate(total=Sum("count")).values("total")
    return LicensePool.objects.filter(virtual_account_id__in=va_ids).update(
        in_use=Coalesce(Subquery(total, output_field=IntegerField()), 0),
        in_compliance=~Exists(rows.filter(status=UsageStatus.OUT_OF_COMPLIANCE)),
    )


# --- Tokens -----------------------------------------------------------------------------------------


def token_create(
    *,
    va: VirtualAccount,
    actor: str,
    description: str,
    expire_days: int,
    max_uses: int | None,
    export_controlled: bool,
    now: datetime,
) -> RegistrationToken:
    try:
        expires_at = schedules.token_expiry(now, expire_days)
    except ValueError as exc:
        raise ServiceError(str(exc), field="expire_days") from None
    if max_uses is not None and max_uses < 1:
        raise ServiceError("Max. Number of Uses must be a whole number of 1 or more.", field="max_uses")
    if len(description) > 100:
        raise ServiceError("The description may be at most 100 characters.", field="description")
    sa = va.smart_account
    if export_controlled and not sa.export_controlled_allowed:
        raise ServiceError(
            "This Smart Account is not permitted export-controlled functionality.", field="export_controlled"
        )
    trust = lab_trust(lab=sa.lab, now=now)
    token_id = str(uuid.uuid4())
    value = codes.token_generate(secret_key=bytes(trust.token_secret), now=now, token_id=token_id)
    token = RegistrationToken.objects.create(
        virtual_account=va,
        token_id=token_id,
        value=value,
        description=description,
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
        max_uses=max_uses,
        export_controlled=export_controlled,
    )
    kind = "restricted" if export_controlled else "unrestricted"
    _event(
        lab=sa.lab,
        now=now,
        kind="cssm.token.created",
        message=f"Product Instance Registration Token ({kind}) {codes.token_display(value)} created "
        f'for Virtual Account "{va.name}"' + (f': "{description}"' if description else "."),
        actor=actor,
        va=va,
        subject_name=codes.token_display(value),
    )
    return token


def token_revoke(*, token: RegistrationToken, actor: str, now: datetime) -> RegistrationToken:
    if token.revoked_at is not None:
        raise ServiceError("This token has already been revoked.")
    token.revoked_at = now
    token.save(update_fields=["revoked_at"])
    va = token.virtual_account
    _event(
        lab=va.smart_account.lab,
        now=now,
        kind="cssm.token.revoked",
        message=f"Product Instance Registration Token {codes.token_display(token.value)} was revoked.",
        actor=actor,
        va=va,
    )
    return token


# --- Agent exchanges -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    instance: ProductInstance
    certificate: str
    ca_certificate: str


def _issue(*, lab: Lab, csr_pem: str, udi: str, now: datetime, trust=None) -> tuple[str, datetime]:
    trust = trust or lab_trust(lab=lab, now=now)
    try:
        cert = pki.issue_id_certificate(ca=certificate_authority(trust), csr_pem=csr_pem.encode(), now=now)
    except PkiError as exc:
        raise AgentRefusal("bad_request", exc.reason, 400) from None
    info = pki.cert_info(cert)
    if info.udi != udi:
        raise AgentRefusal("bad_request", "The certificate signing request does not name this product's UDI.", 400)
    return cert.decode(), info.not_after


PkiError = pki.PkiError


@transaction.atomic
def instance_register(
    *,
    lab: Lab,
    token_text: str,
    csr_pem: str,
    udi: str,
    hostname: str,
    product: str,
    pid: str,
    serial: str,
    software_version: str,
    agent_version: str,
    force: bool,
    nonce: str,
    now: datetime,
) -> Registered:
    trust = lab_trust(lab=lab, now=now)
    try:
        parsed = codes.token_parse(token_text, secret_key=bytes(trust.token_secret))
    except codes.CodeError as exc:
        raise AgentRefusal("token_invalid", exc.reason, 400) from None
    token = (
        RegistrationToken.objects.select_related("virtual_account__smart_account")
        .filter(token_id=parsed.token_id, virtual_account__smart_account__lab=lab)
        .first()
    )
    if token is None:
        raise AgentRefusal("token_invalid", codes.TOKEN_FOREIGN, 400)
    if token.revoked_at is not None:
        raise AgentRefusal("token_revoked", "The registration token has been revoked.", 403)
    if token.expires_at <= now:
        raise AgentRefusal("token_expired", "The registration token has expired.", 403)
    if token.max_uses is not None and token.uses >= token.max_uses:
        raise AgentRefusal("token_used_up", "The registration token has reached its maximum number of uses.", 403)
    if product not in catalogue.PRODUCTS:
        raise AgentRefusal("bad_request", "The product must be ESA or SMA.", 400)
    va = token.virtual_account
    # One read: an instance with this UDI (already registered), and whether any
    # other instance of the Smart Account shares the serial (Duplicate Licenses).
    existing, shares_serial = None, False
    for found in ProductInstance.objects.select_related("virtual_account").filter(
        Q(udi=udi) | Q(serial=serial), lab=lab
    ):
        if found.udi == udi:
            existing = found
        elif found.virtual_account.smart_account_id == va.smart_account_id:
            shares_serial = True
    scope = Scope(serials={serial})
    if existing is not None:
        if not force:
            raise AgentRefusal(
                "already_registered",
                "The product is already registered. Reregister it if it is already registered (force).",
                409,
            )
        replaced = _instance_delete(instance=existing, now=now, actor="", reason="replaced by a new registration")
        if existing.virtual_account.smart_account_id == va.smart_account_id:
            scope.add(replaced)
        else:
            alerts_refresh_scope(smart_account=existing.virtual_account.smart_account, scope=replaced, now=now)
    cert, expires = _issue(lab=lab, csr_pem=csr_pem, udi=udi, now=now, trust=trust)
    instance = ProductInstance.objects.create(
        lab=lab,
        virtual_account=va,
        piid=uuid.uuid4(),
        udi=udi,
        name=hostname,
        product=product,
        pid=pid,
        serial=serial,
        software_version=software_version,
        agent_version=agent_version,
        certificate_pem=cert,
        cert_expires_at=expires,
        export_controlled=token.export_controlled,
        registered_at=now,
        last_contact=now,
        recent_nonces=[nonce],
    )
    _event(
        lab=lab,
        now=now,
        kind="cssm.instance.registered",
        message=f'Product instance "{hostname}" registered to Virtual Account "{va.name}" with token '
        f"{codes.token_display(token.value)}.",
        va=va,
        instance=instance,
    )
    # A new instance fails no rule yet: only Duplicate Licenses for its serial can
    # change, and only if another instance of the account shares it (or one was
    # replaced): with no other, the rule held neither before nor after.
    if shares_serial or existing is not None:
        alerts_refresh_scope(smart_account=va.smart_account, scope=scope, now=now)
    # Conditional increment, last: the token row stays locked only until the commit
    # (every registration with this token waits on it), and never more uses than allowed.
    updated = (
        RegistrationToken.objects.filter(pk=token.pk)
        .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
        .update(uses=F("uses") + 1)
    )
    if not updated:
        raise AgentRefusal("token_used_up", "The registration token has reached its maximum number of uses.", 403)
    return Registered(instance=instance, certificate=cert, ca_certificate=bytes(trust.ca_cert_pem).decode())


def instance_touch(*, instance: ProductInstance, nonce: str, now: datetime) -> None:
    nonces = (list(instance.recent_nonces) + [nonce])[-50:]
    instance.recent_nonces = nonces
    instance.last_contact = now
    instance.save(update_fields=["recent_nonces", "last_contact"])


@transaction.atomic
def instance_renew_id(*, instance: ProductInstance, csr_pem: str, now: datetime) -> tuple[str, datetime]:
    """A new ID certificate. The exchange was a contact: the instance's Failed to
    Connect / Renew alerts are refreshed."""
    (result,) = instances_renew_id(items=[(instance, csr_pem)], now=now)
    if isinstance(result, AgentRefusal):
        raise result
    scope = Scope(piids={str(instance.piid)})
    alerts_refresh_scope(smart_account=instance.virtual_account.smart_account, scope=scope, now=now)
    return result


def instances_renew_id(
    *, items: list[tuple[ProductInstance, str]], now: datetime
) -> list[tuple[str, datetime] | AgentRefusal]:
    """New ID certificates for (instance, CSR) pairs of one lab, written together:
    one UPDATE of the certificates and one INSERT of their events (the batch
    endpoint renews a fleet's certificates at once). Each item gets its
    (certificate, expiry), or the refusal of its CSR. The caller refreshes the
    instances' alerts (the batch endpoint once their last contact is written)."""
    if not items:
        return []
    trust = lab_trust(lab=items[0][0].lab, now=now)
    results: list[tuple[str, datetime] | AgentRefusal] = []
    renewed: dict[int, ProductInstance] = {}
    events = []
    for instance, csr_pem in items:
        try:
            cert, expires = _issue(lab=instance.lab, csr_pem=csr_pem, udi=instance.udi, now=now, trust=trust)
        except AgentRefusal as refusal:
            results.append(refusal)
            continue
        instance.certificate_pem, instance.cert_expires_at = cert, expires
        renewed[instance.pk] = instance  # renewed twice in one batch: the last certificate holds
        events.append(
            _event_row(
                instance=instance,
                kind="cssm.instance.id_renewed",
                message=f'The ID certificate of product instance "{instance.name}" was renewed.',
                now=now,
            )
        )
        results.append((cert, expires))
    if renewed:
        update_each(ProductInstance, list(renewed.values()), ["certificate_pem", "cert_expires_at"])
        Event.objects.bulk_create(events)
    return results


@transaction.atomic
def instance_authorize(*, instance: ProductInstance, usage: list[tuple[str, int]], now: datetime) -> list[dict]:
    # The instance row first (as the batch path's UPDATE of last contact does, then
    # the pools): two renewals of one instance at once take turns instead of both
    # inserting the same new usage row.
    list(ProductInstance.objects.select_for_update().filter(pk=instance.pk).values_list("pk", flat=True))
    va = instance.virtual_account
    usage, answer = restricted_split(instance=instance, usage=usage, now=now)  # export-restricted: not authorized
    valid = _valid_usage(instance=instance, usage=usage, answer=answer)
    rows = {u.tag: u for u in instance.usage.all()}
    previous = {t: u.count for t, u in rows.items()}
    now_using = {t: c for t, c in valid.items() if c > 0}
    ok = _usage_write(instance=instance, rows=rows, now_using=now_using, tags=set(valid), now=now)
    answer += _authorized_answer(now_using, ok)
    Event.objects.bulk_create(
        _authorized_events(instance=instance, previous=previous, now_using=now_using, ok=ok, now=now)
    )
    # Insufficient Licenses for the tags touched; this instance's Failed to Connect / Renew.
    scope = Scope(pools={(va.pk, t) for t in set(valid) | set(previous)}, piids={str(instance.piid)})
    alerts_refresh_scope(smart_account=va.smart_account, scope=scope, now=now)
    return answer


def _valid_usage(*, instance: ProductInstance, usage: list[tuple[str, int]], answer: list[dict]) -> dict[str, int]:
    """{tag: count} of the licences this product may use; the others answered invalid_tag."""
    valid: dict[str, int] = {}
    for tag, count in usage:
        try:
            lic = catalogue.license_by_tag(tag)
        except KeyError:
            answer.append({"tag": tag, "status": "invalid_tag", "display_name": ""})
            continue
        if lic.product != instance.product:
            answer.append({"tag": tag, "status": "invalid_tag", "display_name": lic.name})
            continue
        valid[tag] = valid.get(tag, 0) + count
    return valid


def _authorized_answer(now_using: dict[str, int], ok: dict[str, bool]) -> list[dict]:
    return [
        {
            "tag": tag,
            "status": "authorized" if ok.get(tag, False) else "out_of_compliance",
            "display_name": license_name(tag),
        }
        for tag in now_using
    ]


def _event_row(*, instance: ProductInstance, kind: str, message: str, now: datetime, old=None, new=None) -> Event:
    """An unsaved CSSM event row about `instance` (as _event writes it), for bulk_create."""
    return Event(
        lab_id=instance.lab_id,
        at=now,
        side=EventSide.CSSM,
        kind=kind,
        message=message,
        smart_account_id=instance.virtual_account.smart_account_id,
        virtual_account_id=instance.virtual_account_id,
        product_instance_id=instance.pk,
        subject_name=instance.name,
        old=old,
        new=new,
        request_id=request_id_var.get(),
    )


def _authorized_events(*, instance, previous: dict, now_using: dict, ok: dict, now: datetime) -> list[Event]:
    rows = []
    if now_using != previous:
        rows.append(
            _event_row(
                instance=instance,
                kind="cssm.instance.usage",
                message=f'Product instance "{instance.name}" now uses '
                + (", ".join(f"{c} {license_name(t)}" for t, c in sorted(now_using.items())) or "no licenses")
                + ".",
                now=now,
                old=previous,
                new=now_using,
            )
        )
    rows.append(
        _event_row(
            instance=instance,
            kind="cssm.instance.authorized",
            message=f'Product instance "{instance.name}" renewed its authorization'
            + ("." if all(ok.get(t, True) for t in now_using) else "; some licenses are out of compliance."),
            now=now,
        )
    )
    return rows


@transaction.atomic
def instances_authorize(
    *, items: list[tuple[ProductInstance, list[tuple[str, int]]]], now: datetime
) -> list[list[dict]]:
    """instance_authorize for many renewals at once (the batch endpoint): the same
    answers, rows, events and alerts as authorizing them one after the other, in
    order, with a fixed number of queries — usage read once, only changed usage
    rows written, one in_use update for every pool, verdicts replayed in memory,
    events bulk-created, one targeted alert refresh per Smart Account."""
    if not items:
        return []
    rows: dict[int, dict[str, LicenseUsage]] = defaultdict(dict)
    for u in LicenseUsage.objects.filter(instance_id__in={inst.pk for inst, _ in items}):
        rows[u.instance_id][u.tag] = u
    current = {pk: {t: u.count for t, u in r.items()} for pk, r in rows.items()}
    # Pass 1, in message order: what each renewal makes its instance use.
    plans = []
    deltas: dict[tuple[int, str], int] = defaultdict(int)
    keys: set[tuple[int, str]] = set()
    for inst, (usage, answer) in zip((i for i, _ in items), _restricted_many(items, now), strict=True):
        valid = _valid_usage(instance=inst, usage=usage, answer=answer)
        previous = current.get(inst.pk, {})
        now_using = {t: c for t, c in valid.items() if c > 0}
        va_id = inst.virtual_account_id
        for t in set(now_using) | set(previous):
            deltas[(va_id, t)] += now_using.get(t, 0) - previous.get(t, 0)
        tags = set(valid) | set(previous)
        keys |= {(va_id, t) for t in tags}
        plans.append((inst, answer, previous, now_using, tags))
        current[inst.pk] = now_using
    pools = pools_change(keys=keys, deltas=deltas)
    # Pass 2: each renewal's verdicts as they were at its turn.
    running = {k: p.in_use - deltas.get(k, 0) for k, p in pools.items()}
    flag = {k: p.in_compliance for k, p in pools.items()}
    answers, events = [], []
    for inst, answer, previous, now_using, tags in plans:
        ok = {}
        for t in tags:
            k = (inst.virtual_account_id, t)
            if k not in pools:
                continue
            running[k] += now_using.get(t, 0) - previous.get(t, 0)
            ok[t] = flag[k] = running[k] <= pool_effective(pools[k], now)
        answers.append(answer + _authorized_answer(now_using, ok))
        events += _authorized_events(instance=inst, previous=previous, now_using=now_using, ok=ok, now=now)
    # The rows as the last renewal of each instance left them; statuses carry the final verdicts.
    va_ids = {inst.pk: inst.virtual_account_id for inst, _ in items}
    _usage_rows_sync(rows=rows, current=current, va_ids=va_ids, pools=pools, flag=flag)
    Event.objects.bulk_create(events)
    scopes: dict[int, Scope] = defaultdict(Scope)
    accounts = {}
    for inst, _, _, _, tags in plans:
        sa = inst.virtual_account.smart_account
        accounts[sa.pk] = sa
        scopes[sa.pk].add(Scope(pools={(inst.virtual_account_id, t) for t in tags}, piids={str(inst.piid)}))
    for sa_id, scope in scopes.items():
        alerts_refresh_scope(smart_account=accounts[sa_id], scope=scope, now=now)
    return answers


def _restricted_many(items, now: datetime) -> list[tuple[list[tuple[str, int]], list[dict]]]:
    """restricted_split for each renewal, in bulk: an instance that requests an
    export-restricted licence anywhere in the batch goes through restricted_split
    message by message (it raises and clears alerts in order); for the others
    the split is the usage itself and their restricted alerts are cleared in
    one UPDATE per Smart Account, as restricted_split would clear them."""
    from cssm_portal.event_alerts import alerts_clear
    from cssm_portal.restricted import restricted_alert_key, restricted_licenses

    def restricted(inst) -> set[str]:
        return set(restricted_licenses(inst))

    one_by_one = {inst.pk for inst, usage in items if any(t in restricted(inst) and c > 0 for t, c in usage)}
    out = []
    clear: dict[int, list[str]] = defaultdict(list)
    accounts = {}
    for inst, usage in items:
        tags = restricted(inst)
        if inst.pk in one_by_one:
            out.append(restricted_split(instance=inst, usage=usage, now=now))
            continue
        if tags:
            sa = inst.virtual_account.smart_account
            accounts[sa.pk] = sa
            clear[sa.pk] += [restricted_alert_key(inst, t) for t in sorted(tags)]
        out.append((usage, []))
    for sa_id, keys in clear.items():
        alerts_clear(smart_account=accounts[sa_id], keys=keys, now=now)
    return out


def _usage_rows_sync(*, rows, current, va_ids, pools, flag) -> None:
    """Write the usage rows from `rows` (as read) to `current` ({instance id:
    {tag: count}}) in bulk — only what changed — and the verdicts in `flag`
    ((virtual account id, tag) -> bool) where they differ from the pools'."""
    gone = [u.pk for pk, r in rows.items() for t, u in r.items() if t not in current.get(pk, {})]
    if gone:
        LicenseUsage.objects.filter(pk__in=gone).delete()
    changed, new = [], []
    for pk, using in current.items():
        for t, c in using.items():
            u = rows.get(pk, {}).get(t)
            if u is None:
                new.append((pk, t, c))
            elif u.count != c:
                u.count = c
                changed.append(u)
    if changed:
        update_each(LicenseUsage, changed, ["count"])
    flips = {pools[k]: f for k, f in flag.items() if f != pools[k].in_compliance}
    if flips:
        _locked_pools([p.pk for p in flips])  # held already when the batch changed use; else taken now
        _verdicts_write(flips)
    if new:
        LicenseUsage.objects.bulk_create(
            LicenseUsage(
                instance_id=pk,
                tag=t,
                count=c,
                status=UsageStatus.AUTHORIZED if flag.get((va_ids[pk], t), False) else UsageStatus.OUT_OF_COMPLIANCE,
            )
            for pk, t, c in new
        )


def _usage_write(
    *, instance: ProductInstance, rows: dict[str, LicenseUsage], now_using: dict[str, int], tags: set[str], now
) -> dict[str, bool]:
    """Make the instance's usage rows `now_using` ({tag: count}), writing only
    what changed, keep the pools' in_use with them, and give every instance of
    the account using these tags (and `tags`) the account's verdict.
    Returns tag -> verdict."""
    va_id = instance.virtual_account_id
    previous = {t: u.count for t, u in rows.items()}
    deltas = {(va_id, t): now_using.get(t, 0) - previous.get(t, 0) for t in set(now_using) | set(previous)}
    # The pools first: whoever writes a tag's usage rows holds its pool row, so
    # row writes and verdict flips of two renewals never wait on each other in a circle.
    pools = pools_change(keys={(va_id, t) for t in tags | set(previous)}, deltas=deltas)
    gone = [u.pk for t, u in rows.items() if t not in now_using]
    if gone:
        LicenseUsage.objects.filter(pk__in=gone).delete()
    changed = [u for t, u in rows.items() if t in now_using and u.count != now_using[t]]
    for u in changed:
        u.count = now_using[u.tag]
    if changed:
        update_each(LicenseUsage, changed, ["count"])
    ok = {tag: fine for (_, tag), fine in verdicts_apply(pools=pools.values(), now=now).items()}
    new = [t for t in now_using if t not in rows]
    if new:
        LicenseUsage.objects.bulk_create(
            LicenseUsage(
                instance=instance,
                tag=t,
                count=now_using[t],
                status=UsageStatus.AUTHORIZED if ok.get(t, False) else UsageStatus.OUT_OF_COMPLIANCE,
            )
            for t in new
        )
    return ok


def _usage_replace(*, instance: ProductInstance, entitlements: dict[str, int]) -> None:
    """Replace a reserving instance's usage rows with `entitlements`, keeping in_use."""
    va_id = instance.virtual_account_id
    held = dict(instance.usage.values_list("tag", "count"))
    pools_change(  # the pools first, as every usage write (_usage_write)
        keys=(),
        deltas={(va_id, t): entitlements.get(t, 0) - held.get(t, 0) for t in set(held) | set(entitlements)},
    )
    instance.usage.all().delete()
    LicenseUsage.objects.bulk_create(
        LicenseUsage(instance=instance, tag=t, count=c, status=UsageStatus.RESERVED) for t, c in entitlements.items()
    )


def _instance_delete(*, instance: ProductInstance, now: datetime, actor: str, reason: str) -> Scope:
    """Remove the instance (its usage returns to the pools); the Scope of alerts it affects."""
    va = instance.virtual_account
    released = {u.tag: u.count for u in instance.usage.all()}
    pools_change(keys=(), deltas={(va.pk, t): -c for t, c in released.items()})
    _event(
        lab=instance.lab,
        now=now,
        kind="cssm.instance.removed",
        message=f'Product instance "{instance.name}" was removed ({reason}); its licenses returned to '
        f'Virtual Account "{va.name}".',
        actor=actor,
        va=va,
        instance=instance,
        old=released,
    )
    scope = Scope(pools={(va.pk, t) for t in released}, serials={instance.serial}, piids={str(instance.piid)})
    restricted_alerts_clear(instance=instance, now=now)
    instance.delete()
    return scope


@transaction.atomic
def instance_deregister(*, instance: ProductInstance, now: datetime) -> None:
    sa = instance.virtual_account.smart_account
    scope = _instance_delete(instance=instance, now=now, actor="", reason="deregistered by the product")
    alerts_refresh_scope(smart_account=sa, scope=scope, now=now)


@transaction.atomic
def dlc_deposit(*, instance: ProductInstance, licenses: list[dict], now: datetime) -> list[dict]:
    if instance.dlc_completed_at is not None:
        raise AgentRefusal(
            "dlc_failed", "Device Led Conversion has already been completed for this product instance.", 422
        )
    if not licenses:
        raise AgentRefusal("dlc_failed", "There are no classic licenses to convert.", 422)
    va = instance.virtual_account
    deposited = []
    for item in licenses:
        tag, count = item["tag"], item["count"]
        try:
            lic = catalogue.license_by_tag(tag)
        except KeyError:
            raise AgentRefusal("dlc_failed", f"{tag} is not a license this product can convert.", 422) from None
        if lic.product != instance.product:
            raise AgentRefusal("dlc_failed", f"{lic.name} is not a license of this product.", 422)
        pool, _ = LicensePool.objects.get_or_create(virtual_account=va, tag=tag)
        if pool.license_type == LicenseType.TERM:
            raise AgentRefusal(
                "dlc_failed", f"{lic.name} is held as a term license; classic licenses convert to perpetual.", 422
            )
        LicensePool.objects.filter(pk=pool.pk).update(purchased=F("purchased") + count)
        LicenseTransaction.objects.create(
            smart_account=va.smart_account,
            virtual_account=va,
            at=now,
            tag=tag,
            sku=lic.sku,
            license_name=lic.name,
            quantity=count,
            source=TransactionSource.DLC,
            reference=f"{instance.pid} {instance.serial} ({item.get('classic_feature', '')})".strip(),
        )
        deposited.append({"tag": tag, "count": count, "display_name": lic.name})
    instance.dlc_completed_at = now
    instance.save(update_fields=["dlc_completed_at"])
    _event(
        lab=instance.lab,
        now=now,
        kind="cssm.dlc.deposited",
        message=f'Device Led Conversion of "{instance.name}" deposited '
        + ", ".join(f"{d['count']} {d['display_name']}" for d in deposited)
        + f' into Virtual Account "{va.name}".',
        va=va,
        instance=instance,
        new=deposited,
    )
    scope = Scope(pools={(va.pk, d["tag"]) for d in deposited}, piids={str(instance.piid)})
    alerts_refresh_scope(smart_account=va.smart_account, scope=scope, now=now)
    return deposited


# --- Portal actions on instances --------------------------------------------------------------


@transaction.atomic
def instance_remove(*, instance: ProductInstance, actor: str, now: datetime, return_code: str = "") -> None:
    sa = instance.virtual_account.smart_account
    reservation = Reservation.objects.filter(instance=instance).first()
    if reservation is not None:
        if not return_code.strip():
            raise ServiceError("Enter the Reservation Return Code generated on the product.", field="return_code")
        trust = lab_trust(lab=instance.lab, now=now)
        try:
            codes.return_code_verify(
                return_code, secret=bytes(trust.return_code_secret), piid=str(instance.piid), udi=instance.udi
            )
        except codes.CodeError as exc:
            raise ServiceError(exc.reason, field="return_code") from None
        returned = ", ".join(f"{c} {license_name(t)}" for t, c in sorted(reservation.entitlements.items()))
        alert_once(
            sa=sa,
            va=instance.virtual_account,
            alert_type=CssmAlertType.RESERVED_LICENSES_RETURNED,
            key=f"returned:{instance.piid}",
            message=f'Reserved licenses of "{instance.name}" were returned to Virtual Account '
            f'"{instance.virtual_account.name}"' + (f": {returned}." if returned else "."),
            now=now,
        )
    scope = _instance_delete(instance=instance, now=now, actor=actor, reason=f"removed by {actor}")
    alerts_refresh_scope(smart_account=sa, scope=scope, now=now)


@transaction.atomic
def instance_transfer(*, instance: ProductInstance, target: VirtualAccount, actor: str, now: datetime) -> None:
    source = instance.virtual_account
    if target.smart_account_id != source.smart_account_id:
        raise ServiceError("The target Virtual Account belongs to another Smart Account.", field="target")
    if target.pk == source.pk:
        raise ServiceError("The product instance is already in this Virtual Account.", field="target")
    reserved = {u.tag: u.count for u in instance.usage.filter(status=UsageStatus.RESERVED)}
    if reserved:
        # Reserved licences move with the instance: their purchases go along.
        for tag, count in reserved.items():
            _move_purchased(source=source, target=target, tag=tag, quantity=count, actor=actor, now=now)
    moved = _usage_move(instance=instance, source=source, target=target)
    instance.virtual_account = target
    instance.save(update_fields=["virtual_account"])
    # The usage moves along: gone from the source (old), arrived in the target (new); charts.py reads it.
    usage = {u.tag: u.count for u in instance.usage.all()}
    for va in (source, target):
        _event(
            lab=instance.lab,
            now=now,
            kind="cssm.instance.transferred",
            message=f'Product instance "{instance.name}" was transferred from Virtual Account "{source.name}" '
            f'to "{target.name}".',
            actor=actor,
            va=va,
            instance=instance,
            old=usage if va is source else {},
            new=usage if va is target else {},
        )
    scope = Scope(pools={(va.pk, t) for va in (source, target) for t in moved})
    alerts_refresh_scope(smart_account=source.smart_account, scope=scope, now=now)


def _usage_move(*, instance: ProductInstance, source: VirtualAccount, target: VirtualAccount) -> dict[str, int]:
    """in_use follows an instance to another account; its rows take the verdict last
    written there (the one every other row of the tag there carries) until a
    renewal there decides again."""
    usage = dict(instance.usage.values_list("tag", "count"))
    pools = pools_change(
        keys=(),
        deltas={**{(source.pk, t): -c for t, c in usage.items()}, **{(target.pk, t): c for t, c in usage.items()}},
    )
    for fine in (True, False):
        tags = [t for t in usage if pools[(target.pk, t)].in_compliance is fine]
        if tags:
            instance.usage.filter(tag__in=tags).exclude(status=UsageStatus.RESERVED).update(
                status=UsageStatus.AUTHORIZED if fine else UsageStatus.OUT_OF_COMPLIANCE
            )
    return usage


def _available(va: VirtualAccount, now: datetime) -> dict[str, int]:
    return {p.tag: pool_effective(p, now) - p.in_use for p in LicensePool.objects.filter(virtual_account=va)}


def _check_available(*, va: VirtualAccount, wanted: dict[str, int], now: datetime, held: dict[str, int]) -> None:
    available = _available(va, now)
    for tag, count in wanted.items():
        spare = available.get(tag, 0) + held.get(tag, 0)
        if count > spare:
            raise ServiceError(
                f'Only {max(spare, 0)} {license_name(tag)} available in Virtual Account "{va.name}"; '
                f"{count} requested.",
                field=f"qty_{tag}",
            )


def _move_purchased(
    *, source: VirtualAccount, target: VirtualAccount, tag: str, quantity: int, actor: str, now: datetime
) -> None:
    pool = LicensePool.objects.select_for_update().get(virtual_account=source, tag=tag)
    target_pool = _target_pool(target=target, pool=pool)
    if (target_pool.license_type, target_pool.end_date) != (pool.license_type, pool.end_date):
        raise ServiceError(
            f'Virtual Account "{target.name}" holds {license_name(tag)} with different terms.', field="target"
        )
    if not LicensePool.objects.filter(pk=pool.pk, purchased__gte=quantity).update(purchased=F("purchased") - quantity):
        raise ServiceError("Not enough licenses to transfer.", field="quantity")
    LicensePool.objects.filter(pk=target_pool.pk).update(purchased=F("purchased") + quantity)
    common = {
        "smart_account": source.smart_account,
        "at": now,
        "tag": tag,
        "sku": license_sku(tag),
        "license_name": license_name(tag),
        "license_type": pool.license_type,
        "end_date": pool.end_date,
        "source": TransactionSource.TRANSFER,
    }
    LicenseTransaction.objects.create(virtual_account=source, quantity=-quantity, reference=target.name, **common)
    LicenseTransaction.objects.create(virtual_account=target, quantity=quantity, reference=source.name, **common)


def _target_pool(*, target: VirtualAccount, pool: LicensePool) -> LicensePool:
    """The target account's pool for the tag of `pool`, created with its terms; a
    pool holding no purchases (only in use there) takes them too."""
    target_pool, created = LicensePool.objects.get_or_create(
        virtual_account=target,
        tag=pool.tag,
        defaults={"purchased": 0, "license_type": pool.license_type, "end_date": pool.end_date},
    )
    if not created and target_pool.purchased == 0:
        LicensePool.objects.filter(pk=target_pool.pk).update(license_type=pool.license_type, end_date=pool.end_date)
        target_pool.license_type, target_pool.end_date = pool.license_type, pool.end_date
    return target_pool


@transaction.atomic
def license_transfer(
    *, source: VirtualAccount, target: VirtualAccount, tag: str, quantity: int, actor: str, now: datetime
) -> None:
    if target.smart_account_id != source.smart_account_id:
        raise ServiceError("The target Virtual Account belongs to another Smart Account.", field="target")
    if target.pk == source.pk:
        raise ServiceError("Choose a different Virtual Account to transfer to.", field="target")
    if quantity < 1:
        raise ServiceError("Enter a quantity of 1 or more.", field="quantity")
    pool = LicensePool.objects.filter(virtual_account=source, tag=tag).first()
    if pool is None:
        raise ServiceError("This Virtual Account has no such license.", field="quantity")
    # Lock the source and the target pools together, always in id order, so a
    # transfer A→B and a concurrent B→A wait for each other instead of
    # deadlocking. The target pool is created first (rolled back if refused).
    _target_pool(target=target, pool=pool)
    locked = LicensePool.objects.select_for_update().filter(virtual_account__in=[source, target], tag=tag)
    pool = next(p for p in locked.order_by("pk") if p.virtual_account_id == source.pk)
    balance = pool.purchased - pool.in_use
    if quantity > balance:
        raise ServiceError(
            f"Only {max(balance, 0)} {license_name(tag)} can be transferred (the balance).", field="quantity"
        )
    _move_purchased(source=source, target=target, tag=tag, quantity=quantity, actor=actor, now=now)
    for va in (source, target):
        _event(
            lab=source.smart_account.lab,
            now=now,
            kind="cssm.license.transferred",
            message=f'{quantity} {license_name(tag)} transferred from Virtual Account "{source.name}" '
            f'to "{target.name}".',
            actor=actor,
            va=va,
            subject_name=license_name(tag),
        )
    scope = Scope(pools={(source.pk, tag), (target.pk, tag)})
    alerts_refresh_scope(smart_account=source.smart_account, scope=scope, now=now)


# --- Reservations ----------------------------------------------------------------------------


def _entitlements(va: VirtualAccount, quantities: dict[str, int], now: datetime) -> list[codes.Entitlement]:
    pools = {p.tag: p for p in LicensePool.objects.filter(virtual_account=va, tag__in=quantities)}
    out = []
    for tag, count in sorted(quantities.items()):
        pool = pools[tag]
        lic = catalogue.license_by_tag(tag)
        out.append(
            codes.Entitlement(
                tag=tag,
                count=count,
                start_date=now.date(),
                end_date=pool.end_date,
                license_type=pool.license_type,
                display_name=lic.name,
                tag_description=lic.name,
                subscription_id="",
            )
        )
    return out


def request_code_check(*, va: VirtualAccount, request_code: str):
    """Parse a request code for the wizard's first step (ServiceError with the reason)."""
    if not va.smart_account.reservation_allowed:
        raise ServiceError("License Reservation is not enabled for this Smart Account.", field="request_code")
    try:
        parsed = codes.request_code_parse(request_code)
    except codes.CodeError as exc:
        raise ServiceError(exc.reason, field="request_code") from None
    try:
        model = catalogue.model_by_pid(parsed.pid)
    except KeyError:
        raise ServiceError(f"{parsed.pid} is not a product that can reserve licenses.", field="request_code") from None
    existing = ProductInstance.objects.filter(lab=va.smart_account.lab, udi=parsed.udi).first()
    if existing is not None:
        raise ServiceError(
            f'The product {parsed.udi} is already in the inventory as "{existing.name}"; '
            "use Update Reserved Licenses... or remove it first.",
            field="request_code",
        )
    return parsed, model


def _clean_quantities(quantities: dict[str, int], product: str) -> dict[str, int]:
    clean = {}
    for tag, count in quantities.items():
        if count < 0:
            raise ServiceError("Quantities cannot be negative.", field=f"qty_{tag}")
        try:
            lic = catalogue.license_by_tag(tag)
        except KeyError:
            raise ServiceError(f"Unknown license {tag}.", field=f"qty_{tag}") from None
        if lic.product != product:
            raise ServiceError(f"{lic.name} cannot be reserved on this product.", field=f"qty_{tag}")
        if count:
            clean[tag] = count
    return clean


@transaction.atomic
def reservation_authorize(
    *,
    va: VirtualAccount,
    request_code: str,
    reservation_type: str,
    quantities: dict[str, int],
    actor: str,
    now: datetime,
) -> Reservation:
    parsed, model = request_code_check(va=va, request_code=request_code)
    if reservation_type not in ReservationType.values:
        raise ServiceError("Choose a specific or a permanent reservation.", field="reservation_type")
    clean = _clean_quantities(quantities, model.product) if reservation_type == ReservationType.SPECIFIC else {}
    if reservation_type == ReservationType.SPECIFIC and not clean:
        raise ServiceError("Enter a quantity to reserve for at least one license.", field="quantities")
    # Lock the pools so two wizards cannot both take the last licences (in id
    # order, like license_transfer, so lockers never wait on each other in a circle).
    list(LicensePool.objects.select_for_update().filter(virtual_account=va, tag__in=clean).order_by("pk"))
    _check_available(va=va, wanted=clean, now=now, held={})
    lab = va.smart_account.lab
    trust = lab_trust(lab=lab, now=now)
    piid = uuid.uuid4()
    try:
        instance = ProductInstance.objects.create(
            lab=lab,
            virtual_account=va,
            piid=piid,
            udi=parsed.udi,
            name=parsed.serial,
            product=model.product,
            pid=parsed.pid,
            serial=parsed.serial,
            registered_at=now,
            last_contact=now,
        )
    except IntegrityError:
        raise ServiceError("This product is already in the inventory.", field="request_code") from None
    _usage_replace(instance=instance, entitlements=clean)
    code = codes.authorization_code_generate(
        ca=certificate_authority(trust),
        request_code=parsed.code,
        udi=parsed.udi,
        piid=str(piid),
        entitlements=_entitlements(va, clean, now),
        now=now,
        reservation_type=reservation_type,
    )
    reservation = Reservation.objects.create(
        instance=instance,
        request_code=parsed.code,
        reservation_type=reservation_type,
        entitlements=clean,
        authorization_code=code,
        authorized_at=now,
    )
    what = ", ".join(f"{c} {license_name(t)}" for t, c in sorted(clean.items())) or "a permanent license"
    _event(
        lab=lab,
        now=now,
        kind="cssm.reservation.created",
        message=f'Licenses reserved on product instance "{instance.name}": {what}.',
        actor=actor,
        va=va,
        instance=instance,
        new=clean,
    )
    scope = Scope(pools={(va.pk, t) for t in clean}, serials={instance.serial}, piids={str(piid)})
    alerts_refresh_scope(smart_account=va.smart_account, scope=scope, now=now)
    return reservation


@transaction.atomic
def reservation_update(
    *, instance: ProductInstance, quantities: dict[str, int], actor: str, now: datetime
) -> Reservation:
    reservation = Reservation.objects.select_for_update().filter(instance=instance).first()
    if reservation is None:
        raise ServiceError("This product instance has no license reservation.")
    if reservation.reservation_type != ReservationType.SPECIFIC:
        raise ServiceError("A permanent reservation cannot be updated.")
    va = instance.virtual_account
    clean = _clean_quantities(quantities, instance.product)
    if not clean:
        raise ServiceError("Reserve at least one license, or remove the product instance.", field="quantities")
    held = {u.tag: u.count for u in instance.usage.all()}
    # In id order, as everywhere pools are locked (no lock cycles).
    list(LicensePool.objects.select_for_update().filter(virtual_account=va, tag__in=clean).order_by("pk"))
    _check_available(va=va, wanted=clean, now=now, held=held)
    if clean == reservation.entitlements and not reservation.pending:
        raise ServiceError("The quantities are unchanged.", field="quantities")
    _usage_replace(instance=instance, entitlements=clean)
    trust = lab_trust(lab=instance.lab, now=now)
    code = codes.authorization_code_generate(
        ca=certificate_authority(trust),
        request_code=reservation.request_code,
        udi=instance.udi,
        piid=str(instance.piid),
        entitlements=_entitlements(va, clean, now),
        now=now,
        reservation_type="SPECIFIC",
    )
    reservation.pending_entitlements = clean
    reservation.pending_authorization_code = code
    reservation.pending_since = now
    reservation.save(update_fields=["pending_entitlements", "pending_authorization_code", "pending_since"])
    old = reservation.entitlements
    changes = []
    for tag in sorted(set(old) | set(clean)):
        a, b = old.get(tag, 0), clean.get(tag, 0)
        if a != b:
            changes.append(f"{license_name(tag)} {a} → {b}")
    _event(
        lab=instance.lab,
        now=now,
        kind="cssm.reservation.updated",
        message=f'Reservation of "{instance.name}" updated ({"; ".join(changes)}); waiting for the confirmation code.',
        actor=actor,
        va=va,
        instance=instance,
        old=old,
        new=clean,
    )
    scope = Scope(pools={(va.pk, t) for t in set(held) | set(clean)}, piids={str(instance.piid)})
    alerts_refresh_scope(smart_account=va.smart_account, scope=scope, now=now)
    return reservation


@transaction.atomic
def reservation_confirm(*, instance: ProductInstance, confirmation_code: str, actor: str, now: datetime) -> Reservation:
    reservation = Reservation.objects.select_for_update().filter(instance=instance).first()
    if reservation is None or not reservation.pending:
        raise ServiceError("There is no reservation update waiting for a confirmation code.", field="confirmation_code")
    try:
        codes.confirmation_code_verify(confirmation_code, auth_code=reservation.pending_authorization_code)
    except codes.CodeError as exc:
        raise ServiceError(exc.reason, field="confirmation_code") from None
    reservation.entitlements = reservation.pending_entitlements or {}
    reservation.authorization_code = reservation.pending_authorization_code
    reservation.authorized_at = reservation.pending_since or now
    reservation.pending_entitlements = None
    reservation.pending_authorization_code = ""
    reservation.pending_since = None
    reservation.confirmed_at = now
    reservation.save()
    instance.last_contact = now
    instance.save(update_fields=["last_contact"])
    _event(
        lab=instance.lab,
        now=now,
        kind="cssm.reservation.confirmed",
        message=f'Confirmation code entered for product instance "{instance.name}"; '
        "the reservation update is complete.",
        actor=actor,
        va=instance.virtual_account,
        instance=instance,
    )
    scope = Scope(piids={str(instance.piid)})
    alerts_refresh_scope(smart_account=instance.virtual_account.smart_account, scope=scope, now=now)
    return reservation


@transaction.atomic
def reservation_cancel_update(*, instance: ProductInstance, actor: str, now: datetime) -> Reservation:
    reservation = Reservation.objects.select_for_update().filter(instance=instance).first()
    if reservation is None or not reservation.pending:
        raise ServiceError("There is no pending reservation update to cancel.")
    _usage_replace(instance=instance, entitlements=reservation.entitlements)
    reservation.pending_entitlements_before_cancel = reservation.pending_entitlements
    reservation.pending_entitlements = None
    reservation.pending_authorization_code = ""
    reservation.pending_since = None
    reservation.save()
    _event(
        lab=instance.lab,
        now=now,
        kind="cssm.reservation.update_cancelled",
        message=f'The reservation update of "{instance.name}" was canceled.',
        actor=actor,
        va=instance.virtual_account,
        instance=instance,
        old=reservation.pending_entitlements_before_cancel,
        new=reservation.entitlements,
    )
    va_id = instance.virtual_account_id
    tags = set(reservation.pending_entitlements_before_cancel or {}) | set(reservation.entitlements)
    scope = Scope(pools={(va_id, t) for t in tags}, piids={str(instance.piid)})
    alerts_refresh_scope(smart_account=instance.virtual_account.smart_account, scope=scope, now=now)
    return reservation


# --- Alerts -------------------------------------------------------------------------------------
# The rules and their refresh live in cssm_portal.alert_rules; the services
# refresh only what their change can affect (alert_rules.Scope).


def alert_dismiss(*, alerts, actor: str, now: datetime) -> int:
    return alerts.filter(dismissed_at__isnull=True).update(dismissed_at=now)


# --- Accounts and preferences ----------------------------------------------------------------------


def _va_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ServiceError("Enter a name.", field="name")
    if len(name) > 100:
        raise ServiceError("The name may be at most 100 characters.", field="name")
    return name


@transaction.atomic
def virtual_account_create(
    *, smart_account: SmartAccount, name: str, description: str, actor: str, now: datetime
) -> VirtualAccount:
    name = _va_name(name)
    if smart_account.virtual_accounts.filter(name__iexact=name).exists():
        raise ServiceError(f'A Virtual Account named "{name}" already exists.', field="name")
    va = VirtualAccount.objects.create(smart_account=smart_account, name=name, description=description.strip()[:255])
    _event(
        lab=smart_account.lab,
        now=now,
        kind="cssm.va.created",
        message=f'Virtual Account "{name}" was created.',
        actor=actor,
        va=va,
    )
    return va


@transaction.atomic
def virtual_account_rename(*, va: VirtualAccount, name: str, description: str, actor: str, now: datetime) -> None:
    name = _va_name(name)
    if va.smart_account.virtual_accounts.filter(name__iexact=name).exclude(pk=va.pk).exists():
        raise ServiceError(f'A Virtual Account named "{name}" already exists.', field="name")
    old = va.name
    va.name = name
    va.description = description.strip()[:255]
    va.save(update_fields=["name", "description"])
    _event(
        lab=va.smart_account.lab,
        now=now,
        kind="cssm.va.renamed",
        message=f'Virtual Account "{old}" was renamed to "{name}".'
        if old != name
        else f'Virtual Account "{name}" was updated.',
        actor=actor,
        va=va,
        old=old,
        new=name,
    )


@transaction.atomic
def virtual_account_set_default(*, va: VirtualAccount, actor: str, now: datetime) -> None:
    sa = va.smart_account
    if va.satellites.exists():
        raise ServiceError("A Virtual Account associated with a Satellite cannot be the default.")
    VirtualAccount.objects.filter(smart_account=sa, is_default=True).update(is_default=False)
    VirtualAccount.objects.filter(pk=va.pk).update(is_default=True)
    va.is_default = True
    _event(
        lab=sa.lab,
        now=now,
        kind="cssm.va.default",
        message=f'Virtual Account "{va.name}" is now the default Virtual Account.',
        actor=actor,
        va=va,
    )


EXPIRING_DAY_OPTIONS = (90, 60, 30, 14, 7)
PREFERENCE_EVENTS = (
    (CssmAlertType.INSUFFICIENT_LICENSES, "Usage in account exceeds available licenses"),
    (CssmAlertType.LICENSES_EXPIRING, "Warning that term-limited licenses will be expiring"),
    (CssmAlertType.LICENSES_EXPIRED, "Only displayed if Licenses Expiring warnings have not been dismissed"),
    (CssmAlertType.PRODUCT_INSTANCE_FAILED_TO_CONNECT, "Not connected during its renewal period"),
    (CssmAlertType.PRODUCT_INSTANCE_FAILED_TO_RENEW, "Not connected within its maximum allowed renewal period"),
)


def email_in_domain(email: str, domain: str) -> bool:
    host = email.rpartition("@")[2].lower()
    domain = domain.lower()
    return host == domain or host.endswith("." + domain)


@transaction.atomic
def preferences_save(
    *,
    user,
    smart_account: SmartAccount,
    daily_summary: bool,
    email: str,
    virtual_accounts: list[VirtualAccount],
    alert_events: list[str],
    expiring_days: list[int],
    status_notification: bool,
    now: datetime,
) -> NotificationPreference:
    email = email.strip()
    if daily_summary and not email:
        raise ServiceError("Enter the e-mail address that receives the Daily Event Summary.", field="email")
    if email and not email_in_domain(email, smart_account.domain):
        raise ServiceError(
            f"The e-mail address must be within the Smart Account's domain ({smart_account.domain}).", field="email"
        )
    unknown = set(alert_events) - {t for t, _ in PREFERENCE_EVENTS}
    if unknown:
        raise ServiceError("Unknown alert event.", field="alert_events")
    if set(expiring_days) - set(EXPIRING_DAY_OPTIONS):
        raise ServiceError("Choose among 90, 60, 30, 14 and 7 days.", field="expiring_days")
    if any(va.smart_account_id != smart_account.pk for va in virtual_accounts):
        raise ServiceError("Unknown Virtual Account.", field="virtual_accounts")
    if CssmAlertType.LICENSES_EXPIRING in alert_events and not expiring_days:
        expiring_days = [90]
    pref, _ = NotificationPreference.objects.update_or_create(
        user=user,
        smart_account=smart_account,
        defaults={
            "daily_summary": daily_summary,
            "email": email,
            "alert_events": sorted(alert_events),
            "expiring_days": sorted(expiring_days, reverse=True),
            "status_notification": status_notification,
        },
    )
    pref.virtual_accounts.set(virtual_accounts)
    _event(
        lab=smart_account.lab,
        now=now,
        kind="cssm.preferences.saved",
        message=f"Notification preferences of {user.get_username()} were saved.",
        actor=user.get_username(),
        sa=smart_account,
    )
    return pref


# --- Smart Account creation --------------------------------------------------------------------

SA_NAME_RE = re.compile(r"[A-Za-z0-9 ,.&()'_-]+")
DOMAIN_RE = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def user_domain(user) -> str:
    return (user.email or "").rpartition("@")[2].lower()


@transaction.atomic
def smart_account_request(*, lab: Lab, user, name: str, domain: str, now: datetime) -> SmartAccountRequest:
    name = name.strip()
    domain = domain.strip().lower()
    if not name:
        raise ServiceError("Enter the Account Name.", field="name")
    if len(name) > 50 or not SA_NAME_RE.fullmatch(name):
        raise ServiceError(
            "The Account Name may have up to 50 characters: letters, digits, spaces and , . & ( ) ' _ -",
            field="name",
        )
    if not DOMAIN_RE.fullmatch(domain):
        raise ServiceError("Enter an Account Domain Identifier such as example.com.", field="domain")
    if (
        SmartAccount.objects.filter(lab=lab, domain=domain).exists()
        or SmartAccountRequest.objects.filter(
            lab=lab, domain=domain, status__in=[SmartAccountRequestStatus.PENDING_APPROVAL]
        ).exists()
    ):
        raise ServiceError(f"A Smart Account for {domain} already exists or is being requested.", field="domain")
    edited = domain != user_domain(user)
    req = SmartAccountRequest.objects.create(
        lab=lab,
        requested_by=user,
        name=name,
        domain=domain,
        domain_edited=edited,
        status=SmartAccountRequestStatus.PENDING_APPROVAL if edited else SmartAccountRequestStatus.PENDING_SETUP,
        requested_at=now,
    )
    event_record(
        lab=lab,
        at=now,
        side=EventSide.CSSM,
        kind="cssm.sa.requested",
        message=f'Smart Account "{name}" ({domain}) was requested'
        + (" and is waiting for approval because the Account Domain Identifier was edited." if edited else "."),
        actor=user.get_username(),
        subject_name=name,
    )
    if not edited:
        _smart_account_setup(req=req, now=now)
    return req


@transaction.atomic
def smart_account_approve(*, req: SmartAccountRequest, approve: bool, actor: str, now: datetime) -> None:
    if req.status != SmartAccountRequestStatus.PENDING_APPROVAL:
        raise ServiceError("This request is not waiting for approval.")
    req.decided_at = now
    if not approve:
        req.status = SmartAccountRequestStatus.REJECTED
        req.save(update_fields=["status", "decided_at"])
        return
    req.status = SmartAccountRequestStatus.PENDING_SETUP
    req.save(update_fields=["status", "decided_at"])
    _smart_account_setup(req=req, now=now)


def _smart_account_setup(*, req: SmartAccountRequest, now: datetime) -> None:
    """Send the Creator the e-mail that completes the setup (through the outbox)."""
    from licensing_core.mail import mail_enqueue

    mail_enqueue(
        lab=req.lab,
        lab_time=now,
        template="cssm-sa-setup",
        context={"req": req},
        recipients=[req.requested_by.email or f"{req.requested_by.get_username()}@{req.domain}"],
        dedupe_key=f"cssm-sa-setup:{req.pk}",
    )


@transaction.atomic
def smart_account_complete(*, req: SmartAccountRequest, user, now: datetime) -> SmartAccount:
    if req.requested_by_id != user.pk:
        raise ServiceError("Only the Creator can complete the account setup.")
    if req.status != SmartAccountRequestStatus.PENDING_SETUP:
        raise ServiceError("This request is not ready for setup.")
    sa = SmartAccount.objects.create(lab=req.lab, name=req.name, domain=req.domain)
    va = VirtualAccount.objects.create(smart_account=sa, name="DEFAULT", is_default=True)
    AccountAccess.objects.create(user=user, smart_account=sa, role=CssmRole.SA_ADMIN)
    req.status = SmartAccountRequestStatus.COMPLETE
    req.smart_account = sa
    req.save(update_fields=["status", "smart_account"])
    _event(
        lab=req.lab,
        now=now,
        kind="cssm.sa.created",
        message=f'Smart Account "{sa.name}" was created with the default Virtual Account "DEFAULT".',
        actor=user.get_username(),
        va=va,
        sa=sa,
    )
    from cssm_portal.agreements import agreement_require  # here: agreements imports this module

    agreement_require(smart_account=sa, now=now)
    return sa


# --- Convert to Smart Licensing -------------------------------------------------------------------

PAK_RE = re.compile(r"[A-Z0-9]{8,20}")


@transaction.atomic
def pak_convert(*, va: VirtualAccount, pak: str, tag: str, quantity: int, actor: str, now: datetime) -> None:
    pak = pak.strip().upper()
    if not PAK_RE.fullmatch(pak):
        raise ServiceError("A PAK is 8 to 20 letters and digits.", field="pak")
    if LicenseTransaction.objects.filter(
        smart_account=va.smart_account, source=TransactionSource.PAK, reference=pak
    ).exists():
        raise ServiceError(f"PAK {pak} has already been converted.", field="pak")
    try:
        lic = catalogue.license_by_tag(tag)
    except KeyError:
        raise ServiceError("Unknown license.", field="license_tag") from None
    if quantity < 1:
        raise ServiceError("Enter a quantity of 1 or more.", field="quantity")
    pool, _ = LicensePool.objects.get_or_create(virtual_account=va, tag=tag)
    if pool.license_type == LicenseType.TERM:
        raise ServiceError(f"{lic.name} is held as a term license in this account.", field="license_tag")
    LicensePool.objects.filter(pk=pool.pk).update(purchased=F("purchased") + quantity)
    LicenseTransaction.objects.create(
        smart_account=va.smart_account,
        virtual_account=va,
        at=now,
        tag=tag,
        sku=lic.sku,
        license_name=lic.name,
        quantity=quantity,
        source=TransactionSource.PAK,
        reference=pak,
    )
    _event(
        lab=va.smart_account.lab,
        now=now,
        kind="cssm.pak.converted",
        message=f'PAK {pak} converted: {quantity} {lic.name} deposited in Virtual Account "{va.name}".',
        actor=actor,
        va=va,
    )
    alerts_refresh_scope(smart_account=va.smart_account, scope=Scope(pools={(va.pk, tag)}), now=now)


# --- Daily Event Summary --------------------------------------------------------------------------


def daily_summaries_send(*, lab: Lab, now: datetime) -> int:
    """Queue each subscriber's summary of the lab day that ended at the last
    00:00 UTC (once: the outbox dedupes on subscriber and day)."""
    from licensing_core.mail import mail_enqueue

    day_end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day_start = day_end - timedelta(days=1)
    prefs = (
        NotificationPreference.objects.filter(smart_account__lab=lab, daily_summary=True)
        .exclude(email="")
        .select_related("smart_account")
        .prefetch_related("virtual_accounts")
    )
    queued = 0
    for pref in prefs:
        account = pref.smart_account
        vas = list(pref.virtual_accounts.all()) or list(account.virtual_accounts.all())
        alerts = CssmAlert.objects.filter(
            smart_account=account,
            virtual_account__in=vas,
            alert_type__in=pref.alert_events,
            raised_at__gte=day_start,
            raised_at__lt=day_end,
        ).select_related("virtual_account")
        rows = [
            {
                "severity": a.severity,
                "alert_type": a.alert_type,
                "virtual_account": a.virtual_account.name,
                "message": a.message,
            }
            for a in alerts
            if a.alert_type != CssmAlertType.LICENSES_EXPIRING or _expiring_selected(a, pref, day_end)
        ]
        if not rows:
            continue
        message = mail_enqueue(
            lab=lab,
            lab_time=day_end,
            template="cssm-daily-summary",
            context={"account": account, "day": day_start, "rows": rows},
            recipients=[pref.email],
            dedupe_key=f"cssm-daily:{pref.pk}:{day_start.date().isoformat()}",
        )
        queued += message is not None
    return queued


def _expiring_selected(alert: CssmAlert, pref: NotificationPreference, at: datetime) -> bool:
    """Licenses Expiring goes out only at the 90/60/30/14/7-day marks the user chose."""
    try:
        end = datetime.fromisoformat(alert.dedupe_key.rsplit(":", 1)[1]).date()
    except ValueError:
        return True
    days_left = (schedules.term_end_at(end) - at).days
    chosen = pref.expiring_days or [90]
    return any(days_left <= d for d in chosen)
