"""From a parsed customer paste (labs.paste) to a lab in the same state.

`plan_for(result)` composes the scenario builder's steps (enable, transport, register over
HTTP, request licences, shortages, faults, time travel, reservation codes): the same steps the
scenario library uses, so every state is reached through the real services. `plan_run`
executes them in a lab holding the starting world, and `differences` compares what the
appliance then shows with what the paste said, so anything not reproduced is listed.

The paste has no "now": the lab places the registration at its own current time and keeps
the intervals the paste shows (registration → last renewal attempt, evaluation used).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from cssm_portal import selectors as cssm_selectors
from gateway_ui import services as gw
from gateway_ui.clock import appliance_now
from labs.paste import LS, ParseResult, Target
from labs.scenarios.builder import Builder, _tag
from licensing_core.catalogue import licenses_for
from licensing_core.faults import Fault
from licensing_core.machines import AuthorizationState, LicenseState, TransitionRefused

EVAL_PERIOD = timedelta(days=90)
WORLD_HOSTS = ("esa1.example.com", "esa2.example.com", "sma1.example.com")
OOC = (LS.OOC_GRACE, LS.OOC_EXPIRED)
REGISTRATION_LABELS = {
    "unregistered": "Unregistered",
    "registering": "Unregistered - Registration Pending",
    "reg_failed": "Unregistered - Registration Failed",
    "registered": "Registered",
    "reg_expired": "Unregistered - Registration Expired",
    "unidentified": "Unidentified",
    "rsv_requested": "Reservation In Progress",
    "slr_installed": "Registered - Specific License Reservation",
    "plr_installed": "Registered - Permanent License Reservation",
}


@dataclass
class Step:
    text: str
    run: Callable[[Builder], None] = field(repr=False)


@dataclass
class Plan:
    hostname: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the lab will not reproduce as pasted

    def add(self, text: str, run: Callable[[Builder], None]) -> None:
        self.steps.append(Step(text, run))


def _days(td: timedelta) -> str:
    """``77 days 21 h``, ``9 h 1 min``, ``1 day``."""
    minutes = int(td.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    return " ".join(parts) or "0 min"


def _hostname(t: Target, plan_notes: list[str]) -> str:
    if t.hostname in WORLD_HOSTS:
        return t.hostname
    if t.pid.upper().startswith("M"):
        host = "sma1.example.com"
    elif t.pid.upper().endswith("V"):
        host = "esa2.example.com"
    else:
        host = "esa1.example.com"
    named = t.hostname or (f"PID:{t.pid},SN:{t.serial}" if t.pid else "")
    if named:
        plan_notes.append(f"The customer's appliance ({named}) is played by {host} of the lab's starting world.")
    return host


def _wanted(t: Target, product: str) -> set[str] | None:
    """The non-base licences the paste shows as requested (None: the paste does not list them)."""
    if not t.summary_seen:
        return None
    codes = {lic.code for lic in licenses_for(product) if not lic.is_base}
    return {line.code for line in t.licenses if line.code in codes and line.state != LS.NOT_REQUESTED}


def _request(host: str, codes: set[str]) -> Callable[[Builder], None]:
    def run(b: Builder) -> None:
        current = {row.code for row in b.appliance(host).licenses.all() if row.requested}
        base = {lic.code for lic in licenses_for(b.appliance(host).product) if lic.is_base}
        if codes == current - base:
            return
        with contextlib.suppress(TransitionRefused):  # nothing to change
            b.request_licenses(host, codes)

    return run


def _shortage(host: str, code: str) -> Callable[[Builder], None]:
    def run(b: Builder) -> None:
        va = b.va()
        tag = _tag(b.appliance(host).product, code)
        pool = cssm_selectors.pools([va]).filter(tag=tag).first()
        if pool is not None and pool.balance > 0:
            b.shortage(code=code, quantity=pool.balance, product=b.appliance(host).product)

    return run


def _register(host: str) -> Callable[[Builder], None]:
    def run(b: Builder) -> None:
        b.register(host, b.token())

    return run


def _advance(delta: timedelta) -> Callable[[Builder], None]:
    return lambda b: b.advance(hours=delta.total_seconds() / 3600)


def plan_for(result: ParseResult) -> Plan:
    t = result.target
    notes: list[str] = []
    host = _hostname(t, notes)
    plan = Plan(hostname=host, notes=notes)
    product = "SMA" if host.startswith("sma") else "ESA"
    if not result.usable:
        return plan
    if t.smart_enabled is False:
        plan.notes.append("Smart Software Licensing is not enabled: the appliance stays on classic licences.")
        return plan
    plan.add(f"Enable Smart Software Licensing on {host} and commit", lambda b: b.enable(host))
    wanted = _wanted(t, product)
    if t.reservation_mode:
        _plan_reservation(plan, t, host, product)
        return plan
    if t.transport == "gateway":
        plan.add(f"Set {host}'s transport to a Transport Gateway (this lab's)", lambda b: b.transport_gateway(host))
        if t.transport_url:
            plan.notes.append(f"The customer's gateway URL {t.transport_url} is replaced by this lab's.")
    if wanted is not None and t.registration not in ("registered", "reg_expired"):
        plan.add(f"Request the licences SUMMARY lists: {', '.join(sorted(wanted)) or 'none'}", _request(host, wanted))
    spent = _eval_spent(t)
    if spent:
        plan.add(f"Let the evaluation period run for {_days(spent)}", _advance(spent))
    registration = t.registration or "unregistered"
    if registration in ("unregistered", "unidentified"):
        return plan
    if registration == "registering":
        plan.notes.append("A registration in progress cannot be held still; the lab registers it.")
        registration = "registered"
    if registration == "reg_failed":
        plan.add("Turn on CSSM unreachable", lambda b: b.fault(Fault.CSSM_UNREACHABLE))
        plan.add(f"Register {host} with a new token from the ESA account (fails)", _register(host))
        plan.add("Turn CSSM unreachable off again", lambda b: b.fault(Fault.CSSM_UNREACHABLE, False))
        plan.notes.append("The paste does not say why registration failed; the lab fails it with CSSM unreachable.")
        return plan
    for line in t.licenses:
        if line.state in OOC and line.code:
            plan.add(f"Transfer the ESA account's {line.name} licences away (shortage)", _shortage(host, line.code))
    plan.add(f"Register {host} over the Smart Agent exchange with a token from the ESA account", _register(host))
    if wanted is not None:
        plan.add(f"Request the licences SUMMARY lists: {', '.join(sorted(wanted)) or 'none'}", _request(host, wanted))
    _plan_after_registration(plan, t, registration)
    return plan


def _eval_spent(t: Target) -> timedelta:
    if t.eval_remaining is None or t.eval_in_use is False and t.registration not in ("registered",):
        return timedelta(0)
    return EVAL_PERIOD - t.eval_remaining


def _plan_after_registration(plan: Plan, t: Target, registration: str) -> None:
    fault = Fault.TRANSPORT_GATEWAY_DOWN if t.transport == "gateway" else Fault.CSSM_UNREACHABLE
    if registration == "reg_expired":
        plan.add(f"Turn on {fault.label}", lambda b: b.fault(fault))
        plan.add("Advance 366 days (the ID certificate expires)", _advance(timedelta(days=366)))
        return
    if t.authorization == "auth_expired":
        gap = timedelta(days=91)
        if t.authorization_expires and t.registered_at and t.authorization_expires > t.registered_at:
            gap = max(gap, t.authorization_expires - t.registered_at + timedelta(days=1))
        plan.add(f"Turn on {fault.label}", lambda b: b.fault(fault))
        plan.add(f"Advance {_days(gap)} (the authorization expires)", _advance(gap))
        return
    latest = t.latest_time()
    gap = latest - t.registered_at if latest and t.registered_at and latest > t.registered_at else timedelta(0)
    if any(line.state == LS.OOC_EXPIRED for line in t.licenses):
        gap = max(gap, timedelta(days=31))
    if t.conversion in ("failed", "success"):
        gap = max(gap, timedelta(hours=2))
    if t.last_auth_ok is False and t.last_auth_at and t.registered_at:
        good = (t.authorized_at or t.registered_at) - t.registered_at
        if good > timedelta(0):
            plan.add(f"Advance {_days(good)} (renewals succeed)", _advance(good))
        plan.add(f"Turn on {fault.label}", lambda b: b.fault(fault))
        rest = max(gap - good, timedelta(days=30) - good if good < timedelta(days=30) else timedelta(hours=1))
        plan.add(f"Advance {_days(rest)} (the renewal fails)", _advance(rest))
        return
    if t.last_auth_ok is False:
        plan.add(f"Turn on {fault.label}", lambda b: b.fault(fault))
        plan.add("Advance 30 days (the renewal fails)", _advance(timedelta(days=30)))
        return
    if gap:
        plan.add(f"Advance {_days(gap)} (registration to the latest time in the paste)", _advance(gap))


def _plan_reservation(plan: Plan, t: Target, host: str, product: str) -> None:
    plan.add(f"Switch {host} to Specific/Permanent License Reservation", lambda b: b.reservation_mode(host))
    registration = t.registration or "unregistered"
    if registration in ("unregistered", "unidentified"):
        return
    codes: dict[str, str] = {}

    def request(b: Builder) -> None:
        codes["request"] = b.request_code(host)

    plan.add(f"Generate {host}'s reservation request code", request)
    if registration == "rsv_requested":
        return
    permanent = registration == "plr_installed"
    quantities = {line.code: line.count for line in t.licenses if line.state == LS.RESERVED_IN_COMPLIANCE and line.code}
    if not permanent and not quantities:
        first = next(lic for lic in licenses_for(product) if not lic.is_base)
        quantities = {first.code: 1}
        plan.notes.append(f"SUMMARY does not list the reserved licences; the lab reserves {first.name} only.")

    def reserve(b: Builder) -> None:
        codes["auth"] = b.reserve(host, codes["request"], permanent=permanent, quantities=quantities)

    kind = "permanent" if permanent else "specific"
    what = "" if permanent else ": " + ", ".join(f"{c} x{n}" for c, n in sorted(quantities.items()))
    plan.add(f"Authorize a {kind} reservation in the portal from the request code{what}", reserve)
    plan.add(f"Install the authorization code on {host}", lambda b: b.install(host, codes["auth"]))


def plan_run(*, plan: Plan, builder: Builder) -> None:
    builder.freeze()
    for step in plan.steps:
        step.run(builder)


def _registration_now(appliance) -> str:
    if appliance.in_reservation_mode and appliance.reservation_state in ("requested", "slr_installed", "plr_installed"):
        return {"requested": "rsv_requested"}.get(appliance.reservation_state, appliance.reservation_state)
    return appliance.registration_state


def differences(*, result: ParseResult, appliance) -> list[str]:
    """What the built appliance shows that differs from the paste, one sentence each."""
    t = result.target
    now = appliance_now(appliance)
    out = []
    if t.smart_enabled is False:
        return out
    if t.registration and _registration_now(appliance) != t.registration:
        out.append(
            f"Registration Status is {REGISTRATION_LABELS.get(_registration_now(appliance), '?')}, "
            f"the paste says {REGISTRATION_LABELS[t.registration]}."
        )
    if t.authorization and appliance.authorization_state != t.authorization:
        out.append(
            f"License Authorization Status is {appliance.get_authorization_state_display()}, "
            f"the paste says {AuthorizationState(t.authorization).label}."
        )
    if t.eval_remaining is not None and appliance.eval_eligible:
        remaining = gw.eval_remaining(appliance, now)
        if abs(remaining - t.eval_remaining) > timedelta(hours=1):
            out.append(f"Evaluation Period Remaining is {_days(remaining)}, the paste says {_days(t.eval_remaining)}.")
    elif t.eval_remaining and not appliance.eval_eligible:
        out.append(f"{appliance.hostname} has no evaluation period (a virtual appliance without classic licences).")
    if t.last_auth_ok is not None and appliance.last_auth_ok is not None and appliance.last_auth_ok != t.last_auth_ok:
        out.append("The last authorization renewal attempt " + ("failed" if t.last_auth_ok else "succeeded") + ".")
    rows = {row.code: row for row in appliance.licenses.all()}
    for line in t.licenses:
        row = rows.get(line.code)
        if row is None:
            out.append(f"{line.name} is not a licence of {appliance.hostname}.")
        elif row.state != line.state:
            out.append(
                f"{line.name} is {LicenseState(row.state).label}, the paste says {LicenseState(line.state).label}."
            )
    return out
