"""Two labs with real objects for every URL kwarg: the demo lab, and a second lab
("other") with its own Smart Account, appliance and owner ("outsider").

`urls()` walks the URL resolver for the cssm, gateway and labs namespaces, so a
new view is in every table-driven test the day it is added."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from cssm_portal import services as cssm_services
from cssm_portal.models import (
    AccountAccess,
    CssmRole,
    LicensePool,
    SatelliteInstance,
    SmartAccount,
    SmartAccountRequest,
    SmartAccountRequestStatus,
    VirtualAccount,
)
from gateway_ui import services as gateway_services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, TransportMode
from licensing_core import catalogue, codes
from licensing_core.clock import lab_now
from licensing_core.models import Lab, LabMembership
from licensing_core.roles import GatewayRole

NAMESPACES = ("cssm", "gateway", "labs")


@dataclass(frozen=True)
class Route:
    namespace: str
    name: str
    params: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return f"{self.namespace}:{self.name}"

    def url(self, values: dict) -> str:
        return reverse(self.full_name, kwargs={p: values[p] for p in self.params})


def urls() -> list[Route]:
    routes = []
    for top in get_resolver().url_patterns:
        if not isinstance(top, URLResolver) or top.namespace not in NAMESPACES:
            continue
        for entry in top.url_patterns:
            assert isinstance(entry, URLPattern), f"nested include in {top.namespace}: extend tests/access/world.py"
            params = tuple(entry.pattern.converters)
            routes.append(Route(top.namespace, entry.name, params))
    return routes


def _reserved_instance(va: VirtualAccount, serial: str, now):
    SmartAccount.objects.filter(pk=va.smart_account_id).update(reservation_allowed=True)
    va.smart_account.refresh_from_db()
    tag = next(lic.entitlement_tag for lic in catalogue.ESA_LICENSES if lic.code == "imh")
    LicensePool.objects.get_or_create(virtual_account=va, tag=tag, defaults={"purchased": 5})
    reservation = cssm_services.reservation_authorize(
        va=va,
        request_code=codes.request_code_generate(pid="C395", serial=serial),
        reservation_type="SPECIFIC",
        quantities={tag: 1},
        actor="seed",
        now=now,
    )
    return reservation.instance


def values_for(lab: Lab, *, va_name: str, hostname: str, requester) -> dict:
    """Every URL kwarg, from real objects of one lab."""
    now = lab_now(lab)
    va = VirtualAccount.objects.get(smart_account__lab=lab, name=va_name)
    token = cssm_services.token_create(
        va=va, actor="seed", description="seed", expire_days=30, max_uses=None, export_controlled=False, now=now
    )
    inst = _reserved_instance(va, f"SEED{lab.pk}", now)
    request = SmartAccountRequest.objects.create(
        lab=lab,
        requested_by=requester,
        name="Requested Corp",
        domain=requester.email.split("@")[1],
        status=SmartAccountRequestStatus.PENDING_APPROVAL,
        requested_at=now,
    )
    return {
        "lab_slug": lab.slug,
        "slug": lab.slug,
        "sa_id": va.smart_account_id,
        "va_id": va.pk,
        "token_id": token.pk,
        "pool_id": LicensePool.objects.filter(virtual_account=va).order_by("pk").first().pk,
        "piid": inst.piid,
        "req_id": request.pk,
        "sat_id": (
            SatelliteInstance.objects.filter(smart_account=va.smart_account).first()
            or SatelliteInstance.objects.create(smart_account=va.smart_account, name=f"sat.{lab.slug}", version="8")
        ).pk,
        "hostname": hostname,
        "page": "mail-policies",
    }


def other_lab() -> tuple[Lab, object]:
    """A second lab with its own Smart Account, appliance and owner ("outsider")."""
    User = get_user_model()
    outsider = User.objects.create_user("outsider", "outsider@other.org", "smartlab-demo")
    lab = Lab.objects.create(name="Other lab", slug="other")
    LabMembership.objects.create(lab=lab, user=outsider, gateway_role=GatewayRole.ADMINISTRATOR, is_manager=True)
    sa = SmartAccount.objects.create(lab=lab, name="Other Corp", domain="other.org")
    va = VirtualAccount.objects.create(smart_account=sa, name="Main", is_default=True)
    AccountAccess.objects.create(user=outsider, smart_account=sa, role=CssmRole.SA_ADMIN)
    for lic in catalogue.ESA_LICENSES:
        LicensePool.objects.create(virtual_account=va, tag=lic.entitlement_tag, purchased=3)
    Appliance.objects.create(lab=lab, hostname="esa9.other.org", product="ESA", model_pid="C395", serial="OTHER-9")
    return lab, outsider


def enable(appliance: Appliance) -> Appliance:
    now = appliance_now(appliance)
    gateway_services.sl_enable(appliance=appliance, user=None, now=now)
    gateway_services.changes_commit(appliance=appliance, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    appliance.refresh_from_db()
    return appliance


def stage_transport(appliance: Appliance) -> None:
    gateway_services.transport_stage(
        appliance=appliance, mode=TransportMode.GATEWAY, url="https://tg.example.com/x", user=None,
        now=appliance_now(appliance),
    )  # fmt: skip
