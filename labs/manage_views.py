"""Lab management: new lab, clone, reset, delete, export, import, members, action faults,
and "Reproduce from a customer's output". Thin views over labs.services / labs.faults:
every refusal is a message on the page, outsiders get 404, non-managers a 403 with the reason."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from cssm_portal.models import RegistrationToken, VirtualAccount
from cssm_portal.selectors import pools as pools_of
from gateway_ui.models import Appliance
from labs import faults as lab_faults
from labs.forms import (
    CloneForm,
    DeleteForm,
    ImportForm,
    MemberForm,
    NewLabForm,
    PasteForm,
    RevokeForm,
    ShortageForm,
    SkewForm,
)
from labs.paste import PasteError, paste_parse
from labs.reproduce import plan_for
from labs.scenarios.builder import BuildError
from labs.selectors import lab_for_user
from labs.services import (
    LabError,
    lab_clone,
    lab_create,
    lab_create_from_paste,
    lab_delete,
    lab_import_new,
    lab_reset,
    member_add,
    member_remove,
)
from labs.transfer import TransferError, document_parse, lab_export_json
from labs.uploads import UploadError, lab_file_max_bytes, paste_max_bytes, size_text, upload_read
from licensing_core.clock import lab_now

log = logging.getLogger(__name__)


def _managed(request, slug: str):
    """(lab, None) for a manager, (lab, 403 response) for another member; 404 for outsiders."""
    from labs.views import _can_manage, _refused

    lab, membership = lab_for_user(user=request.user, slug=slug)
    if not _can_manage(request.user, membership):
        return lab, _refused(request, lab, "Only a lab manager can do this: ask a manager of this lab.")
    return lab, None


def _form_errors(request, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


def _detail(lab_or_slug) -> HttpResponse:
    return redirect("labs:detail", slug=getattr(lab_or_slug, "slug", lab_or_slug))


def _build_failed(request, exc: Exception, what: str) -> None:
    log.exception("Building %s failed", what)
    messages.error(request, f"The lab could not be built ({what}): {exc}")


# --- new, clone, reset, delete -----------------------------------------------------------------


@require_POST
def lab_new(request):
    form = NewLabForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("labs:home")
    data = form.cleaned_data
    kind = data["kind"]
    try:
        lab = lab_create(
            name=data["name"],
            slug=data["slug"],
            manager=request.user,
            scenario=data["scenario"] if kind == "scenario" else "",
            demo=kind == "demo",
        )
    except LabError as exc:
        messages.error(request, str(exc))
        return redirect("labs:home")
    except Exception as exc:  # a failed build deletes its lab; say why instead of a 500
        _build_failed(request, exc, f"scenario {data['scenario']}" if kind == "scenario" else kind)
        return redirect("labs:home")
    messages.success(request, f"Lab {lab.name} created.")
    return _detail(lab)


@require_POST
def lab_clone_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    form = CloneForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _detail(lab)
    try:
        clone = lab_clone(lab=lab, name=form.cleaned_data["name"], slug=form.cleaned_data["slug"], manager=request.user)
    except (LabError, TransferError) as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    messages.success(request, f"{lab.name} cloned as {clone.name}.")
    return _detail(clone)


@require_POST
def lab_reset_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    if request.POST.get("confirm") != "1":
        messages.error(request, "Confirm the reset: everything that happened in the lab is lost.")
        return _detail(lab)
    try:
        new = lab_reset(lab=lab, manager=request.user)
    except LabError as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    except Exception as exc:
        _build_failed(request, exc, "reset")
        return redirect("labs:home")
    messages.success(request, f"{new.name} was reset to how it was made.")
    return _detail(new)


@require_POST
def lab_delete_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    form = DeleteForm(request.POST)
    try:
        lab_delete(lab=lab, confirm=form.data.get("confirm", "").strip())
    except LabError as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    messages.success(request, f"Lab {lab.name} deleted.")
    return redirect("labs:home")


# --- export and import -------------------------------------------------------------------------


@require_http_methods(["GET"])
def lab_export_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    stamp = lab_now(lab).strftime("%Y%m%d-%H%M")
    response = HttpResponse(lab_export_json(lab=lab), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lab-{lab.slug}-{stamp}.json"'
    return response


@require_POST
def lab_import_view(request):
    back = request.POST.get("back", "")
    back_to = _detail(back) if back and lab_exists_for(request.user, back) else redirect("labs:home")
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        _form_errors(request, form)
        return back_to
    try:
        text = upload_read(form.cleaned_data["file"], limit=lab_file_max_bytes(), what="lab file")
        document = document_parse(text)
        lab = lab_import_new(
            document=document, name=form.cleaned_data["name"], slug=form.cleaned_data["slug"], manager=request.user
        )
    except (UploadError, TransferError, LabError) as exc:
        messages.error(request, str(exc))
        return back_to
    messages.success(request, f"Imported as lab {lab.name}.")
    return _detail(lab)


def lab_exists_for(user, slug: str) -> bool:
    try:
        lab_for_user(user=user, slug=slug)
    except Exception:
        return False
    return True


# --- members ----------------------------------------------------------------------------------


@require_POST
def member_add_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    form = MemberForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _detail(lab)
    try:
        membership = member_add(lab=lab, **form.cleaned_data)
    except LabError as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    role = membership.get_gateway_role_display()
    messages.success(request, f"{membership.user.get_username()} is a member ({role}).")
    return _detail(lab)


@require_POST
def member_remove_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    try:
        user_id = int(request.POST.get("user", ""))
    except ValueError:
        user_id = 0
    if not 0 < user_id < 2**63:  # beyond a database id: no such member
        messages.error(request, "Choose the member to remove.")
        return _detail(lab)
    try:
        member_remove(lab=lab, user_id=user_id, by=request.user)
    except LabError as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    messages.success(request, "Member removed.")
    return _detail(lab)


# --- action faults ----------------------------------------------------------------------------


@require_POST
def fault_skew_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    form = SkewForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _detail(lab)
    appliance = Appliance.objects.select_related("lab").filter(lab=lab, hostname=form.cleaned_data["hostname"]).first()
    if appliance is None:
        messages.error(request, "Choose an appliance of this lab.")
        return _detail(lab)
    try:
        lab_faults.clock_skew_set(
            appliance=appliance, minutes=form.cleaned_data["minutes"], actor=request.user.get_username()
        )
    except lab_faults.FaultError as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    messages.success(request, f"Clock of {appliance.hostname}: {form.cleaned_data['minutes']} minute(s) skew.")
    return _detail(lab)


@require_POST
def fault_revoke_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    form = RevokeForm(request.POST)
    token = (
        RegistrationToken.objects.filter(pk=form.cleaned_data["token"], virtual_account__smart_account__lab=lab)
        .select_related("virtual_account__smart_account__lab")
        .first()
        if form.is_valid()
        else None
    )
    if token is None:
        messages.error(request, "Choose one of the lab's active tokens.")
        return _detail(lab)
    try:
        lab_faults.token_revoke_behind_back(token=token, now=lab_now(lab))
    except lab_faults.FaultError as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    messages.success(request, f"Token of {token.virtual_account.name} revoked behind the admin's back.")
    return _detail(lab)


@require_POST
def fault_shortage_view(request, slug: str):
    lab, refused = _managed(request, slug)
    if refused:
        return refused
    form = ShortageForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _detail(lab)
    vas = VirtualAccount.objects.filter(smart_account__lab=lab)
    pool = pools_of(vas).filter(pk=form.cleaned_data["pool"]).first()
    target = vas.filter(pk=form.cleaned_data["target"]).first()
    if pool is None or target is None:
        messages.error(request, "Choose a licence and a virtual account of this lab.")
        return _detail(lab)
    try:
        lab_faults.license_shortage(
            source=pool.virtual_account, target=target, tag=pool.tag, quantity=form.cleaned_data["quantity"],
            actor=request.user.get_username(), now=lab_now(lab),
        )  # fmt: skip
    except lab_faults.FaultError as exc:
        messages.error(request, str(exc))
        return _detail(lab)
    messages.success(
        request,
        f"{form.cleaned_data['quantity']} {pool.name} moved from {pool.virtual_account.name} to {target.name}.",
    )
    return _detail(lab)


# --- reproduce from a customer's output ---------------------------------------------------------


@require_http_methods(["GET", "POST"])
def reproduce(request):
    """Paste (or upload) license_smart STATUS and SUMMARY: see what was understood, then build."""
    form = PasteForm(request.POST or None, request.FILES or None)
    context = {
        "form": form,
        "limit_kib": paste_max_bytes() // 1024,
        "text": request.POST.get("text", ""),
        "name": request.POST.get("name", "Customer reproduction"),
        "slug": request.POST.get("slug", ""),
    }
    if request.method == "GET":
        return render(request, "labs/reproduce.html", context)
    text = request.POST.get("text", "")
    upload = request.FILES.get("file")
    try:
        if upload is not None:
            text = upload_read(upload, limit=paste_max_bytes(), what="file")
        elif len(text.encode()) > paste_max_bytes():
            limit = size_text(paste_max_bytes())
            raise UploadError(f"The paste is longer than {limit}; paste STATUS and SUMMARY only.")
        result = paste_parse(text)
    except (UploadError, PasteError) as exc:
        messages.error(request, str(exc))
        return render(request, "labs/reproduce.html", context, status=422)
    plan = plan_for(result)
    context |= {"result": result, "plan": plan, "text": text}
    if request.POST.get("action") != "build":
        return render(request, "labs/reproduce.html", context)
    if not form.is_valid():
        _form_errors(request, form)
        return render(request, "labs/reproduce.html", context, status=422)
    if not result.usable:
        messages.error(request, result.problems[0])
        return render(request, "labs/reproduce.html", context, status=422)
    try:
        lab, unmatched = lab_create_from_paste(
            name=form.cleaned_data["name"], slug=form.cleaned_data["slug"], manager=request.user, text=text
        )
    except LabError as exc:
        messages.error(request, str(exc))
        return render(request, "labs/reproduce.html", context, status=422)
    except (BuildError, Exception) as exc:
        _build_failed(request, exc, "from the paste")
        return render(request, "labs/reproduce.html", context, status=422)
    messages.success(request, f"Lab {lab.name} built from the customer's output on {plan.hostname}.")
    for line in unmatched:
        messages.warning(request, f"Not reproduced: {line}")
    return redirect(reverse("labs:detail", args=[lab.slug]) + "#timeline")
