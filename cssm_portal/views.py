"""Portal pages. Thin: access from cssm_portal.access, reads from selectors,
changes through services; every time is the lab's."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cssm_portal import charts, selectors, services
from cssm_portal.access import Forbidden, lab_for, portal_for
from cssm_portal.event_alerts import dismissable
from cssm_portal.forms import (
    ConfirmationForm,
    PakForm,
    PreferencesForm,
    RemoveForm,
    RequestCodeForm,
    SmartAccountRequestForm,
    TokenForm,
    TransferForm,
    VirtualAccountForm,
)
from cssm_portal.models import (
    AccountAccess,
    NotificationPreference,
    ProductInstance,
    RegistrationToken,
    ReservationType,
    SatelliteInstance,
    SmartAccountRequest,
    SmartAccountRequestStatus,
    TransactionSource,
)
from cssm_portal.services import ServiceError
from cssm_portal.templatetags.cssm_urls import RowReverse, fast_reverse
from licensing_core import catalogue, codes, formats, schedules
from licensing_core.alerts import CssmAlertType
from licensing_core.clock import lab_now

# --- helpers -------------------------------------------------------------------------------------


def portal_view(view):
    """Resolve lab + Smart Account from the URL (404 outside the user's
    accounts) and turn a Forbidden into a 403 page with the reason."""

    @wraps(view)
    def wrapper(request, lab_slug: str, sa_id: int, *args, **kwargs):
        portal = portal_for(request.user, lab_slug, sa_id)
        try:
            return view(request, portal, *args, **kwargs)
        except Forbidden as exc:
            return render(
                request,
                "cssm_portal/dialogs/forbidden.html" if request.htmx else "cssm_portal/forbidden.html",
                {"portal": portal, "reason": str(exc)},
                status=403,
            )

    return wrapper


def _url(name: str, portal, *args) -> str:
    return fast_reverse(f"cssm:{name}", [portal.lab.slug, portal.smart_account.pk, *args])


def _row_links(portal, args, *names: str) -> list[RowReverse]:
    """Links for a table's rows: one callable per route name taking the row's own last argument (a pk, a
    PIID) after `args`; each route is reversed once per request, not once per row."""
    return [RowReverse(f"cssm:{name}", [portal.lab.slug, portal.smart_account.pk, *args]) for name in names]


def _dialog(request, portal, template: str, context: dict, *, status: int = 200):
    """A dialog: the fragment for htmx, or a full page holding it otherwise."""
    context = {"portal": portal, "dialog_template": template, **context}
    if request.htmx:
        return render(request, template, context, status=status)
    return render(request, "cssm_portal/dialog_page.html", context, status=status)


class _Line:
    """A file whose write() hands the line back, so csv.writer formats one row at a time."""

    def write(self, value: str) -> str:
        return value


def _csv(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    """Stream the export: memory stays bounded by the database chunk, whatever
    the row count (rows should come from values_list(...).iterator(chunk_size=...))."""
    writer = csv.writer(_Line())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            # Cells starting with = + - @ would be formulas in a spreadsheet.
            yield writer.writerow([("'" + c) if isinstance(c, str) and c[:1] in "=+-@" else c for c in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


CSV_CHUNK = 2000


def _render_table(request, template: str, context: dict, partial: str = "table"):
    if request.htmx and request.htmx.target and request.htmx.target.endswith("-table"):
        return render(request, f"{template}#{partial}", context)
    return render(request, template, context)


def _field_error(form, exc: ServiceError) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.reason)


def _quantities(post, prefix: str = "qty_") -> tuple[dict[str, int], dict[str, str]]:
    out, errors = {}, {}
    for key, value in post.items():
        if not key.startswith(prefix):
            continue
        tag = key[len(prefix) :]
        value = value.strip()
        if not value:
            continue
        try:
            out[tag] = int(value)
        except ValueError:
            errors[tag] = "Enter a whole number."
    return out, errors


# --- home, Smart Account chooser and creation -----------------------------------------------------


@require_GET
def home(request, lab_slug: str):
    lab = lab_for(request.user, lab_slug)
    accounts = list(
        {
            a.smart_account
            for a in AccountAccess.objects.filter(user=request.user, smart_account__lab=lab).select_related(
                "smart_account"
            )
        }
    )
    accounts.sort(key=lambda a: a.name)
    wanted = request.GET.get("sa", "")
    chosen = next((a for a in accounts if str(a.pk) == wanted), None)
    if chosen is None and len(accounts) == 1:
        chosen = accounts[0]
    if chosen is not None:
        return redirect("cssm:sa_home", lab.slug, chosen.pk)
    requests_ = SmartAccountRequest.objects.filter(lab=lab, requested_by=request.user)
    return render(
        request, "cssm_portal/chooser.html", {"lab": lab, "accounts": accounts, "account_requests": requests_}
    )


@require_http_methods(["GET", "POST"])
def sa_request(request, lab_slug: str):
    lab = lab_for(request.user, lab_slug)
    initial = {"domain": services.user_domain(request.user)}
    form = SmartAccountRequestForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            req = services.smart_account_request(lab=lab, user=request.user, now=lab_now(lab), **form.cleaned_data)
        except ServiceError as exc:
            _field_error(form, exc)
        else:
            if req.status == SmartAccountRequestStatus.PENDING_APPROVAL:
                messages.info(
                    request,
                    "Your request was submitted. Because the Account Domain Identifier was edited, it needs "
                    "approval before you receive the e-mail to complete the setup.",
                )
            else:
                messages.info(request, "An e-mail was sent to you to complete the Smart Account setup.")
            return redirect("cssm:sa_requests", lab.slug)
    return render(request, "cssm_portal/sa_request.html", {"lab": lab, "form": form})


@require_GET
def sa_requests(request, lab_slug: str):
    lab = lab_for(request.user, lab_slug)
    qs = SmartAccountRequest.objects.filter(lab=lab).select_related("requested_by")
    if not request.user.is_staff:
        qs = qs.filter(requested_by=request.user)
    return render(request, "cssm_portal/sa_requests.html", {"lab": lab, "account_requests": qs})


@require_POST
def sa_request_decide(request, lab_slug: str, req_id: int):
    lab = lab_for(request.user, lab_slug)
    req = get_object_or_404(SmartAccountRequest, lab=lab, pk=req_id)
    if not request.user.is_staff:
        return render(
            request,
            "cssm_portal/forbidden.html",
            {"reason": "Only Cisco (the lab owner) approves Smart Account requests."},
            status=403,
        )
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, "Choose Approve or Reject.")
        return redirect("cssm:sa_requests", lab.slug)
    try:
        services.smart_account_approve(
            req=req,
            approve=decision == "approve",
            actor=request.user.get_username(),
            now=lab_now(lab),
        )
    except ServiceError as exc:
        messages.error(request, exc.reason)
    else:
        messages.info(
            request, f'The request for "{req.name}" was {"approved" if decision == "approve" else "rejected"}.'
        )
    return redirect("cssm:sa_requests", lab.slug)


@require_POST
def sa_request_complete(request, lab_slug: str, req_id: int):
    lab = lab_for(request.user, lab_slug)
    req = get_object_or_404(SmartAccountRequest, lab=lab, pk=req_id, requested_by=request.user)
    try:
        sa = services.smart_account_complete(req=req, user=request.user, now=lab_now(lab))
    except ServiceError as exc:
        messages.error(request, exc.reason)
        return redirect("cssm:sa_requests", lab.slug)
    return redirect("cssm:sa_home", lab.slug, sa.pk)


@require_GET
@portal_view
def sa_home(request, portal):
    if not portal.virtual_accounts:
        raise Http404("No Virtual Account.")
    va = next((v for v in portal.virtual_accounts if v.is_default), portal.virtual_accounts[0])
    return redirect(_url("general", portal, va.pk))


# --- Inventory ---------------------------------------------------------------------------------


def _inventory(request, portal, va_id: int, tab: str) -> dict:
    va = portal.va(va_id)
    # The links of the Virtual Account bar and tabs (_inventory_head.html), each route reversed once.
    general, licenses, instances, events = _row_links(portal, [], "general", "licenses", "instances", "va_events")
    return {
        "portal": portal,
        "va": va,
        "tab": "inventory",
        "subtab": tab,
        "counts": selectors.va_alert_counts(va),
        "can_edit": portal.can_edit(va),
        "va_choices": [(general(v.pk), v.name, v.is_default) for v in portal.virtual_accounts],
        "va_links": {
            "general": general(va.pk),
            "licenses": licenses(va.pk),
            "instances": instances(va.pk),
            "events": events(va.pk),
            "alerts": _url("alerts", portal),
            "virtual_accounts": _url("virtual_accounts", portal),
        },
    }


@require_GET
@portal_view
def general(request, portal, va_id: int):
    ctx = _inventory(request, portal, va_id, "general")
    va = ctx["va"]
    t = selectors.table(
        request,
        selectors.token_rows(va),
        {
            "expires": ("expires_at",),
            "uses": ("uses",),
            "description": ("description",),
            "created_by": ("created_by",),
            "created": ("created_at",),
        },
        "created",
    )
    download, revoke = _row_links(portal, [va.pk], "token_download", "token_revoke")
    rows = []
    for tok in t.rows:
        revoked = tok.revoked_at is not None
        rows.append(
            {
                "pk": tok.pk,
                "value": tok.value,
                "display": codes.token_display(tok.value),
                "expiration": formats.cssm_expiration(tok.expires_at, now=portal.now),
                "uses": f"{tok.uses} of {tok.max_uses}" if tok.max_uses else "",
                "revoked": revoked,
                "inactive": revoked or tok.expires_at <= portal.now,
                "export": "Allowed" if tok.export_controlled else "Not Allowed",
                "description": tok.description,
                "created_by": tok.created_by,
                "download_url": download(tok.pk),
                "revoke_url": revoke(tok.pk),
            }
        )
    ctx.update({"t": t, "rows": rows})
    return _render_table(request, "cssm_portal/general.html", ctx)


@require_http_methods(["GET", "POST"])
@portal_view
def token_new(request, portal, va_id: int):
    va = portal.va(va_id)
    portal.require_edit(va)
    form = TokenForm(request.POST if request.method == "POST" else None)
    token = None
    if request.method == "POST" and form.is_valid():
        try:
            token = services.token_create(
                va=va,
                actor=request.user.get_username(),
                now=portal.now,
                **form.cleaned_data,
            )
        except ServiceError as exc:
            _field_error(form, exc)
    return _dialog(
        request,
        portal,
        "cssm_portal/dialogs/token_new.html",
        {"va": va, "form": form, "token": token, "close_url": _url("general", portal, va.pk)},
        status=200 if token or request.method == "GET" or form.is_valid() else 422,
    )


@require_GET
@portal_view
def token_download(request, portal, va_id: int, token_id: int):
    va = portal.va(va_id)
    token = get_object_or_404(RegistrationToken, virtual_account=va, pk=token_id)
    response = HttpResponse(codes.token_wrapped(token.value) + "\n", content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="token-{token.token_id}.txt"'
    return response


@require_POST
@portal_view
def token_revoke(request, portal, va_id: int, token_id: int):
    va = portal.va(va_id)
    portal.require_edit(va)
    token = get_object_or_404(RegistrationToken, virtual_account=va, pk=token_id)
    try:
        services.token_revoke(token=token, actor=request.user.get_username(), now=portal.now)
        messages.info(request, "The token was revoked. Product instances already registered with it are unaffected.")
    except ServiceError as exc:
        messages.error(request, exc.reason)
    return redirect(_url("general", portal, va.pk))


def _license_rows(pools, portal, va, alert_keys, *, can_edit: bool):
    transfer = _row_links(portal, [va.pk], "license_transfer")[0]
    rows = []
    for p in pools:
        lic_alerts = [
            (sev.lower(), sev)
            for key, sev in alert_keys.items()
            if key.split(":")[0] in ("insufficient", "expiring", "expired") and f":{p.tag}" in key
        ]
        rows.append(
            {
                "tag": p.tag,
                "name": p.name,
                "purchased": p.purchased,
                "in_use": p.in_use,
                "balance": p.balance,
                "billing": "Prepaid",
                "expiration": formats.cssm_term(p.end_date if p.license_type == "TERM" else None),
                "short": p.balance < 0,
                "alerts": lic_alerts,
                "sku": services.license_sku(p.tag),
                "transfer_url": transfer(p.pk) if can_edit and p.balance > 0 else "",
            }
        )
    return rows


# The alerts a licence row shows (_license_rows: keys "insufficient:", "expiring:", "expired:").
LICENSE_ALERT_TYPES = (
    CssmAlertType.INSUFFICIENT_LICENSES,
    CssmAlertType.LICENSES_EXPIRING,
    CssmAlertType.LICENSES_EXPIRED,
)
LICENSE_SORTS = {
    "license": ("name",),
    "purchased": ("purchased",),
    "in_use": ("in_use",),
    "balance": ("balance",),
    "billing": ("license_type",),
}


@require_GET
@portal_view
def licenses(request, portal, va_id: int):
    ctx = _inventory(request, portal, va_id, "licenses")
    va = ctx["va"]
    qs = selectors.pool_rows(va)
    if q := request.GET.get("q", "").strip():
        qs = qs.filter(name__icontains=q)
    t = selectors.table(request, qs, LICENSE_SORTS, "license")
    alert_keys = selectors.open_alert_keys(va, types=LICENSE_ALERT_TYPES)
    rows = _license_rows(t.rows, portal, va, alert_keys, can_edit=ctx["can_edit"])
    show_tx = request.GET.get("tx") == "1"
    tx_by_tag = defaultdict(list)
    if show_tx:
        for tx in selectors.transactions(portal.smart_account, [va]).filter(tag__in=[r["tag"] for r in rows]):
            tx_by_tag[tx.tag].append(tx)
        for r in rows:
            r["transactions"] = tx_by_tag[r["tag"]]
    ctx.update({"t": t, "rows": rows, "show_tx": show_tx})
    return _render_table(request, "cssm_portal/licenses.html", ctx)


@require_GET
@portal_view
def licenses_csv(request, portal, va_id: int):
    va = portal.va(va_id)
    pools = (
        selectors.pools([va])
        .order_by("name")
        .values_list("name", "tag", "purchased", "in_use", "balance", "end_date")
        .iterator(chunk_size=CSV_CHUNK)
    )
    return _csv(
        f"licenses-{va.name}.csv",
        ["License", "SKU", "Billing", "Purchased", "In Use", "Balance", "Expiration"],
        (
            [name, services.license_sku(tag), "Prepaid", purchased, in_use, balance, formats.cssm_term(end)]
            for name, tag, purchased, in_use, balance, end in pools
        ),
    )


@require_http_methods(["GET", "POST"])
@portal_view
def license_transfer(request, portal, va_id: int, pool_id: int):
    va = portal.va(va_id)
    portal.require_edit(va)
    pool = get_object_or_404(selectors.pools([va]), pk=pool_id)
    targets = [v for v in portal.virtual_accounts if v.pk != va.pk and portal.can_edit(v)]
    form = TransferForm(request.POST if request.method == "POST" else None, targets=targets)
    done = False
    if request.method == "POST" and form.is_valid():
        target = portal.va(form.cleaned_data["target"])
        try:
            services.license_transfer(
                source=va,
                target=target,
                tag=pool.tag,
                quantity=form.cleaned_data["quantity"],
                actor=request.user.get_username(),
                now=portal.now,
            )
            done = True
            messages.info(request, f"{form.cleaned_data['quantity']} {pool.name} transferred to {target.name}.")
        except ServiceError as exc:
            _field_error(form, exc)
    if done:
        return _redirect_or_hx(request, _url("licenses", portal, va.pk))
    return _dialog(
        request,
        portal,
        "cssm_portal/dialogs/license_transfer.html",
        {"va": va, "pool": pool, "form": form, "close_url": _url("licenses", portal, va.pk)},
    )


def _redirect_or_hx(request, url: str):
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _available_rows(va, product: str, now, held: dict[str, int] | None = None, chosen: dict | None = None):
    held = held or {}
    chosen = chosen or {}
    rows = []
    for p in selectors.pools([va]).order_by("name"):
        try:
            lic = catalogue.license_by_tag(p.tag)
        except KeyError:
            continue
        if lic.product != product:
            continue
        available = services.pool_effective(p, now) - p.in_use + held.get(p.tag, 0)
        rows.append(
            {
                "pool": p,
                "available": max(available, 0),
                "reserved": held.get(p.tag, 0),
                "value": chosen.get(p.tag, held.get(p.tag, "")),
                "expiration": formats.cssm_term(p.end_date),
            }
        )
    return rows


@require_http_methods(["GET", "POST"])
@portal_view
def reserve(request, portal, va_id: int):
    """Smart License Reservation wizard: Enter Request Code → Select Licenses →
    Review and Confirm → Authorization Code."""
    va = portal.va(va_id)
    portal.require_edit(va)
    close_url = _url("licenses", portal, va.pk)
    step = request.POST.get("step", "request") if request.method == "POST" else "request"
    ctx = {"va": va, "close_url": close_url, "step": "request"}
    form = RequestCodeForm(
        request.POST if request.method == "POST" else None, request.FILES if request.method == "POST" else None
    )
    ctx["form"] = form
    if request.method == "GET" or not form.is_valid():
        return _dialog(request, portal, "cssm_portal/dialogs/reserve.html", ctx)
    request_code = form.cleaned_data["request_code"]
    try:
        parsed, model = services.request_code_check(va=va, request_code=request_code)
    except ServiceError as exc:
        form.add_error("request_code", exc.reason)
        return _dialog(request, portal, "cssm_portal/dialogs/reserve.html", ctx)
    ctx.update({"parsed": parsed, "model": model, "request_code": parsed.code})
    rtype = request.POST.get("reservation_type", ReservationType.SPECIFIC)
    if rtype not in ReservationType.values:
        rtype = ReservationType.SPECIFIC
    quantities, qty_errors = _quantities(request.POST)
    ctx.update({"reservation_type": rtype, "qty_errors": qty_errors})
    ctx["rows"] = _available_rows(va, model.product, portal.now, chosen=quantities)
    if step == "request":
        ctx["step"] = "select"
        return _dialog(request, portal, "cssm_portal/dialogs/reserve.html", ctx)
    # Validate the selection for review and for generation alike.
    errors = dict(qty_errors)
    for row in ctx["rows"]:
        wanted = quantities.get(row["pool"].tag, 0)
        if wanted < 0:
            errors[row["pool"].tag] = "Enter 0 or more."
        elif rtype == ReservationType.SPECIFIC and wanted > row["available"]:
            errors[row["pool"].tag] = f"Only {row['available']} available."
    known = {r["pool"].tag for r in ctx["rows"]}
    quantities = {t: c for t, c in quantities.items() if t in known and c > 0}
    if rtype == ReservationType.SPECIFIC and not quantities and not errors:
        ctx["select_error"] = "Enter a quantity to reserve for at least one license."
    if errors or ctx.get("select_error"):
        ctx.update({"step": "select", "qty_errors": errors})
        return _dialog(request, portal, "cssm_portal/dialogs/reserve.html", ctx)
    ctx["chosen"] = [{"row": r, "count": quantities[r["pool"].tag]} for r in ctx["rows"] if r["pool"].tag in quantities]
    ctx["quantities"] = quantities
    if step == "select":
        ctx["step"] = "review"
        return _dialog(request, portal, "cssm_portal/dialogs/reserve.html", ctx)
    try:
        reservation = services.reservation_authorize(
            va=va,
            request_code=parsed.code,
            reservation_type=rtype,
            quantities=quantities if rtype == ReservationType.SPECIFIC else {},
            actor=request.user.get_username(),
            now=portal.now,
        )
    except ServiceError as exc:
        ctx.update({"step": "select", "select_error": exc.reason})
        return _dialog(request, portal, "cssm_portal/dialogs/reserve.html", ctx)
    ctx.update({"step": "code", "reservation": reservation, "instance": reservation.instance})
    return _dialog(request, portal, "cssm_portal/dialogs/reserve.html", ctx)


INSTANCE_SORTS = {"name": ("name",), "product": ("pid",), "last_contact": ("last_contact",)}


def _instance_alerts(*, out_of_compliance: bool, reserving: bool, pending: bool, last_contact, now):
    """(severity, label) of the alerts a Product Instances row shows."""
    out = []
    if out_of_compliance:
        out.append(("Major", "Insufficient Licenses"))
    if reserving:
        if pending:
            out.append(("Minor", "Authorization Pending"))
        return out
    status = schedules.instance_connect_status(last_contact, now=now)
    if status == "failed_to_renew":
        out.append(("Major", "Failed to Renew"))
    elif status == "failed_to_connect":
        out.append(("Minor", "Failed to Connect"))
    return out


@require_GET
@portal_view
def instances(request, portal, va_id: int):
    ctx = _inventory(request, portal, va_id, "instances")
    va = ctx["va"]
    qs = selectors.instance_rows(va)
    if q := request.GET.get("q", "").strip():
        qs = qs.filter(name__icontains=q)
    t = selectors.table(request, qs, INSTANCE_SORTS, "name", columns=selectors.INSTANCE_ROW_COLUMNS)
    link, transfer, remove, update, confirm = _row_links(
        portal, [va.pk], "instance", "instance_transfer", "instance_remove", "instance_update", "instance_confirm"
    )
    rows = []
    # Flat dicts of display values: the template looks each up once, with no model attribute chains.
    for r in t.rows:
        reserving = r.reservation__id is not None
        pending = reserving and bool(r.reservation__pending_authorization_code)
        specific = reserving and r.reservation__reservation_type == ReservationType.SPECIFIC
        alerts = _instance_alerts(
            out_of_compliance=r.out_of_compliance,
            reserving=reserving,
            pending=pending,
            last_contact=r.last_contact,
            now=portal.now,
        )
        rows.append(
            {
                "name": r.name,
                "pid": r.pid,
                "product_type": r.product,
                "last_contact": formats.cssm_datetime(r.last_contact),
                "reserving": reserving,
                "specific": specific,
                "pending": pending,
                "alerts": [(sev.lower(), label) for sev, label in alerts],
                "url": link(r.piid),
                "transfer_url": transfer(r.piid),
                "remove_url": remove(r.piid),
                "update_url": update(r.piid) if specific else "",
                "confirm_url": confirm(r.piid) if specific and pending else "",
            }
        )
    ctx.update({"t": t, "rows": rows})
    return _render_table(request, "cssm_portal/instances.html", ctx)


def _instance(portal, va, piid) -> ProductInstance:
    inst = (
        ProductInstance.objects.select_related("virtual_account", "reservation")
        .filter(virtual_account=va, piid=piid)
        .first()
    )
    if inst is None:
        raise Http404("No such product instance.")
    return inst


@require_GET
@portal_view
def instance_detail(request, portal, va_id: int, piid):
    va = portal.va(va_id)
    inst = _instance(portal, va, piid)
    usage = list(inst.usage.all())
    for u in usage:
        u.name = services.license_name(u.tag)
    events = list(selectors.events(lab=portal.lab, instance_id=inst.pk)[:50])
    return _dialog(
        request,
        portal,
        "cssm_portal/dialogs/instance.html",
        {
            "va": va,
            "inst": inst,
            "usage": usage,
            "events": events,
            "tab": request.GET.get("tab", "overview"),
            "close_url": _url("instances", portal, va.pk),
            "can_edit": portal.can_edit(va),
        },
    )


@require_http_methods(["GET", "POST"])
@portal_view
def instance_transfer(request, portal, va_id: int, piid):
    va = portal.va(va_id)
    portal.require_edit(va)
    inst = _instance(portal, va, piid)
    targets = [v for v in portal.virtual_accounts if v.pk != va.pk and portal.can_edit(v)]
    form = TransferForm(request.POST if request.method == "POST" else None, targets=targets, with_quantity=False)
    if request.method == "POST" and form.is_valid():
        target = portal.va(form.cleaned_data["target"])
        try:
            services.instance_transfer(instance=inst, target=target, actor=request.user.get_username(), now=portal.now)
            messages.info(request, f'"{inst.name}" was transferred to {target.name}.')
            return _redirect_or_hx(request, _url("instances", portal, va.pk))
        except ServiceError as exc:
            _field_error(form, exc)
    return _dialog(
        request,
        portal,
        "cssm_portal/dialogs/instance_transfer.html",
        {"va": va, "inst": inst, "form": form, "close_url": _url("instances", portal, va.pk)},
    )


@require_http_methods(["GET", "POST"])
@portal_view
def instance_remove(request, portal, va_id: int, piid):
    va = portal.va(va_id)
    portal.require_edit(va)
    inst = _instance(portal, va, piid)
    form = RemoveForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.instance_remove(
                instance=inst,
                actor=request.user.get_username(),
                now=portal.now,
                return_code=form.cleaned_data["return_code"],
            )
            messages.info(request, f'Product instance "{inst.name}" was removed; its licenses returned to {va.name}.')
            return _redirect_or_hx(request, _url("instances", portal, va.pk))
        except ServiceError as exc:
            _field_error(form, exc)
    return _dialog(
        request,
        portal,
        "cssm_portal/dialogs/instance_remove.html",
        {"va": va, "inst": inst, "form": form, "close_url": _url("instances", portal, va.pk)},
    )


@require_http_methods(["GET", "POST"])
@portal_view
def instance_update(request, portal, va_id: int, piid):
    """Update Reserved Licenses: Select Licenses → Review and Confirm → Authorization Code."""
    va = portal.va(va_id)
    portal.require_edit(va)
    inst = _instance(portal, va, piid)
    if not inst.is_reserving or inst.reservation.reservation_type != ReservationType.SPECIFIC:
        raise Http404("This product instance has no specific license reservation.")
    held = {u.tag: u.count for u in inst.usage.all()}
    quantities, qty_errors = _quantities(request.POST)
    step = request.POST.get("step", "select") if request.method == "POST" else "start"
    rows = _available_rows(va, inst.product, portal.now, held=held, chosen=quantities)
    ctx = {
        "va": va,
        "inst": inst,
        "rows": rows,
        "qty_errors": qty_errors,
        "close_url": _url("instances", portal, va.pk),
        "step": "select",
    }
    if step == "start":
        return _dialog(request, portal, "cssm_portal/dialogs/instance_update.html", ctx)
    errors = dict(qty_errors)
    for row in rows:
        wanted = quantities.get(row["pool"].tag, 0)
        if wanted < 0:
            errors[row["pool"].tag] = "Enter 0 or more."
        elif wanted > row["available"]:
            errors[row["pool"].tag] = f"Only {row['available']} available."
    known = {r["pool"].tag for r in rows}
    chosen = {t: c for t, c in quantities.items() if t in known and c > 0}
    if not chosen and not errors:
        ctx["select_error"] = "Reserve at least one license, or remove the product instance."
    if errors or ctx.get("select_error"):
        ctx["qty_errors"] = errors
        return _dialog(request, portal, "cssm_portal/dialogs/instance_update.html", ctx)
    ctx["chosen"] = [
        {"row": r, "count": chosen.get(r["pool"].tag, 0)} for r in rows if r["pool"].tag in chosen or r["reserved"]
    ]
    if step == "select":
        ctx["step"] = "review"
        return _dialog(request, portal, "cssm_portal/dialogs/instance_update.html", ctx)
    try:
        reservation = services.reservation_update(
            instance=inst, quantities=chosen, actor=request.user.get_username(), now=portal.now
        )
    except ServiceError as exc:
        ctx["select_error"] = exc.reason
        return _dialog(request, portal, "cssm_portal/dialogs/instance_update.html", ctx)
    ctx.update({"step": "code", "reservation": reservation})
    return _dialog(request, portal, "cssm_portal/dialogs/instance_update.html", ctx)


@require_http_methods(["GET", "POST"])
@portal_view
def instance_confirm(request, portal, va_id: int, piid):
    va = portal.va(va_id)
    portal.require_edit(va)
    inst = _instance(portal, va, piid)
    form = ConfirmationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.reservation_confirm(
                instance=inst,
                confirmation_code=form.cleaned_data["confirmation_code"],
                actor=request.user.get_username(),
                now=portal.now,
            )
            messages.info(request, f'The reservation update of "{inst.name}" is complete.')
            return _redirect_or_hx(request, _url("instances", portal, va.pk))
        except ServiceError as exc:
            _field_error(form, exc)
    nothing_pending = not (inst.is_reserving and inst.reservation.pending)
    return _dialog(
        request,
        portal,
        "cssm_portal/dialogs/instance_confirm.html",
        {"va": va, "inst": inst, "form": form, "close_url": _url("instances", portal, va.pk)},
        # A code posted when no update waits for one is refused (the dialog says why).
        status=409 if request.method == "POST" and nothing_pending else 200,
    )


@require_POST
@portal_view
def instance_cancel_update(request, portal, va_id: int, piid):
    va = portal.va(va_id)
    portal.require_edit(va)
    inst = _instance(portal, va, piid)
    try:
        services.reservation_cancel_update(instance=inst, actor=request.user.get_username(), now=portal.now)
        messages.info(request, "The reservation update was canceled.")
    except ServiceError as exc:
        messages.error(request, exc.reason)
    return redirect(_url("instances", portal, va.pk))


@require_GET
@portal_view
def authorization_code_download(request, portal, va_id: int, piid):
    va = portal.va(va_id)
    inst = _instance(portal, va, piid)
    if not inst.is_reserving:
        raise Http404("No reservation.")
    r = inst.reservation
    code = r.pending_authorization_code or r.authorization_code
    response = HttpResponse(code + "\n", content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="AuthorizationCode_SN_{inst.serial}.txt"'
    return response


EVENT_SORTS = {"time": ("at",), "message": ("message",), "user": ("actor",)}


@require_GET
@portal_view
def va_events(request, portal, va_id: int):
    ctx = _inventory(request, portal, va_id, "events")
    va = ctx["va"]
    qs = selectors.events(lab=portal.lab, va=va, q=request.GET.get("q", "").strip())
    t = selectors.table(request, qs, EVENT_SORTS, "time", default_dir="desc")
    ctx.update({"t": t})
    return _render_table(request, "cssm_portal/va_events.html", ctx)


@require_GET
@portal_view
def va_events_csv(request, portal, va_id: int):
    va = portal.va(va_id)
    qs = selectors.events(lab=portal.lab, va=va, q=request.GET.get("q", "").strip()).order_by("-at", "-id")
    return _csv(f"events-{va.name}.csv", ["Message", "Time", "User"], _event_rows(qs))


def _event_rows(qs):
    rows = qs.values_list("message", "at", "actor").iterator(chunk_size=CSV_CHUNK)
    return ([message, formats.cssm_datetime(at), actor] for message, at, actor in rows)


# --- Virtual Accounts (Smart Account Administrator) ----------------------------------------------


@require_http_methods(["GET", "POST"])
@portal_view
def virtual_accounts(request, portal):
    form = VirtualAccountForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        portal.require_sa_admin()
        if form.is_valid():
            try:
                va = services.virtual_account_create(
                    smart_account=portal.smart_account,
                    actor=request.user.get_username(),
                    now=portal.now,
                    **form.cleaned_data,
                )
                messages.info(request, f'Virtual Account "{va.name}" was created.')
                return redirect(_url("virtual_accounts", portal))
            except ServiceError as exc:
                _field_error(form, exc)
    return render(
        request,
        "cssm_portal/virtual_accounts.html",
        {"portal": portal, "form": form, "tab": "inventory"},
    )


@require_POST
@portal_view
def virtual_account_edit(request, portal, va_id: int):
    portal.require_sa_admin()
    va = portal.va(va_id)
    form = VirtualAccountForm(request.POST)
    if form.is_valid():
        try:
            services.virtual_account_rename(
                va=va, actor=request.user.get_username(), now=portal.now, **form.cleaned_data
            )
            messages.info(request, "The Virtual Account was saved.")
        except ServiceError as exc:
            messages.error(request, exc.reason)
    else:
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
    return redirect(_url("virtual_accounts", portal))


@require_POST
@portal_view
def virtual_account_default(request, portal, va_id: int):
    portal.require_sa_admin()
    va = portal.va(va_id)
    try:
        services.virtual_account_set_default(va=va, actor=request.user.get_username(), now=portal.now)
        messages.info(request, f'"{va.name}" is now the default Virtual Account.')
    except ServiceError as exc:
        messages.error(request, exc.reason)
    return redirect(_url("virtual_accounts", portal))


# --- Alerts ---------------------------------------------------------------------------------


ALERT_SORTS = {
    "sev": ("sev_rank",),
    "type": ("alert_type",),
    "date": ("raised_at",),
    "message": ("message",),
}


@require_GET
@portal_view
def alerts(request, portal):
    # No refresh here: the rules run where the facts change (exchanges,
    # transfers, reservations) and in the lab sweep for time-driven ones, so a
    # page view neither writes nor scans the whole account.
    qs = selectors.alert_rows(portal.smart_account, portal.virtual_accounts, q=request.GET.get("q", "").strip())
    t = selectors.table(request, qs, ALERT_SORTS, "sev")
    # An alert's Virtual Account is one of the portal's (selectors.alerts): its name and link come from there.
    licenses = _row_links(portal, [], "licenses")[0]
    vas = {va.pk: {"name": va.name, "url": licenses(va.pk)} for va in portal.virtual_accounts}
    rows = [
        {
            "pk": a.pk,
            "severity": a.severity,
            "sev_class": a.severity.lower(),
            "alert_type": a.alert_type,
            "date": formats.cssm_date(a.raised_at),
            "message": a.message,
            "va": vas.get(a.virtual_account_id),
        }
        for a in t.rows
    ]
    return _render_table(request, "cssm_portal/alerts.html", {"portal": portal, "tab": "alerts", "t": t, "rows": rows})


@require_POST
@portal_view
def alerts_action(request, portal):
    # Ids are whole numbers that fit a database integer; anything else names no alert.
    ids = [int(i) for i in request.POST.getlist("alert") if i.isascii() and i.isdigit() and len(i) <= 18]
    qs = selectors.alerts(portal.smart_account, portal.virtual_accounts)
    action = request.POST.get("action")
    if action == "csv":
        rows = (
            (qs.filter(pk__in=ids) if ids else qs)
            .order_by("sev_rank", "-raised_at")
            .values_list("severity", "alert_type", "raised_at", "message", "virtual_account__name")
            .iterator(chunk_size=CSV_CHUNK)
        )
        return _csv(
            "alerts.csv",
            ["Sev", "Alert Type", "Alert Date", "Message", "Virtual Account"],
            (
                [severity, alert_type, formats.cssm_date(raised_at), message, va_name or ""]
                for severity, alert_type, raised_at, message, va_name in rows
            ),
        )
    if action == "dismiss":
        portal.require_any_edit()
        if not ids:
            messages.error(request, "Select the alerts to dismiss.")
        else:
            n = services.alert_dismiss(
                alerts=qs.filter(pk__in=ids).filter(dismissable(portal)),
                actor=request.user.get_username(),
                now=portal.now,
            )
            messages.info(request, f"{n} alert(s) dismissed.")
    else:
        messages.error(request, "Choose an action.")
    return redirect(_url("alerts", portal))


# --- Reports --------------------------------------------------------------------------------


@require_GET
@portal_view
def reports(request, portal):
    report = request.GET.get("report", "")
    chosen_ids = {int(i) for i in request.GET.getlist("va") if i.isascii() and i.isdigit() and len(i) <= 18}
    vas = [va for va in portal.virtual_accounts if va.pk in chosen_ids] or portal.virtual_accounts
    ctx = {"portal": portal, "tab": "reports", "report": report, "vas": vas, "chosen_ids": chosen_ids}
    # The rows' Virtual Accounts are among `vas`: names from there, not a join per table.
    va_names = {va.pk: va.name for va in vas}
    fmt = request.GET.get("format")
    if report == "licenses":
        qs = selectors.pools(vas)
        if fmt == "csv":
            rows = (
                qs.order_by("virtual_account__name", "name")
                .values_list("virtual_account__name", "name", "tag", "purchased", "in_use", "balance", "end_date")
                .iterator(chunk_size=CSV_CHUNK)
            )
            return _csv(
                "licenses-report.csv",
                ["Virtual Account", "License", "SKU", "Billing", "Purchased", "In Use", "Balance", "Expiration"],
                (
                    [va_name, name, services.license_sku(tag), "Prepaid", bought, used, balance, formats.cssm_term(end)]
                    for va_name, name, tag, bought, used, balance, end in rows
                ),
            )
        fields = ("virtual_account_id", "name", "purchased", "in_use", "balance")
        ctx["t"] = t = selectors.table(
            request,
            qs.values_list(*fields, named=True),
            {**LICENSE_SORTS, "va": ("virtual_account__name",)},
            "license",
        )
        ctx["rows"] = [
            {
                "va_name": va_names[p.virtual_account_id],
                "name": p.name,
                "purchased": p.purchased,
                "in_use": p.in_use,
                "balance": p.balance,
                "short": p.balance < 0,
            }
            for p in t.rows
        ]
        ctx["chart"] = charts.usage_chart(lab=portal.lab, vas=vas, now=portal.now, tag=request.GET.get("tag") or None)
    elif report == "instances":
        if fmt == "csv":
            rows = (
                selectors.instances(vas)
                .order_by("name")
                .values_list("name", "product", "udi", "virtual_account__name", "last_contact", "licenses_in_use")
                .iterator(chunk_size=CSV_CHUNK)
            )
            return _csv(
                "product-instances-report.csv",
                ["Name", "Product Type", "UDI", "Virtual Account", "Last Contact", "Licenses In Use"],
                (
                    [name, product, udi, va_name, formats.cssm_datetime(contact), in_use]
                    for name, product, udi, va_name, contact, in_use in rows
                ),
            )
        ctx["t"] = t = selectors.table(
            request, selectors.instance_report_rows(vas), {**INSTANCE_SORTS, "va": ("virtual_account__name",)}, "name"
        )
        ctx["rows"] = [
            {
                "name": i.name,
                "product": i.product,
                "pid": i.pid,
                "va_name": va_names[i.virtual_account_id],
                "last_contact": formats.cssm_datetime(i.last_contact),
                "licenses_in_use": i.licenses_in_use,
            }
            for i in t.rows
        ]
    return _render_table(request, "cssm_portal/reports.html", ctx)


# --- Preferences ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@portal_view
def preferences(request, portal):
    pref = NotificationPreference.objects.filter(user=request.user, smart_account=portal.smart_account).first()
    initial = {"email": request.user.email, "expiring_days": [90]}
    if pref is not None:
        initial = {
            "daily_summary": pref.daily_summary,
            "email": pref.email,
            "virtual_accounts": list(pref.virtual_accounts.values_list("pk", flat=True)),
            "alert_events": pref.alert_events,
            "expiring_days": pref.expiring_days,
            "status_notification": pref.status_notification,
        }
    if request.method == "POST" and request.POST.get("reset"):
        return redirect(_url("preferences", portal))
    form = PreferencesForm(
        request.POST if request.method == "POST" else None, initial=initial, vas=portal.virtual_accounts
    )
    if request.method == "POST":
        portal.require_any_edit()
        if form.is_valid():
            data = dict(form.cleaned_data)
            ids = set(data.pop("virtual_accounts"))
            chosen = [va for va in portal.virtual_accounts if va.pk in ids]
            try:
                services.preferences_save(
                    user=request.user,
                    smart_account=portal.smart_account,
                    virtual_accounts=chosen,
                    now=portal.now,
                    **data,
                )
                messages.info(request, "Your notification preferences were saved.")
                return redirect(_url("preferences", portal))
            except ServiceError as exc:
                _field_error(form, exc)
    return render(
        request,
        "cssm_portal/preferences.html",
        {"portal": portal, "tab": "preferences", "form": form},
        status=422 if form.errors else 200,
    )


# --- Activity ----------------------------------------------------------------------------------

TX_SORTS = {
    "date": ("at",),
    "sku": ("sku",),
    "license": ("license_name",),
    "quantity": ("quantity",),
    "va": ("virtual_account__name",),
    "source": ("source",),
}


def _tx_rows(rows):
    return [
        {"tx": tx, "expiration": formats.cssm_term(tx.end_date if tx.license_type == "TERM" else None)} for tx in rows
    ]


@require_GET
@portal_view
def activity(request, portal):
    qs = selectors.transactions(portal.smart_account, portal.virtual_accounts)
    if q := request.GET.get("q", "").strip():
        qs = qs.filter(license_name__icontains=q)
    if request.GET.get("format") == "csv":
        return _csv(
            "license-transactions.csv",
            [
                "Transaction Date",
                "License SKU",
                "License",
                "Quantity",
                "License Expiration",
                "Virtual Account",
                "Source",
            ],
            (
                [formats.cssm_datetime(at), sku, name, quantity, formats.cssm_term(end), va_name, source]
                for at, sku, name, quantity, end, va_name, source in qs.order_by("-at", "-id")
                .values_list("at", "sku", "license_name", "quantity", "end_date", "virtual_account__name", "source")
                .iterator(chunk_size=CSV_CHUNK)
            ),
        )
    t = selectors.table(request, qs, TX_SORTS, "date", default_dir="desc")
    return _render_table(
        request,
        "cssm_portal/activity.html",
        {"portal": portal, "tab": "activity", "subtab": "transactions", "t": t, "rows": _tx_rows(t.rows)},
    )


@require_GET
@portal_view
def activity_events(request, portal):
    qs = selectors.events(lab=portal.lab, sa=portal.smart_account, q=request.GET.get("q", "").strip())
    if portal.sa_role is None:
        qs = qs.filter(virtual_account_id__in=[va.pk for va in portal.virtual_accounts])
    if request.GET.get("format") == "csv":
        return _csv("smart-account-events.csv", ["Message", "Time", "User"], _event_rows(qs.order_by("-at", "-id")))
    t = selectors.table(request, qs, EVENT_SORTS, "time", default_dir="desc")
    return _render_table(
        request,
        "cssm_portal/activity_events.html",
        {"portal": portal, "tab": "activity", "subtab": "events", "t": t},
    )


# --- Convert to Smart Licensing, On-Prem ----------------------------------------------------------


@require_http_methods(["GET", "POST"])
@portal_view
def convert(request, portal):
    editable = [va for va in portal.virtual_accounts if portal.can_edit(va)]
    form = PakForm(
        request.POST if request.method == "POST" else None,
        vas=editable,
        licenses=catalogue.ESA_LICENSES + catalogue.SMA_LICENSES,
    )
    if request.method == "POST":
        portal.require_any_edit()
        if form.is_valid():
            va = portal.va(form.cleaned_data["target"])
            try:
                services.pak_convert(
                    va=va,
                    pak=form.cleaned_data["pak"],
                    tag=form.cleaned_data["license_tag"],
                    quantity=form.cleaned_data["quantity"],
                    actor=request.user.get_username(),
                    now=portal.now,
                )
                messages.info(request, "The PAK was converted to Smart Licenses.")
                return redirect(_url("convert", portal))
            except ServiceError as exc:
                _field_error(form, exc)
    qs = selectors.transactions(
        portal.smart_account, portal.virtual_accounts, sources=[TransactionSource.DLC, TransactionSource.PAK]
    )
    t = selectors.table(request, qs, TX_SORTS, "date", default_dir="desc")
    return _render_table(
        request,
        "cssm_portal/convert.html",
        {
            "portal": portal,
            "tab": "convert",
            "form": form,
            "t": t,
            "rows": _tx_rows(t.rows),
            "can_edit": bool(editable),
        },
    )


@require_GET
@portal_view
def on_prem(request, portal):
    qs = SatelliteInstance.objects.filter(smart_account=portal.smart_account).prefetch_related("virtual_accounts")
    t = selectors.table(request, qs, {"name": ("name",), "last_sync": ("last_sync",)}, "name")
    rows = []
    for sat in t.rows:
        deadline = sat.last_sync + timedelta(days=90) if sat.last_sync else None
        rows.append(
            {
                "sat": sat,
                "last_sync": formats.cssm_datetime(sat.last_sync) if sat.last_sync else "Never",
                "sync_due": formats.cssm_expiration(sat.last_sync + timedelta(days=30), now=portal.now)
                if sat.last_sync
                else "",
                "deadline": formats.cssm_expiration(deadline, now=portal.now) if deadline else "",
            }
        )
    return _render_table(request, "cssm_portal/on_prem.html", {"portal": portal, "tab": "onprem", "t": t, "rows": rows})
