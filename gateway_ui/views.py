"""The appliance admin GUI. Views are thin: resolve the appliance and role, call a service, render."""

from __future__ import annotations

from functools import cache, wraps
from urllib.parse import quote

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.http import RFC3986_SUBDELIMS, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gateway_ui import selectors, services
from gateway_ui.clock import appliance_now
from gateway_ui.forms import AirgapForm, AuthCodeForm, ProxyForm, RecipientForm, RegisterForm, TransportForm
from gateway_ui.models import AlertRecipient, Appliance, ChangeKind, Exchange, RegistrationMode, TransportMode
from gateway_ui.permissions import RoleRefused, role_allows, role_require
from gateway_ui.selectors import appliance_for_user, smartlicense_log
from licensing_core import formats
from licensing_core.compiled import run_compiled
from licensing_core.machines import (
    AgentUpdateState,
    ConversionState,
    RegistrationState,
    ReservationState,
    TransitionRefused,
)
from licensing_core.roles import GatewayRole

RS = RegistrationState
RV = ReservationState
CLUSTER_MODES = ("cluster", "group", "machine")
RETURN_NOTE = "Use the return code in the Smart Software Manager portal to remove the license reservation."
CONFIRMATION_NOTE = "Use the confirmation code in the Smart Software Manager portal to update the license reservations."
MACHINE_MODE_ONLY = (
    "Smart Software Licensing is available only in machine mode. Switch the Mode to Machine for this appliance."
)


def _sl_url(appliance: Appliance, name: str = "gateway:smart_licensing") -> str:
    return reverse(name, args=[appliance.lab.slug, appliance.hostname])


def _cluster_mode(request, appliance: Appliance) -> str:
    if not appliance.cluster_id:
        return "machine"
    return request.session.get(f"cluster_mode:{appliance.cluster_id}", "cluster")


def appliance_view(action: str = "view", *, machine_only: bool = False):
    """Resolve the appliance (404 outside the user's labs), check the role and cluster mode."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, lab_slug: str, hostname: str, *args, **kwargs):
            appliance, role = appliance_for_user(user=request.user, lab_slug=lab_slug, hostname=hostname)
            request.appliance, request.gateway_role = appliance, role
            try:
                role_require(role, action)
            except RoleRefused as exc:
                return _refused(request, appliance, exc.reason, status=403)
            page_itself = view.__name__ in ("smart_licensing", "sl_status")  # they show the message in place
            if machine_only and not page_itself and _cluster_mode(request, appliance) != "machine":
                return _refused(request, appliance, MACHINE_MODE_ONLY, status=409)
            return view(request, appliance, role, *args, **kwargs)

        return wrapper

    return decorator


def _refused(request, appliance: Appliance, reason: str, *, status: int) -> HttpResponse:
    return render(request, "gateway_ui/refused.html", _ctx(request, appliance, {"reason": reason}), status=status)


def _ctx(request, appliance: Appliance, extra: dict | None = None) -> dict:
    role = getattr(request, "gateway_role", GatewayRole.GUEST)
    # Read on first use, one query for both: the Commit Changes button and Enable waiting for commit (the status
    # partial htmx polls every 2 s shows neither once Smart Software Licensing is enabled).
    staged = SimpleLazyObject(lambda: selectors.staged_kinds(appliance))
    ctx = {
        "appliance": appliance,
        "role": role,
        "role_label": GatewayRole(role).label if role in GatewayRole.values else role,
        "siblings": _siblings(appliance),
        "urls": ApplianceUrls(reverse("gateway:home", args=[appliance.lab.slug, appliance.hostname])),
        "pending": SimpleLazyObject(lambda: bool(staged)),
        "pending_enable": SimpleLazyObject(lambda: ChangeKind.ENABLE_SL in staged),
        "cluster_mode": _cluster_mode(request, appliance),
        "cluster_modes": CLUSTER_MODES,
        "now": appliance_now(appliance),
    }
    ctx["now_display"] = formats.gateway_datetime(ctx["now"])
    if extra:
        ctx.update(extra)
    return ctx


_HOST_MARK = "hostname-goes-here"
_URL_SAFE = RFC3986_SUBDELIMS + "/~:@"  # what reverse() leaves unquoted


SWITCHER_NEIGHBOURS = 10  # appliances listed each side of this one; the lab page finds the others


def _before(lab_id: int, hostname: str, limit: int):
    same_lab = Appliance.objects.filter(lab_id=lab_id, hostname__lt=hostname)
    return same_lab.order_by("-hostname").values_list("hostname")[:limit]


def _after(lab_id: int, hostname: str, limit: int):
    same_lab = Appliance.objects.filter(lab_id=lab_id, hostname__gt=hostname)
    return same_lab.order_by("hostname").values_list("hostname")[:limit]


def _siblings(appliance: Appliance):
    """The appliance switcher's options: (url, hostname, selected) for the appliances next to this one by host
    name, and when the lab holds more, a last option to the lab page's appliance list (None for hostname).

    A generator, so pages that do not show the switcher (the status partial) run no query. A fleet lab holds
    thousands of appliances: a bounded window (two queries of host names only) and one reverse() for all of
    them (the hostname quoted as reverse() quotes it)."""
    head, _, tail = reverse("gateway:smart_licensing", args=[appliance.lab.slug, _HOST_MARK]).rpartition(_HOST_MARK)
    n = SWITCHER_NEIGHBOURS  # the two queries compiled once per process (run_compiled)
    before = run_compiled(_before, appliance.lab_id, appliance.hostname, types=n + 1)
    after = run_compiled(_after, appliance.lab_id, appliance.hostname, types=n + 1)
    hostnames = [h for (h,) in reversed(before[:n])] + [appliance.hostname] + [h for (h,) in after[:n]]
    for hostname in hostnames:
        yield head + quote(hostname, safe=_URL_SAFE) + tail, hostname, hostname == appliance.hostname
    if len(before) > n or len(after) > n:
        yield reverse("labs:detail", kwargs={"slug": appliance.lab.slug}) + "#appliances", None, False


class ApplianceUrls(dict):
    """The URLs of one appliance's pages for its templates, by URL name: {{ urls.licenses }}, and
    {% appliance_url 'not_simulated' 'monitor' %} for those that take more arguments.

    Every route is the appliance's own part ("<lab>/<hostname>/") and then a part that is the same for every
    appliance, so one reverse() serves all the links of a page (the menu's and the page's own) instead of
    one each. An unknown name raises NoReverseMatch, as {% url %} would."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def page(self, name: str, *args: str) -> str:
        return self.base + _route_rest(name, *args)

    def __missing__(self, name: str) -> str:
        self[name] = url = self.page(name)
        return url


@cache
def _route_rest(name: str, *args: str) -> str:
    """A gateway route's URL after the appliance's own part (the same for every appliance)."""
    own = ["lab", "host"]
    return reverse(f"gateway:{name}", args=[*own, *args]).removeprefix(reverse("gateway:home", args=own))


def _do(request, appliance: Appliance, fn, success: str | None = None, **kwargs):
    """Call a service; show its refusal as an error message. Returns (ok, result)."""
    try:
        result = fn(appliance=appliance, now=appliance_now(appliance), **kwargs)
    except (TransitionRefused, RoleRefused) as exc:
        messages.error(request, exc.reason)
        return False, None
    if success:
        messages.success(request, success)
    return True, result


# --- Chrome ----------------------------------------------------------------------------------------------


@require_GET
@appliance_view("view_status")
def home(request, appliance, role):
    return redirect(_sl_url(appliance))


@require_GET
@appliance_view("view_status")
def not_simulated(request, appliance, role, page: str):
    return render(request, "gateway_ui/not_simulated.html", _ctx(request, appliance, {"page": page}))


@require_POST
@appliance_view("view_status")
def cluster_mode_set(request, appliance, role):
    mode = request.POST.get("mode", "")
    target = request.POST.get("machine", "")
    if not appliance.cluster_id or mode not in CLUSTER_MODES:
        messages.error(request, "This appliance is not in a cluster." if not appliance.cluster_id else "Choose a mode.")
        return redirect(_sl_url(appliance))
    if mode == "machine" and target:
        member = appliance.cluster.members.filter(hostname=target).first()
        if member is None:
            messages.error(request, "That machine is not a member of this cluster.")
            return redirect(_sl_url(appliance))
        request.session[f"cluster_mode:{appliance.cluster_id}"] = "machine"
        return redirect(_sl_url(member))
    request.session[f"cluster_mode:{appliance.cluster_id}"] = mode
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=False):
        next_url = _sl_url(appliance)  # never redirect off this site
    return redirect(next_url)


# --- Smart Software Licensing page ----------------------------------------------------------------------


def _status_context(appliance: Appliance, role: str) -> dict:
    now = appliance_now(appliance)
    registered = appliance.registration_state == RS.REGISTERED
    rsv = appliance.in_reservation_mode
    installed = appliance.reservation_state in (RV.SLR_INSTALLED, RV.PLR_INSTALLED)
    remaining = services.eval_remaining(appliance, now)
    reg_status = selectors.registration_status_label(appliance)
    if registered and appliance.registered_at:
        reg_status = formats.status_with_time(reg_status, appliance.registered_at)
    auth = appliance.get_authorization_state_display()
    if selectors.authorization_time_shown(appliance):
        auth = formats.status_with_time(auth, appliance.last_auth_success_at)
    actions = []
    if registered and not rsv:
        actions = ["Renew Authorization Now", "Renew Certificates Now", "Reregister", "Deregister"]
    elif rsv and installed:
        actions = (["Reauthorize"] if appliance.reservation_state == RV.SLR_INSTALLED else []) + ["Return code"]
    can_register = role_allows(role, "register")
    can_reserve = role_allows(role, "reservation")
    busy = (
        bool(appliance.exchange)
        or appliance.dlc_state == ConversionState.IN_PROGRESS
        or (appliance.agent_update_state == AgentUpdateState.UPDATING)
    )
    return {
        "registered": registered,
        "reservation": rsv,
        "installed": installed,
        "eval_in_use": appliance.eval_running_since is not None,
        "eval_remaining": formats.eval_remaining_gui(remaining),
        "reg_status": reg_status,
        "reg_expires": formats.gateway_datetime(appliance.id_expires_at)
        if registered and appliance.id_expires_at
        else "",
        "auth_status": auth,
        "auth_expires": formats.gateway_datetime(appliance.auth_expires_at)
        if registered and appliance.auth_expires_at
        else "",
        "last_auth": formats.attempt_status(appliance.last_auth_ok, appliance.last_auth_attempt_at),
        "last_id": formats.attempt_status(appliance.last_id_ok, appliance.last_id_attempt_at),
        "actions": actions,
        "busy": busy,
        "exchange_label": Exchange(appliance.exchange).label if appliance.exchange else "",
        "can_register": can_register,
        "can_reserve": can_reserve,
        "show_register": can_register
        and not rsv
        and appliance.registration_state in (RS.UNREGISTERED, RS.REG_FAILED, RS.REG_EXPIRED, RS.UNIDENTIFIED)
        and not appliance.exchange,
        "show_transport_edit": can_register and not rsv and not registered and not appliance.exchange,
        "show_mode_radios": (can_reserve or can_register) and not registered and not appliance.exchange and not rsv,
        "show_change_type": can_reserve and rsv,
        "show_rsv_register": can_reserve
        and rsv
        and appliance.reservation_state in (RV.ENABLED, RV.RETURNED, RV.REQUESTED),
        "show_actions": bool(actions) and (can_reserve if rsv else can_register),
        "agent_last_updated": formats.gateway_agent_datetime(appliance.agent_updated_at)
        if appliance.agent_updated_at
        else "Never updated",
        "dlc_label": ConversionState(appliance.dlc_state).label,
        "can_update_agent": role_allows(role, "agent_update"),
    }


@require_GET
@appliance_view("view", machine_only=True)
def smart_licensing(request, appliance, role):
    ctx = _ctx(request, appliance, _status_context(appliance, role))
    ctx["machine_mode_message"] = MACHINE_MODE_ONLY if ctx["cluster_mode"] != "machine" else ""
    return render(request, "gateway_ui/smart_licensing.html", ctx)


@require_GET
@appliance_view("view", machine_only=True)
def sl_status(request, appliance, role):
    """The status partial htmx polls every 2 s while an exchange or conversion is running."""
    now = appliance_now(appliance)
    if services.dlc_due(appliance, now):
        from gateway_ui.tasks import dlc_complete_task
        from licensing_core.tasks import task_send

        task_send(dlc_complete_task, appliance.pk)  # a broker that is down must not break the poll
        appliance.refresh_from_db()
    ctx = _ctx(request, appliance, _status_context(appliance, role))
    return render(request, "gateway_ui/smart_licensing.html#status", ctx)


@require_http_methods(["GET", "POST"])
@appliance_view("stage_enable", machine_only=True)
def sl_enable(request, appliance, role):
    if request.method == "POST":
        ok, _ = _do(
            request,
            appliance,
            services.sl_enable,
            "Smart Software Licensing will be enabled after you commit your changes. Commit your changes.",
            user=request.user,
            all_in_cluster=bool(request.POST.get("all_machines")),
        )
        return redirect(_sl_url(appliance))
    return render(request, "gateway_ui/sl_enable.html", _ctx(request, appliance))


@require_POST
@appliance_view("register", machine_only=True)
def sl_mode(request, appliance, role):
    mode = request.POST.get("mode", "")
    if mode == RegistrationMode.LICENSE_RESERVATION:
        try:
            role_require(role, "reservation")
        except RoleRefused as exc:
            return _refused(request, appliance, exc.reason, status=403)
    ok, results = _do(
        request,
        appliance,
        services.registration_mode_set,
        mode=mode,
        actor=request.user.get_username(),
        all_in_cluster=bool(request.POST.get("all_machines")),
    )
    if ok:
        for member, result in results:
            label = RegistrationMode(mode).label
            messages.info(
                request, f"{member.hostname}: {result}" if len(results) > 1 else f"Registration mode: {label}."
            )
    return redirect(_sl_url(appliance))


@require_http_methods(["GET", "POST"])
@appliance_view("reservation", machine_only=True)
def sl_change_type(request, appliance, role):
    if request.method == "POST":
        ok, results = _do(
            request,
            appliance,
            services.registration_mode_set,
            mode=RegistrationMode.SMART_LICENSE_REGISTRATION,
            actor=request.user.get_username(),
            all_in_cluster=bool(request.POST.get("all_machines")),
        )
        if ok:
            for member, result in results:
                messages.info(
                    request, f"{member.hostname}: {result}" if len(results) > 1 else "License reservation is disabled."
                )
        return redirect(_sl_url(appliance))
    return render(request, "gateway_ui/sl_change_type.html", _ctx(request, appliance))


@require_http_methods(["GET", "POST"])
@appliance_view("stage_transport", machine_only=True)
def sl_transport(request, appliance, role):
    form = TransportForm(
        request.POST if request.method == "POST" else None,
        initial={"mode": appliance.transport_mode, "url": appliance.transport_url},
    )
    if request.method == "POST" and form.is_valid():
        ok, _ = _do(
            request,
            appliance,
            services.transport_stage,
            "Transport settings will be updated after commit",
            mode=form.cleaned_data["mode"],
            url=form.cleaned_data["url"],
            user=request.user,
        )
        if ok:
            return redirect(_sl_url(appliance))
    elif request.method == "POST":
        messages.error(request, services.INVALID_GATEWAY_URL)
    return render(request, "gateway_ui/sl_transport.html", _ctx(request, appliance, {"form": form}))


@require_http_methods(["GET", "POST"])
@appliance_view("register", machine_only=True)
def sl_register(request, appliance, role):
    reregister = request.GET.get("reregister") == "1" or request.POST.get("action") == "reregister"
    form = RegisterForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        targets = [appliance]
        if form.cleaned_data["all_machines"] and appliance.cluster_id and not reregister:
            targets += list(appliance.cluster.members.exclude(pk=appliance.pk))
        any_ok = False
        for target in targets:
            ok, _ = _do(
                request,
                target,
                services.agent_register,
                force=form.cleaned_data["reregister"],
                token=token,
                actor=request.user.get_username(),
                reregister=reregister,
            )
            any_ok |= ok
            if len(targets) > 1 and ok:
                messages.info(request, f"{target.hostname}: registration started")
        if any_ok:
            return redirect(_sl_url(appliance))
    elif request.method == "POST":
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return render(
        request, "gateway_ui/sl_register.html", _ctx(request, appliance, {"form": form, "reregister": reregister})
    )


ACTION_TARGETS = {
    "Deregister": "gateway:sl_deregister",
    "Reregister": "gateway:sl_register",
    "Reauthorize": "gateway:sl_reauthorize",
}


@require_POST
@appliance_view("register", machine_only=True)
def sl_action(request, appliance, role):
    action = request.POST.get("action", "")
    actor = request.user.get_username()
    if action in ("Reauthorize", "Return code"):
        try:
            role_require(role, "reservation")
        except RoleRefused as exc:
            return _refused(request, appliance, exc.reason, status=403)
    if action == "Renew Authorization Now":
        _do(request, appliance, services.renew_authorization, "Renew Authorization Now requested.", actor=actor)
    elif action == "Renew Certificates Now":
        _do(request, appliance, services.renew_id_certificate, "Renew Certificates Now requested.", actor=actor)
    elif action == "Return code":
        ok, code = _do(request, appliance, services.reservation_return, actor=actor)
        if ok:
            return render(
                request,
                "gateway_ui/sl_code.html",
                _ctx(
                    request,
                    appliance,
                    {
                        "title": "Return code",
                        "code": code,
                        "code_label": "Return code",
                        "note": RETURN_NOTE,
                    },
                ),
            )
    elif action in ACTION_TARGETS:
        url = reverse(ACTION_TARGETS[action], args=[appliance.lab.slug, appliance.hostname])
        return redirect(url + ("?reregister=1" if action == "Reregister" else ""))
    else:
        messages.error(request, "Choose an action from the Action drop-down list and click Go.")
    return redirect(_sl_url(appliance))


@require_http_methods(["GET", "POST"])
@appliance_view("register", machine_only=True)
def sl_deregister(request, appliance, role):
    if request.method == "POST":
        _do(request, appliance, services.agent_deregister, actor=request.user.get_username())
        return redirect(_sl_url(appliance))
    return render(request, "gateway_ui/sl_deregister.html", _ctx(request, appliance))


@require_POST
@appliance_view("agent_update", machine_only=True)
def sl_agent_update(request, appliance, role):
    _do(
        request,
        appliance,
        services.agent_update,
        "Requesting update of Smart License Agent",
        actor=request.user.get_username(),
    )
    return redirect(_sl_url(appliance))


@require_POST
@appliance_view("register", machine_only=True)
def sl_dlc_restart(request, appliance, role):
    _do(request, appliance, services.dlc_start, "Device Led Conversion restarted.", actor=request.user.get_username())
    return redirect(_sl_url(appliance))


# --- Reservation -------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@appliance_view("reservation", machine_only=True)
def sl_request_code(request, appliance, role):
    if request.method == "POST":
        if request.POST.get("step") == "cancel":
            _do(
                request,
                appliance,
                services.reservation_cancel,
                "The request code is canceled. An authorization code generated for it in the Smart Software "
                "Manager portal cannot be installed; contact Cisco TAC to remove that reservation.",
                actor=request.user.get_username(),
            )
            return redirect(_sl_url(appliance))
        ok, code = _do(request, appliance, services.reservation_request_code, actor=request.user.get_username())
        if not ok:
            return redirect(_sl_url(appliance))
    else:
        code = appliance.reservation_request_code
        if not code:
            return redirect(_sl_url(appliance))
    return render(request, "gateway_ui/sl_request_code.html", _ctx(request, appliance, {"code": code}))


def _auth_code_view(request, appliance, *, service, template_title: str, button: str):
    form = AuthCodeForm(
        request.POST if request.method == "POST" else None, request.FILES if request.method == "POST" else None
    )
    if request.method == "POST" and form.is_valid():
        text = form.code_text()
        if text.startswith("\x00"):
            messages.error(
                request, "The uploaded file is not an authorization code (it must be a text file of at most 64 KB)."
            )
        else:
            ok, result = _do(request, appliance, service, code=text, actor=request.user.get_username())
            if ok:
                return ok, result, form
    elif request.method == "POST":
        messages.error(request, "Paste the authorization code or upload the file that contains it.")
    return False, None, form


@require_http_methods(["GET", "POST"])
@appliance_view("reservation", machine_only=True)
def sl_install(request, appliance, role):
    ok, result, form = _auth_code_view(
        request, appliance, service=services.reservation_install, template_title="", button="Install Authorization Code"
    )
    if ok:
        messages.success(request, "Smart Agent successfully installed the license reservation.")
        return redirect(_sl_url(appliance))
    return render(
        request,
        "gateway_ui/sl_auth_code.html",
        _ctx(
            request,
            appliance,
            {
                "form": form,
                "title": "Install Authorization Code",
                "button": "Install Authorization Code",
                "action_url": "gateway:sl_install",
            },
        ),
    )


@require_http_methods(["GET", "POST"])
@appliance_view("reservation", machine_only=True)
def sl_reauthorize(request, appliance, role):
    ok, code, form = _auth_code_view(
        request, appliance, service=services.reservation_reauthorize, template_title="", button="Re-authorize"
    )
    if ok:
        return render(
            request,
            "gateway_ui/sl_code.html",
            _ctx(
                request,
                appliance,
                {
                    "title": "Confirmation code",
                    "code": code,
                    "code_label": "Confirmation code",
                    "note": CONFIRMATION_NOTE,
                },
            ),
        )
    return render(
        request,
        "gateway_ui/sl_auth_code.html",
        _ctx(
            request,
            appliance,
            {"form": form, "title": "Reauthorize", "button": "Re-authorize", "action_url": "gateway:sl_reauthorize"},
        ),
    )


# --- Air-gap (virtual) -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@appliance_view("airgap", machine_only=True)
def sl_airgap(request, appliance, role):
    info, info_error = None, ""
    try:
        info = services.vlinfo(appliance=appliance)
    except TransitionRefused as exc:
        info_error = exc.reason
    form = AirgapForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            ok, _ = _do(
                request,
                appliance,
                services.airgap_apply,
                "The VLN, certificate and key are applied.",
                vln=form.cleaned_data["vln"],
                certificate=form.cleaned_data["certificate"],
                key=form.cleaned_data["key"],
                actor=request.user.get_username(),
            )
            if ok:
                return redirect(reverse("gateway:sl_airgap", args=[appliance.lab.slug, appliance.hostname]))
        else:
            messages.error(request, "Enter the VLN, the certificate and the key copied from vlinfo.")
    return render(
        request,
        "gateway_ui/sl_airgap.html",
        _ctx(request, appliance, {"info": info, "info_error": info_error, "form": form}),
    )


# --- Licenses -----------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@appliance_view("view", machine_only=True)
def licenses(request, appliance, role):
    edit = request.GET.get("edit") == "1" or request.method == "POST"
    if edit:
        try:
            role_require(role, "licenses")
        except RoleRefused as exc:
            return _refused(request, appliance, exc.reason, status=403)
    if request.method == "POST":
        ok, changed = _do(
            request,
            appliance,
            services.licenses_submit,
            requested=set(request.POST.getlist("license")),
            actor=request.user.get_username(),
        )
        if ok:
            messages.success(request, "License changes submitted: " + "; ".join(changed))
        return redirect(reverse("gateway:licenses", args=[appliance.lab.slug, appliance.hostname]))
    rows = services.license_row_display(appliance)
    return render(request, "gateway_ui/licenses.html", _ctx(request, appliance, {"rows": rows, "edit": edit}))


# --- Commit -------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@appliance_view("view_status")
def changes(request, appliance, role):
    if request.method == "POST":
        now = appliance_now(appliance)
        abandon = request.POST.get("do") == "abandon"
        # The role is checked before anything else, so a role that may not commit
        # (or abandon) is refused with a 403 and its reason whatever is pending.
        try:
            role_require(role, "abandon" if abandon else "commit")
        except RoleRefused as exc:
            return _refused(request, appliance, exc.reason, status=403)
        try:
            if abandon:
                services.changes_abandon(appliance=appliance, user=request.user, now=now)
                messages.success(request, "Your changes have been abandoned.")
            else:
                services.changes_commit(
                    appliance=appliance,
                    user=request.user,
                    role=role,
                    now=now,
                    # Printable characters only (no NUL or control characters in the event log).
                    comment="".join(ch for ch in request.POST.get("comment", "") if ch.isprintable())[:500],
                )
                messages.success(request, "Your changes have been committed.")
                return redirect(_sl_url(appliance))
        except (TransitionRefused, RoleRefused) as exc:
            messages.error(request, exc.reason)
        return redirect(reverse("gateway:changes", args=[appliance.lab.slug, appliance.hostname]))
    staged = appliance.staged_changes.select_related("staged_by")
    return render(request, "gateway_ui/changes.html", _ctx(request, appliance, {"staged": staged}))


# --- Alerts and log ----------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@appliance_view("view")
def alerts(request, appliance, role):
    form = RecipientForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        try:
            role_require(role, "alerts")
        except RoleRefused as exc:
            return _refused(request, appliance, exc.reason, status=403)
        if "alert_settings" in request.POST:
            return _alert_settings_post(request, appliance)
        if "delete" in request.POST:
            recipient_id = request.POST.get("delete", "")
            if not (recipient_id.isascii() and recipient_id.isdigit() and len(recipient_id) <= 18):
                messages.error(request, "Choose the alert recipient to delete.")
                return redirect(reverse("gateway:alerts", args=[appliance.lab.slug, appliance.hostname]))
            AlertRecipient.objects.filter(appliance=appliance, pk=int(recipient_id)).delete()
            messages.success(request, "Alert recipient deleted.")
            return redirect(reverse("gateway:alerts", args=[appliance.lab.slug, appliance.hostname]))
        if form.is_valid():
            sev = form.cleaned_data["severities"]
            AlertRecipient.objects.update_or_create(
                appliance=appliance,
                address=form.cleaned_data["address"],
                defaults={"classes": dict.fromkeys(form.cleaned_data["classes"], sev)},
            )
            messages.success(request, "Alert recipient saved.")
            return redirect(reverse("gateway:alerts", args=[appliance.lab.slug, appliance.hostname]))
        messages.error(request, "Enter a valid e-mail address and choose at least one class and one severity.")
    return render(
        request,
        "gateway_ui/alerts.html",
        _ctx(
            request,
            appliance,
            {"form": form, "recipients": appliance.alert_recipients.all(), "alerts": appliance.alerts.all()[:200]},
        ),
    )


def _alert_settings_post(request, appliance):
    """Alerts > Edit Settings: From Address and Wait Before Sending a Duplicate Alert."""
    from gateway_ui.alert_mail import alert_settings_save

    try:
        alert_settings_save(
            appliance=appliance,
            from_address=request.POST.get("from_address", ""),
            initial_seconds=int(request.POST.get("initial_seconds", "")),
            max_seconds=int(request.POST.get("max_seconds", "")),
            now=appliance_now(appliance),
            actor=request.user.get_username(),
        )
    except ValueError as exc:
        messages.error(request, getattr(exc, "reason", "Enter the numbers of seconds as whole numbers."))
    else:
        messages.success(request, "Alert settings saved.")
    return redirect(reverse("gateway:alerts", args=[appliance.lab.slug, appliance.hostname]))


@require_GET
@appliance_view("view")
def smartlicense_log_view(request, appliance, role):
    return render(
        request, "gateway_ui/log.html", _ctx(request, appliance, {"events": smartlicense_log(appliance=appliance)})
    )


# --- Security Services > Service Updates ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@appliance_view("view")
def service_updates(request, appliance, role):
    form = ProxyForm(
        request.POST if request.method == "POST" else None,
        initial={"host": appliance.proxy_host, "port": appliance.proxy_port, "username": appliance.proxy_username},
    )
    if request.method == "POST":
        try:
            role_require(role, "stage_proxy")
        except RoleRefused as exc:
            return _refused(request, appliance, exc.reason, status=403)
        if form.is_valid():
            ok, _ = _do(
                request,
                appliance,
                services.proxy_stage,
                "Proxy settings will be updated after commit.",
                host=form.cleaned_data["host"] or "",
                port=form.cleaned_data["port"],
                username=form.cleaned_data["username"] or "",
                password=form.cleaned_data["password"] or "",
                user=request.user,
            )
            if ok:
                return redirect(reverse("gateway:service_updates", args=[appliance.lab.slug, appliance.hostname]))
        else:
            messages.error(request, "Enter a valid proxy host and a port between 1 and 65535.")
    return render(
        request,
        "gateway_ui/service_updates.html",
        _ctx(request, appliance, {"form": form, "transport_modes": TransportMode}),
    )
