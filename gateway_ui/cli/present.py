"""What the CLI prints: STATUS (domain-notes §3.3, newer key/value form), SUMMARY (§3.4),
the request/release pick-lists (§3.2) and license_smart_agentstatus (§1.10).

Values come from the same fields and helpers as the GUI's Smart Software Licensing
page (gateway_ui.views._status_context): the labels of licensing_core.machines,
services.eval_remaining and licensing_core.formats, only in the CLI's wording.
"""

from __future__ import annotations

from datetime import datetime

from gateway_ui import services
from gateway_ui.models import DIRECT_DISPLAY_URL, Appliance, TransportMode
from gateway_ui.selectors import authorization_time_shown, registration_status_label
from licensing_core import formats
from licensing_core.catalogue import License, licenses_for
from licensing_core.machines import (
    ConversionState,
    LicenseState,
    RegistrationState,
    ReservationState,
)

RS = RegistrationState
RV = ReservationState
LS = LicenseState

NO_ATTEMPT = "No communication attempted"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def cli_with_time(label: str, at: datetime) -> str:
    """``Registered ( 22 Aug 2018 07:21 )`` (§3.3)."""
    return f"{label} ( {formats.gateway_datetime(at)} )"


def cli_attempt(ok: bool | None, at: datetime | None) -> str:
    """``Succeeded on 22 Aug 2018 07:21``; before any attempt the GUI's ``No communication attempted``
    (the 13.x parser of [SARF-cli] looks for that text, not the older ``NONE``)."""
    if ok is None or at is None:
        return NO_ATTEMPT
    return formats.attempt_status_cli(ok, at)


def commit_time(dt: datetime) -> str:
    """``Mon Mar 03 09:00:00 2031 GMT`` (locale independent)."""
    return (
        f"{_DAYS[dt.weekday()]} {_MONTHS[dt.month - 1]} {dt.day:02d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {dt.year} GMT"
    )


def status_lines(appliance: Appliance, now: datetime) -> list[str]:
    registered = appliance.registration_state == RS.REGISTERED
    lines = ["Smart Licensing is: Enabled"]
    if appliance.in_reservation_mode:
        lines.append(f"Registration Mode: {appliance.get_registration_mode_display()}")
    lines.append(f"Evaluation Period: {'In Use' if appliance.eval_running_since is not None else 'Not In Use'}")
    lines.append(f"Evaluation Period Remaining: {formats.eval_remaining_cli(services.eval_remaining(appliance, now))}")
    reg = registration_status_label(appliance)
    if registered and appliance.registered_at:
        reg = cli_with_time(reg, appliance.registered_at)
    lines.append(f"Registration Status: {reg}")
    if registered and appliance.id_expires_at:
        lines.append(f"Registration Expires On: {formats.gateway_datetime(appliance.id_expires_at)}")
    auth = appliance.get_authorization_state_display()
    if authorization_time_shown(appliance):
        auth = cli_with_time(auth, appliance.last_auth_success_at)
    lines.append(f"License Authorization Status: {auth}")
    if registered and appliance.auth_expires_at:
        lines.append(f"Expires On: {formats.gateway_datetime(appliance.auth_expires_at)}")
    if not appliance.in_reservation_mode:
        lines.append(
            f"Last Authorization Renewal Attempt: {cli_attempt(appliance.last_auth_ok, appliance.last_auth_attempt_at)}"
        )
        lines.append(
            "Last Registration Renewal Attempt Status: "
            + cli_attempt(appliance.last_id_ok, appliance.last_id_attempt_at)
        )
        if appliance.transport_mode == TransportMode.GATEWAY:
            lines += [f"Transport Settings: {TransportMode.GATEWAY.label}", f"({appliance.transport_url})"]
        else:
            lines += ["Transport Settings: Direct", f"({DIRECT_DISPLAY_URL})"]
        lines.append(f"Conversion Status: {ConversionState(appliance.dlc_state).label}")
    return lines


def _license_rows(appliance: Appliance) -> list[tuple[License, object]]:
    rows = {r.code: r for r in appliance.licenses.all()}
    return [(lic, rows[lic.code]) for lic in licenses_for(appliance.product) if lic.code in rows]


def requestable(appliance: Appliance) -> list[License]:
    """Licences the REQUESTSMART_LICENSE list offers: not requested, not a product base licence."""
    return [lic for lic, row in _license_rows(appliance) if not lic.is_base and row.state == LS.NOT_REQUESTED]


def releasable(appliance: Appliance) -> list[tuple[License, str]]:
    """Licences the RELEASESMART_LICENSE list offers: every requested one (base licences too; they refuse)."""
    return [(lic, LS(row.state).label) for lic, row in _license_rows(appliance) if row.state != LS.NOT_REQUESTED]


def pick_list(entries: list[tuple[str, str]]) -> list[str]:
    """Numbered ``Feature Name / License Authorization Status`` table (§3.2, [SARF-clikw])."""
    number_w = len(str(len(entries))) + 2  # "1. " ... "10." keep the names aligned
    width = max([len("Feature Name")] + [number_w + len(name) for name, _ in entries]) + 4
    out = [f" {'Feature Name'.ljust(width)}License Authorization Status"]
    out.append(" " + "-" * (width + len("License Authorization Status")))
    for i, (name, status) in enumerate(entries, start=1):
        out.append(f" {(f'{i}.'.ljust(number_w) + name).ljust(width)}{status}")
    return out


def _expiry(appliance: Appliance, row, now: datetime) -> str:
    state = LS(row.state)
    at: datetime | None = None
    if state == LS.EVAL and appliance.eval_eligible:
        at = now + services.eval_remaining(appliance, now)
    elif state in (LS.IN_COMPLIANCE, LS.OOC_GRACE, LS.OOC_EXPIRED, LS.AUTH_EXPIRED):
        at = appliance.auth_expires_at
    elif state == LS.RESERVED_IN_COMPLIANCE:
        return row.reserved_end.isoformat() if row.reserved_end else "Never"
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "NA"


def summary_lines(appliance: Appliance, now: datetime) -> list[str]:
    """SUMMARY: one row per requested licence, or the sourced 'no active licenses' line."""
    active = [(lic, row) for lic, row in _license_rows(appliance) if row.state != LS.NOT_REQUESTED]
    if not active:
        return ["There are no active licenses to display"]
    name_w = max(48, max(len(lic.name) for lic, _ in active) + 4)
    head = "".join(
        (
            "FeatureName".ljust(name_w),
            "LicenseAuthorisationStatus".ljust(28),
            "AuthorisationExpiryDate".ljust(25),
            "Count",
        )
    )
    out = [head, "-" * len(head)]
    for lic, row in active:
        count = row.reserved_count if LS(row.state) == LS.RESERVED_IN_COMPLIANCE and row.reserved_count else 1
        out.append(
            f"{lic.name.ljust(name_w)}{LS(row.state).label.ljust(28)}{_expiry(appliance, row, now).ljust(25)}{count}"
        )
    return out


def agent_status_lines(appliance: Appliance) -> list[str]:
    last = formats.gateway_agent_datetime(appliance.agent_updated_at) if appliance.agent_updated_at else "Never updated"
    return [
        f"{'Component'.ljust(26)}{'Version'.ljust(11)}Last Updated",
        f"{'Smart License Agent'.ljust(26)}{appliance.agent_version.ljust(11)}{last}",
    ]
