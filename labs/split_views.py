"""Side by side: an appliance's Smart Software Licensing status next to the portal's view of
the same product instance, with the recent exchanges grouped by request id.

The appliance side is the gateway's own status partial rendered with its own context
builder (read-only: actions are done on the appliance's pages, linked from here); the portal
side uses cssm_portal's selectors. A request id (?rid=, else the latest one) highlights the
rows of both sides it wrote. CSP forbids framing, so nothing is in an iframe."""

from __future__ import annotations

import uuid

from django.http import Http404
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET

from cssm_portal import selectors as cssm_selectors
from cssm_portal.access import portal_for
from cssm_portal.models import ProductInstance
from gateway_ui import services as gw_services
from gateway_ui.permissions import RoleRefused, role_require
from gateway_ui.selectors import appliance_for_user
from labs.selectors import lab_for_user, split_rows
from licensing_core.models import EventSide
from licensing_core.roles import GatewayRole

REFRESH_SECONDS = 3


def _rid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


def _appliance_panel(request, appliance, role: str) -> dict:
    from gateway_ui.views import _ctx, _status_context  # the gateway page's own context builder

    try:
        role_require(role, "view")
    except RoleRefused as exc:
        return {"refused": exc.reason}
    request.gateway_role = role
    # Read-only: the split view shows; actions are done on the appliance's own pages.
    ctx = _ctx(request, appliance, _status_context(appliance, GatewayRole.READ_ONLY_OPERATOR))
    exchange_label, ctx["busy"] = ctx["exchange_label"], False  # this page refreshes itself instead
    return {
        "status_html": render_to_string("gateway_ui/smart_licensing.html#status", ctx, request=request),
        "licenses": [r for r in gw_services.license_row_display(appliance) if r["requested"]],
        "alerts": list(appliance.alerts.order_by("-at", "-id")[:10]),
        "exchange_label": exchange_label,
        "now": ctx["now_display"],
    }


def _portal_panel(request, lab, appliance) -> dict:
    instance = (
        ProductInstance.objects.filter(lab=lab, udi=appliance.udi).select_related("virtual_account__smart_account")
    ).first()
    if instance is None:
        return {"instance": None}
    va = instance.virtual_account
    try:
        portal = portal_for(request.user, lab.slug, va.smart_account_id)
        portal.va(va.pk)
    except Http404:
        return {"instance": instance, "refused": "Your portal role does not include this virtual account."}
    annotated = cssm_selectors.instances([va]).filter(pk=instance.pk).first()
    usage = list(instance.usage.all())
    for u in usage:
        u.name = cssm_services_name(u.tag)
    return {
        "instance": annotated,
        "va": va,
        "usage": usage,
        "alerts": list(cssm_selectors.alerts(va.smart_account, [va]).order_by("sev_rank", "-raised_at")[:10]),
        "url": reverse("cssm:instance", args=[lab.slug, va.smart_account_id, va.pk, instance.piid]),
        "alerts_url": reverse("cssm:alerts", args=[lab.slug, va.smart_account_id]),
    }


def cssm_services_name(tag: str) -> str:
    from cssm_portal.services import license_name

    return license_name(tag)


def _highlight(groups: list[dict], rid, gateway: dict, portal: dict) -> None:
    """Mark the rows, and the alerts raised by them, of request `rid`."""
    if rid is None:
        return
    group = next((g for g in groups if g["request_id"] == rid), None)
    if group is None:
        return
    group["current"] = True
    for alert in gateway.get("alerts", []):
        alert.current = alert.request_id is not None and str(alert.request_id) == str(rid)
    raised = {(e.at, e.message) for e in group["cssm"] if e.kind == "cssm.alert.raised"}
    for alert in portal.get("alerts", []):
        alert.current = (alert.raised_at, f"{alert.alert_type}: {alert.message}") in raised


@require_GET
def split(request, slug: str, hostname: str):
    lab, _ = lab_for_user(user=request.user, slug=slug)
    appliance, role = appliance_for_user(user=request.user, lab_slug=slug, hostname=hostname)
    gateway = _appliance_panel(request, appliance, role)
    portal = _portal_panel(request, lab, appliance)
    instance = portal.get("instance") if not portal.get("refused") else None
    groups = split_rows(lab=lab, appliance=appliance, instance=instance)
    rid = _rid(request.GET.get("rid", ""))
    if rid is None:
        rid = next((g["request_id"] for g in groups if g["request_id"]), None)
    _highlight(groups, rid, gateway, portal)
    context = {
        "lab": lab,
        "appliance": appliance,
        "gateway": gateway,
        "portal": portal,
        "groups": groups,
        "rid": rid,
        "pending": bool(appliance.exchange),
        "refresh": REFRESH_SECONDS,
        "sides": EventSide,
        "gateway_urls": {
            "Smart Software Licensing": reverse("gateway:smart_licensing", args=[lab.slug, appliance.hostname]),
            "Licenses": reverse("gateway:licenses", args=[lab.slug, appliance.hostname]),
            "Alerts": reverse("gateway:alerts", args=[lab.slug, appliance.hostname]),
        },
    }
    template = "labs/split.html#panels" if request.htmx else "labs/split.html"
    return render(request, template, context)
