"""Named pages of a lab, for scenario documentation, tests and the split view.

Page keys: "sl:<host>", "licenses:<host>", "alerts:<host>" (an appliance's
Smart Software Licensing, Licenses and Alerts pages), "portal:instances",
"portal:licenses", "portal:general" (the ESA virtual account's tabs),
"portal:instance:<host>", "portal:alerts", "timeline" (the lab page),
"mailbox".
"""

from __future__ import annotations

from django.urls import reverse

from cssm_portal.models import ProductInstance, SmartAccount, VirtualAccount
from gateway_ui.models import Appliance
from licensing_core.models import Lab

APPLIANCE_PAGES = {"sl": "gateway:smart_licensing", "licenses": "gateway:licenses", "alerts": "gateway:alerts"}
PORTAL_VA_PAGES = {"instances": "cssm:instances", "licenses": "cssm:licenses", "general": "cssm:general"}


class UnknownPage(LookupError):
    pass


def page_url(*, lab: Lab, key: str) -> str:
    kind, _, rest = key.partition(":")
    if kind in APPLIANCE_PAGES:
        return reverse(APPLIANCE_PAGES[kind], args=[lab.slug, rest])
    if kind == "timeline":
        return reverse("labs:detail", args=[lab.slug])
    if kind == "mailbox":
        return reverse("labs:mailbox", args=[lab.slug])
    if kind == "portal":
        sub, _, host = rest.partition(":")
        va = _esa_va(lab, host)
        if sub in PORTAL_VA_PAGES:
            return reverse(PORTAL_VA_PAGES[sub], args=[lab.slug, va.smart_account_id, va.pk])
        if sub == "alerts":
            return reverse("cssm:alerts", args=[lab.slug, va.smart_account_id])
        if sub == "instance":
            appliance = Appliance.objects.get(lab=lab, hostname=host)
            instance = ProductInstance.objects.get(lab=lab, udi=appliance.udi)
            return reverse(
                "cssm:instance",
                args=[lab.slug, instance.virtual_account.smart_account_id, instance.virtual_account_id, instance.piid],
            )
    raise UnknownPage(f"Unknown page {key!r}.")


def _esa_va(lab: Lab, host: str) -> VirtualAccount:
    if host:
        appliance = Appliance.objects.filter(lab=lab, hostname=host).first()
        instance = appliance and ProductInstance.objects.filter(lab=lab, udi=appliance.udi).first()
        if instance:
            return instance.virtual_account
    account = SmartAccount.objects.filter(lab=lab).order_by("pk").first()
    if account is None:
        raise UnknownPage("This lab has no Smart Account.")
    va = VirtualAccount.objects.filter(smart_account=account, name="ESA").first()
    return va or VirtualAccount.objects.filter(smart_account=account).order_by("-is_default", "name").first()
