from datetime import timedelta

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labs.faults import MAX_SKEW_MINUTES
from labs.forms import AdvanceToForm, NewLabForm
from labs.scenarios import scenarios
from labs.selectors import (
    lab_appliances,
    lab_fault_choices,
    lab_for_user,
    lab_mailbox,
    lab_members,
    lab_timeline,
    labs_for_user,
    last_heartbeat,
)
from labs.uploads import lab_file_max_bytes
from licensing_core.clock import ClockError, clock_freeze, clock_unfreeze, lab_now
from licensing_core.faults import CSSM_SLOW_MAX_SECONDS, FAULT_HELP, Fault, fault_set
from licensing_core.roles import GatewayRole
from licensing_core.sweeps import lab_advance

ADVANCE_STEPS_DAYS = (1, 7, 30, 90)


@require_GET
def home(request):
    """The lab home: every lab the user belongs to, its time, the CSSM portal
    and each appliance's admin GUI."""
    labs = list(labs_for_user(user=request.user))
    rows = [{"lab": lab, "now": lab_now(lab)} for lab in labs]
    return render(
        request,
        "labs/home.html",
        {"rows": rows, "heartbeat": last_heartbeat(), "new_form": NewLabForm(), "library": scenarios()},
    )


@require_GET
def lab_detail(request, slug: str):
    lab, membership = lab_for_user(user=request.user, slug=slug)
    now = lab_now(lab)
    query = request.GET.get("q", "").strip()[:255]
    can_manage = _can_manage(request.user, membership)
    context = {
        "lab": lab,
        "now": now,
        "can_manage": can_manage,
        "steps": ADVANCE_STEPS_DAYS,
        "advance_form": AdvanceToForm(),
        "timeline": lab_timeline(lab=lab),
        "faults": [
            {
                "fault": fault,
                "on": bool(lab.faults.get(fault.value)),
                "value": lab.faults.get(fault.value),
                "help": FAULT_HELP[fault],
            }
            for fault in Fault
        ],
        "slow_max": CSSM_SLOW_MAX_SECONDS,
        "appliances": lab_appliances(lab=lab, query=query, page=request.GET.get("page") or 1),
        "appliance_query": query,
    }
    if can_manage:
        context |= {
            "members": lab_members(lab=lab),
            "roles": GatewayRole.choices,
            "choices": lab_fault_choices(lab=lab, now=now),
            "file_max_mib": lab_file_max_bytes() // (1024 * 1024),
            "max_skew": MAX_SKEW_MINUTES,
        }
    return render(request, "labs/lab.html", context)


@require_POST
def lab_advance_view(request, slug: str):
    lab, membership = lab_for_user(user=request.user, slug=slug)
    if not _can_manage(request.user, membership):
        return _refused(request, lab, "Only a lab manager can move the lab clock.")
    if "days" in request.POST:
        try:
            days = int(request.POST["days"])
        except ValueError:
            days = 0
        if days not in ADVANCE_STEPS_DAYS:
            messages.error(request, "Choose one of the offered steps: +1, +7, +30 or +90 days.")
            return redirect("labs:detail", slug=lab.slug)
        target = lab_now(lab) + timedelta(days=days)
    else:
        form = AdvanceToForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Enter the date to advance to, as YYYY-MM-DD.")
            return redirect("labs:detail", slug=lab.slug)
        target = form.target()
    try:
        result = lab_advance(lab=lab, to=target)
    except ClockError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Lab time is now {result.finished_at:%d %b %Y %H:%M} UTC; {result.processed} due item(s) processed.",
        )
    return redirect("labs:detail", slug=lab.slug)


@require_POST
def lab_freeze_view(request, slug: str):
    lab, membership = lab_for_user(user=request.user, slug=slug)
    if not _can_manage(request.user, membership):
        return _refused(request, lab, "Only a lab manager can freeze the lab clock.")
    if request.POST.get("frozen") == "1":
        clock_freeze(lab=lab)
    else:
        clock_unfreeze(lab=lab)
    return redirect("labs:detail", slug=lab.slug)


@require_POST
def lab_fault_view(request, slug: str):
    lab, membership = lab_for_user(user=request.user, slug=slug)
    if not _can_manage(request.user, membership):
        return _refused(request, lab, "Only a lab manager can inject faults.")
    try:
        fault = Fault(request.POST.get("fault", ""))
    except ValueError:
        messages.error(request, "Unknown fault.")
        return redirect("labs:detail", slug=lab.slug)
    value: bool | int = request.POST.get("on") == "1"
    if value and fault == Fault.CSSM_SLOW and request.POST.get("seconds"):
        try:
            value = int(request.POST["seconds"])
        except ValueError:
            messages.error(request, f"The delay must be a whole number of seconds (1 to {CSSM_SLOW_MAX_SECONDS}).")
            return redirect("labs:detail", slug=lab.slug)
        if not 1 <= value <= CSSM_SLOW_MAX_SECONDS:
            messages.error(request, f"The delay must be between 1 and {CSSM_SLOW_MAX_SECONDS} seconds.")
            return redirect("labs:detail", slug=lab.slug)
    fault_set(lab=lab, fault=fault, value=value)
    messages.success(request, f"{fault.label}: {'on' if value else 'off'}.")
    return redirect("labs:detail", slug=lab.slug)


@require_GET
def mailbox(request, slug: str):
    lab, _ = lab_for_user(user=request.user, slug=slug)
    return render(request, "labs/mailbox.html", {"lab": lab, "mails": lab_mailbox(lab=lab)[:200]})


def _can_manage(user, membership) -> bool:
    return user.is_superuser or (membership is not None and membership.is_manager)


def _refused(request, lab, reason: str):
    """403 with the reason on the page (not a bare Forbidden)."""
    return render(request, "labs/refused.html", {"lab": lab, "reason": reason}, status=403)
