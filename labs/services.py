"""Lab administration: create (empty, demo world or scenario), clone, reset,
delete, members. A lab's origin is remembered so Reset can rebuild it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from labs.models import LabOrigin
from labs.scenarios.registry import scenario_build, scenario_get
from labs.transfer import lab_export, lab_import
from labs.world import world_seed
from licensing_core.models import Lab, LabMembership
from licensing_core.roles import GatewayRole


class LabError(ValueError):
    """A refused lab change, with a sentence for the user."""


def _slug_check(slug: str) -> str:
    clean = slugify(slug)[:60]
    if not clean or clean != slug:
        raise LabError("The short name may use lower-case letters, digits and hyphens only.")
    if Lab.objects.filter(slug=slug).exists():
        raise LabError(f"A lab called {slug!r} already exists; choose another short name.")
    return slug


@transaction.atomic
def _lab_new(*, name: str, slug: str, manager, description: str = "") -> Lab:
    _slug_check(slug)
    if not name.strip():
        raise LabError("Give the lab a name.")
    lab = Lab.objects.create(name=name.strip()[:100], slug=slug, description=description)
    if manager is not None:
        LabMembership.objects.create(lab=lab, user=manager, gateway_role=GatewayRole.ADMINISTRATOR, is_manager=True)
    return lab


def lab_create(*, name: str, slug: str, manager, scenario: str = "", demo: bool = False) -> Lab:
    """An empty lab, the demo world, or the demo world driven into a scenario.

    Not atomic on purpose: a scenario registers over HTTP, and the CSSM
    endpoint (another thread or process) must see each committed step."""
    if scenario:
        try:
            spec = scenario_get(scenario)
        except KeyError as exc:
            raise LabError(exc.args[0]) from None
    lab = _lab_new(name=name, slug=slug, manager=manager, description=spec.title if scenario else "")
    kind = LabOrigin.Kind.SCENARIO if scenario else LabOrigin.Kind.DEMO if demo else LabOrigin.Kind.EMPTY
    LabOrigin.objects.create(lab=lab, kind=kind, scenario=scenario)
    _populate(lab=lab, manager=manager, kind=kind, scenario=scenario)
    return lab


def _populate(*, lab: Lab, manager, kind: str, scenario: str, paste: str = "") -> list[str]:
    """Fill a new lab; returns what a paste build could not reproduce (else [])."""
    if kind in (LabOrigin.Kind.DEMO, LabOrigin.Kind.SCENARIO, LabOrigin.Kind.PASTE):
        world_seed(lab=lab, manager=manager)
    try:
        if kind == LabOrigin.Kind.SCENARIO:
            scenario_build(lab=lab, name=scenario)
        elif kind == LabOrigin.Kind.PASTE:
            return _paste_build(lab=lab, text=paste)
    except Exception:
        # Leave no half-built lab behind.
        lab.delete()
        raise
    return []


def _paste_build(*, lab: Lab, text: str) -> list[str]:
    from gateway_ui.models import Appliance
    from labs.paste import paste_parse
    from labs.reproduce import differences, plan_for, plan_run
    from labs.scenarios.builder import Builder

    result = paste_parse(text)
    if not result.usable:
        raise LabError(result.problems[0])
    plan = plan_for(result)
    plan_run(plan=plan, builder=Builder(lab))
    appliance = Appliance.objects.select_related("lab").get(lab=lab, hostname=plan.hostname)
    return plan.notes + differences(result=result, appliance=appliance)


def lab_create_from_paste(*, name: str, slug: str, manager, text: str) -> tuple[Lab, list[str]]:
    """A lab in the state a customer's license_smart STATUS/SUMMARY output describes,
    built through the real services (labs.reproduce). Returns the lab and what it
    could not reproduce. Not atomic, for the same reason as lab_create."""
    from labs.paste import PasteError, paste_parse

    try:
        result = paste_parse(text)
    except PasteError as exc:
        raise LabError(str(exc)) from None
    if not result.usable:
        raise LabError(result.problems[0])
    lab = _lab_new(name=name, slug=slug, manager=manager, description="Reproduced from a customer's output")
    LabOrigin.objects.create(lab=lab, kind=LabOrigin.Kind.PASTE, document={"paste": text})
    unmatched = _populate(lab=lab, manager=manager, kind=LabOrigin.Kind.PASTE, scenario="", paste=text)
    return lab, unmatched


def lab_import_new(*, document: dict, name: str, slug: str, manager) -> Lab:
    _slug_check(slug)
    lab = lab_import(document=document, slug=slug, name=name or document["lab"].get("name"), manager=manager)
    LabOrigin.objects.create(lab=lab, kind=LabOrigin.Kind.IMPORTED, document=document)
    return lab


def lab_clone(*, lab: Lab, name: str, slug: str, manager) -> Lab:
    """Clone = export + import into a new lab."""
    return lab_import_new(document=lab_export(lab=lab), name=name, slug=slug, manager=manager)


def lab_reset(*, lab: Lab, manager) -> Lab:
    """Rebuild a lab from its origin under the same slug and name."""
    origin = LabOrigin.objects.filter(lab=lab).first()
    if lab.slug == "demo" and origin is None:
        origin = LabOrigin(kind=LabOrigin.Kind.DEMO)
    if origin is None:
        raise LabError("This lab does not record how it was made, so it cannot be reset.")
    kind, scenario, document = origin.kind, origin.scenario, origin.document
    name, slug, description = lab.name, lab.slug, lab.description
    members = list(LabMembership.objects.filter(lab=lab).values("user_id", "gateway_role", "is_manager"))
    lab.delete()
    if kind == LabOrigin.Kind.IMPORTED:
        new = lab_import(document=document, slug=slug, name=name)
        LabOrigin.objects.create(lab=new, kind=kind, document=document)
    else:
        new = Lab.objects.create(name=name, slug=slug, description=description)
        LabOrigin.objects.create(lab=new, kind=kind, scenario=scenario, document=document)
        if kind == LabOrigin.Kind.DEMO and slug == "demo":
            from labs.demo import demo_lab_build

            demo_lab_build()
        else:
            paste = (document or {}).get("paste", "") if kind == LabOrigin.Kind.PASTE else ""
            _populate(lab=new, manager=manager, kind=kind, scenario=scenario, paste=paste)
    for member in members:
        LabMembership.objects.update_or_create(
            lab=new, user_id=member["user_id"],
            defaults={"gateway_role": member["gateway_role"], "is_manager": member["is_manager"]},
        )  # fmt: skip
    return new


def lab_delete(*, lab: Lab, confirm: str) -> None:
    if confirm != lab.slug:
        raise LabError(f"Type the lab's short name ({lab.slug}) to confirm the deletion.")
    lab.delete()


def member_add(*, lab: Lab, username: str, gateway_role: str, is_manager: bool = False) -> LabMembership:
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username.strip()}).first()
    if user is None:
        raise LabError(f"There is no user {username.strip()!r}.")
    if gateway_role not in GatewayRole.values:
        raise LabError("Choose one of the appliance roles.")
    membership, _ = LabMembership.objects.update_or_create(
        lab=lab, user=user, defaults={"gateway_role": gateway_role, "is_manager": is_manager}
    )
    return membership


def member_remove(*, lab: Lab, user_id: int, by) -> None:
    if user_id == by.pk:
        raise LabError("You cannot remove yourself; ask another manager.")
    deleted, _ = LabMembership.objects.filter(lab=lab, user_id=user_id).delete()
    if not deleted:
        raise LabError("That user is not a member of this lab.")
