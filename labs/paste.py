"""Reading a customer's ``license_smart`` STATUS and SUMMARY output (domain-notes §3.3, §3.4).

`paste_parse(text)` turns a paste into a `Target` (the licensing state it describes) and an
account of what was understood (each recognised field, with its line number) and what was
not. Both STATUS forms are read: the newer key/value one (``Registration Status: Registered
( 22 Aug 2018 07:21 )``) and the older sectioned one (``Registration:`` / ``Status:
UNREGISTERED``); the GUI's Smart Software Licensing page copied as text (label, tab, value)
reads the same way. SUMMARY rows give the per-licence statuses.

Nothing here touches the database; labs.reproduce turns a Target into builder steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from licensing_core.catalogue import ESA_LICENSES, SMA_LICENSES, License
from licensing_core.machines import AuthorizationState, ConversionState, LicenseState

AS = AuthorizationState
LS = LicenseState

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                        "dec"), start=1)}  # fmt: skip

# Registration Status values (newer form, GUI, and the older upper-case words).
REGISTRATION_VALUES = {
    "unregistered": "unregistered",
    "unregistered - registration pending": "registering",
    "unregistered - registration failed": "reg_failed",
    "registration failed": "reg_failed",
    "registered": "registered",
    "unregistered - registration expired": "reg_expired",
    "registration expired": "reg_expired",
    "unidentified": "unidentified",
    "reservation in progress": "rsv_requested",
    "registered - specific license reservation": "slr_installed",
    "registered - permanent license reservation": "plr_installed",
}
AUTHORIZATION_VALUES = {
    "no license in use": AS.NO_LICENSE_IN_USE,
    "evaluation mode": AS.EVAL,
    "eval mode": AS.EVAL,
    "evaluation period expired": AS.EVAL_EXPIRED,
    "eval expired": AS.EVAL_EXPIRED,
    "evaluation expired": AS.EVAL_EXPIRED,
    "authorized": AS.AUTHORIZED,
    "out of compliance": AS.OUT_OF_COMPLIANCE,
    "authorization expired": AS.AUTH_EXPIRED,
    "authorized - reserved": AS.AUTHORIZED_RESERVED,
    "not authorized": AS.NOT_AUTHORIZED,
}
LICENSE_VALUES = {s.label.lower(): s.value for s in LicenseState} | {
    "available": LS.IN_COMPLIANCE,
    "not_available": LS.NOT_REQUESTED,
    "na_ooc": LS.OOC_GRACE,
    "in compliance": LS.IN_COMPLIANCE,
    "out of compliance": LS.OOC_GRACE,
}
CONVERSION_VALUES = {s.label.lower(): s.value for s in ConversionState} | {"not started": ConversionState.NOT_STARTED}

_DATE = r"(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{1,2}):(\d{2})"
_WITH_DATE = re.compile(r"^(?P<label>.*?)\s*\(\s*(?P<date>" + _DATE + r")\s*\)\s*$")
_ATTEMPT = re.compile(r"^(?P<ok>succeeded|failed)\s+on\s+(?P<date>" + _DATE + r")", re.IGNORECASE)
_DURATION = re.compile(
    r"^(\d+)\s*days?,?\s*(\d+)\s*(?:hours?|hrs?),?\s*(\d+)\s*(?:minutes?|min),?\s*(\d+)\s*(?:seconds?|sec)$",
    re.IGNORECASE,
)
_UDI = re.compile(r"PID:\s*(?P<pid>[^,\s]+)\s*,\s*SN:\s*(?P<sn>\S+)", re.IGNORECASE)
_RULE = re.compile(r"^[=\-_ ]{3,}$")
_PROMPT = re.compile(r"^(\S+>\s*\S*|\[\]>\s*\S*|choose the operation you want to perform:?|- [A-Z_]+ - .*)$",
                     re.IGNORECASE)  # fmt: skip
_CODE_BLOCK = re.compile(r"^\((?P<code>[A-Za-z0-9_]+)\)$")
SUMMARY_HEAD = re.compile(r"^FeatureName\s+LicenseAuthori[sz]ationStatus", re.IGNORECASE)
OLD_SECTIONS = {
    "registration",
    "license authorization",
    "license conversion",
    "utility",
    "transport",
    "evaluation period",
    "smart licensing status",
    "license usage",
    "product information",
    "agent version",
    "transport configuration",
}
MAX_LINES = 2000


@dataclass
class Understood:
    line: int
    label: str
    value: str


@dataclass
class NotUnderstood:
    line: int
    text: str
    reason: str = ""


@dataclass
class LicenseLine:
    line: int
    name: str
    code: str | None
    state: str  # a LicenseState value
    count: int = 1


@dataclass
class Target:
    """The licensing state a paste describes; None = the paste does not say."""

    smart_enabled: bool | None = None
    reservation_mode: bool | None = None
    eval_in_use: bool | None = None
    eval_remaining: timedelta | None = None
    registration: str | None = None  # a REGISTRATION_VALUES value
    registered_at: datetime | None = None
    registration_expires: datetime | None = None
    authorization: str | None = None  # an AuthorizationState value
    authorized_at: datetime | None = None
    authorization_expires: datetime | None = None
    last_auth_ok: bool | None = None
    last_auth_at: datetime | None = None
    last_id_ok: bool | None = None
    last_id_at: datetime | None = None
    transport: str | None = None  # "direct" or "gateway"
    transport_url: str = ""
    conversion: str | None = None  # a ConversionState value
    hostname: str = ""
    pid: str = ""
    serial: str = ""
    smart_account: str = ""
    virtual_account: str = ""
    licenses: list[LicenseLine] = field(default_factory=list)
    summary_seen: bool = False

    @property
    def product(self) -> str:
        return "SMA" if self.pid.upper().startswith("M") else "ESA"

    def latest_time(self) -> datetime | None:
        times = [t for t in (self.registered_at, self.authorized_at, self.last_auth_at, self.last_id_at) if t]
        return max(times) if times else None


@dataclass
class ParseResult:
    target: Target
    understood: list[Understood] = field(default_factory=list)
    not_understood: list[NotUnderstood] = field(default_factory=list)
    skipped: int = 0  # blank lines, rules, CLI prompts and menus
    problems: list[str] = field(default_factory=list)

    @property
    def status_seen(self) -> bool:
        t = self.target
        return t.smart_enabled is not None or t.registration is not None or t.authorization is not None

    @property
    def usable(self) -> bool:
        """Enough to build a lab from: a STATUS with at least one state line, or a SUMMARY."""
        return self.status_seen or self.target.summary_seen


class PasteError(ValueError):
    """A paste that cannot be read at all, with a sentence for the user."""


def parse_gateway_datetime(text: str) -> datetime | None:
    """``22 Aug 2018 07:21`` (UTC)."""
    m = re.search(_DATE, text)
    if not m:
        return None
    day, mon, year, hour, minute = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    try:
        return datetime(int(year), month, int(day), int(hour), int(minute), tzinfo=UTC)
    except ValueError:
        return None


def parse_duration(text: str) -> timedelta | None:
    m = _DURATION.match(text.strip())
    if not m:
        return None
    d, h, mi, s = (int(g) for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def _licence_by_name(name: str) -> License | None:
    wanted = " ".join(name.split()).lower()
    for lic in ESA_LICENSES + SMA_LICENSES:
        if lic.name.lower() == wanted:
            return lic
    return None


def _licence_by_code(code: str) -> License | None:
    for lic in ESA_LICENSES + SMA_LICENSES:
        if lic.code.lower() == code.lower():
            return lic
    return None


class _Parser:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.result = ParseResult(target=Target())
        self.section = ""
        self.block: dict | None = None  # older "License Usage" (CODE) block
        self.in_summary = False
        self.expect_url = False

    # --- bookkeeping ---------------------------------------------------------------------------
    def ok(self, n: int, label: str, value: str) -> None:
        self.result.understood.append(Understood(n, label, value))

    def bad(self, n: int, text: str, reason: str = "") -> None:
        self.result.not_understood.append(NotUnderstood(n, text, reason))

    # --- main loop -----------------------------------------------------------------------------
    def run(self) -> ParseResult:
        for n, raw in enumerate(self.lines, start=1):
            line = raw.rstrip().replace("\u00a0", " ")
            text = line.strip()
            if not text or _RULE.match(text):
                self.result.skipped += 1
                continue
            if self.in_summary and self._summary_row(n, line):
                continue
            self.in_summary = False
            if self.expect_url:
                self.expect_url = False
                if text.startswith("(") and text.endswith(")"):
                    self.result.target.transport_url = text[1:-1].strip()
                    self.ok(n, "Transport URL", self.result.target.transport_url)
                    continue
            if SUMMARY_HEAD.match(text):
                self.in_summary = True
                self.result.target.summary_seen = True
                self.ok(n, "SUMMARY table", "header")
                continue
            if text.lower() == "there are no active licenses to display":
                self.result.target.summary_seen = True
                self.ok(n, "SUMMARY", "No active licenses")
                continue
            if text.lower().startswith("smart licensing is") and ":" not in text:
                self._enabled(n, text[len("smart licensing is") :].strip())
                continue
            if text.endswith(":") and text[:-1].strip().lower() in OLD_SECTIONS:
                self._section(text[:-1].strip().lower())
                continue
            if text.lower() in OLD_SECTIONS:
                self._section(text.lower())
                continue
            if m := _CODE_BLOCK.match(text):
                self._licence_block(n, m.group("code"))
                continue
            if _PROMPT.match(text):
                self.result.skipped += 1
                continue
            key, sep, value = self._split(line)
            if not sep:
                self.bad(n, text, "not a STATUS or SUMMARY line")
                continue
            self._pair(n, text, key.strip().lower(), value.strip())
        self._finish_block()
        return self.result

    @staticmethod
    def _split(line: str) -> tuple[str, str, str]:
        if "\t" in line.strip():
            key, _, value = line.strip().partition("\t")
            return key.rstrip(":"), "\t", value
        return line.partition(":")

    def _section(self, name: str) -> None:
        self._finish_block()
        self.section = name

    # --- key/value lines -----------------------------------------------------------------------
    def _pair(self, n: int, text: str, key: str, value: str) -> None:
        t = self.result.target
        if self.block is not None and key in ("description", "count", "version", "status"):
            self.block[key] = (n, value)
            return
        handlers = {
            "smart licensing is": lambda: self._enabled(n, value),
            "registration mode": lambda: self._mode(n, value),
            "evaluation period": lambda: self._eval_use(n, value),
            "evaluation mode": lambda: self._eval_use(n, value),
            "evaluation period remaining": lambda: self._eval_remaining(n, value),
            "registration status": lambda: self._registration(n, value),
            "registration expires on": lambda: self._date(n, value, "registration_expires", "Registration Expires On"),
            "license authorization status": lambda: self._authorization(n, value),
            "expires on": lambda: self._date(n, value, "authorization_expires", "Authorization Expires On"),
            "authorization expires on": lambda: self._date(
                n, value, "authorization_expires", "Authorization Expires On"
            ),
            "last authorization renewal attempt": lambda: self._attempt(n, value, "auth"),
            "last authorization renewal attempt status": lambda: self._attempt(n, value, "auth"),
            "last registration renewal attempt status": lambda: self._attempt(n, value, "id"),
            "last communication attempt": lambda: self._attempt(n, value, "auth"),
            "transport settings": lambda: self._transport(n, value),
            "conversion status": lambda: self._conversion(n, value),
            "device led conversion status": lambda: self._conversion(n, value),
            "product instance name": lambda: self._set(n, "hostname", value, "Product Instance Name"),
            "smart account": lambda: self._set(n, "smart_account", value, "Smart Account"),
            "virtual account": lambda: self._set(n, "virtual_account", value, "Virtual Account"),
            "udi": lambda: self._udi(n, value),
            "export-controlled functionality": lambda: self.ok(n, "Export-Controlled Functionality", value),
            "automatic conversion enabled": lambda: self.ok(n, "Automatic Conversion Enabled", value),
            "smart agent for licensing": lambda: self.ok(n, "Smart Agent version", value),
            "smart agent version": lambda: self.ok(n, "Smart Agent version", value),
        }
        if key == "status":
            self._old_status(n, text, value)
        elif (key, self.section) in (("type", "transport"), ("mode", "transport configuration")):
            self._transport(n, value)
        elif key == "url" and self.section == "transport configuration":
            t.transport_url = value
            self.ok(n, "Transport URL", value)
        elif key in handlers:
            handlers[key]()
        else:
            self.bad(n, text, f'"{key}" is not a field of STATUS')

    def _set(self, n: int, attr: str, value: str, label: str) -> None:
        setattr(self.result.target, attr, value)
        self.ok(n, label, value)

    def _enabled(self, n: int, value: str) -> None:
        v = value.strip().rstrip(".").lower()
        if v in ("enabled", "enable"):
            self.result.target.smart_enabled = True
        elif v in ("disabled", "disable"):
            self.result.target.smart_enabled = False
        else:
            self.bad(n, f"Smart Licensing is {value}", "expected Enabled or Disabled")
            return
        self.ok(n, "Smart Licensing", "Enabled" if self.result.target.smart_enabled else "Disabled")

    def _mode(self, n: int, value: str) -> None:
        v = value.lower()
        if "reservation" in v:
            self.result.target.reservation_mode = True
            self.ok(n, "Registration Mode", "Specific/Permanent License Reservation")
        elif "registration" in v:
            self.result.target.reservation_mode = False
            self.ok(n, "Registration Mode", "Smart License Registration")
        else:
            self.bad(n, f"Registration Mode: {value}", "unknown registration mode")

    def _eval_use(self, n: int, value: str) -> None:
        v = value.lower()
        if v in ("in use", "in_use"):
            self.result.target.eval_in_use = True
        elif v in ("not in use", "not_in_use"):
            self.result.target.eval_in_use = False
        else:
            self.bad(n, f"Evaluation Period: {value}", "expected In Use or Not In Use")
            return
        self.ok(n, "Evaluation Period", value)

    def _eval_remaining(self, n: int, value: str) -> None:
        remaining = parse_duration(value)
        if remaining is None:
            self.bad(n, f"Evaluation Period Remaining: {value}", "expected e.g. 87 days 1 hours 41 minutes 0 seconds")
            return
        if remaining > timedelta(days=90):
            self.bad(n, f"Evaluation Period Remaining: {value}", "the evaluation period is 90 days at most")
            return
        self.result.target.eval_remaining = remaining
        self.ok(n, "Evaluation Period Remaining", value)

    def _registration(self, n: int, value: str) -> None:
        label, at = self._label_and_date(value)
        state = REGISTRATION_VALUES.get(label.lower())
        if state is None:
            self.bad(n, f"Registration Status: {value}", "unknown registration status")
            return
        self.result.target.registration = state
        if at:
            self.result.target.registered_at = at
        self.ok(n, "Registration Status", value)

    def _authorization(self, n: int, value: str) -> None:
        label, at = self._label_and_date(value)
        state = AUTHORIZATION_VALUES.get(label.lower())
        if state is None:
            self.bad(n, f"License Authorization Status: {value}", "unknown authorization status")
            return
        self.result.target.authorization = str(state)
        if at:
            self.result.target.authorized_at = at
        self.ok(n, "License Authorization Status", value)

    def _old_status(self, n: int, text: str, value: str) -> None:
        """``Status:`` inside a section of the older form."""
        if self.section == "registration":
            self._registration(n, value)
        elif self.section == "license authorization":
            self._authorization(n, value)
        elif self.section == "license conversion":
            self._conversion(n, value)
        elif self.section == "utility":
            self.ok(n, "Utility", value)
        else:
            self.bad(n, text, "a Status line outside a known section")

    @staticmethod
    def _label_and_date(value: str) -> tuple[str, datetime | None]:
        m = _WITH_DATE.match(value)
        if m:
            return m.group("label").strip(), parse_gateway_datetime(m.group("date"))
        return value.strip(), None

    def _date(self, n: int, value: str, attr: str, label: str) -> None:
        at = parse_gateway_datetime(value)
        if at is None:
            self.bad(n, f"{label}: {value}", "expected a date like 22 Aug 2018 07:21")
            return
        setattr(self.result.target, attr, at)
        self.ok(n, label, value)

    def _attempt(self, n: int, value: str, which: str) -> None:
        label = "Last Authorization Renewal Attempt" if which == "auth" else "Last Registration Renewal Attempt"
        if value.upper() == "NONE" or value.lower() == "no communication attempted":
            self.ok(n, label, "No communication attempted")
            return
        m = _ATTEMPT.match(value)
        at = parse_gateway_datetime(m.group("date")) if m else None
        if not m or at is None:
            self.bad(n, f"{label}: {value}", "expected Succeeded on <date> or Failed on <date>")
            return
        setattr(self.result.target, f"last_{which}_ok", m.group("ok").lower() == "succeeded")
        setattr(self.result.target, f"last_{which}_at", at)
        self.ok(n, label, value)

    def _transport(self, n: int, value: str) -> None:
        v = value.lower()
        if "gateway" in v or "satellite" in v:
            self.result.target.transport = "gateway"
        elif v in ("direct", "transportcallhome", "transportsmart", "callhome", "smart"):
            self.result.target.transport = "direct"
        else:
            self.bad(n, f"Transport: {value}", "expected Direct or Transport Gateway")
            return
        self.ok(n, "Transport Settings", value)
        self.expect_url = True

    def _conversion(self, n: int, value: str) -> None:
        state = CONVERSION_VALUES.get(value.lower())
        if state is None:
            self.bad(n, f"Conversion Status: {value}", "unknown conversion status")
            return
        self.result.target.conversion = str(state)
        self.ok(n, "Conversion Status", value)

    def _udi(self, n: int, value: str) -> None:
        m = _UDI.search(value)
        if not m or "..." in value:
            self.bad(n, f"UDI: {value}", "expected PID:<model>,SN:<serial>")
            return
        self.result.target.pid, self.result.target.serial = m.group("pid"), m.group("sn")
        self.ok(n, "UDI", value)

    # --- licences ------------------------------------------------------------------------------
    def _licence_block(self, n: int, code: str) -> None:
        self._finish_block()
        self.block = {"line": n, "code": code}

    def _finish_block(self) -> None:
        block, self.block = self.block, None
        if block is None:
            return
        n, code = block["line"], block["code"]
        lic = _licence_by_code(code)
        status = block.get("status")
        if lic is None:
            self.bad(n, f"({code})", "not a licence of this product")
            return
        state = LICENSE_VALUES.get(status[1].lower()) if status else None
        if state is None:
            self.bad(status[0] if status else n, f"({code}) Status: {status[1] if status else ''}".strip(),
                     "unknown licence status")  # fmt: skip
            return
        count = block.get("count", (n, "1"))[1]
        self.result.target.licenses.append(
            LicenseLine(n, lic.name, lic.code, str(state), int(count) if count.isdigit() else 1)
        )
        self.result.target.summary_seen = True
        self.ok(n, lic.name, LicenseState(state).label)

    def _summary_row(self, n: int, line: str) -> bool:
        parts = [p for p in re.split(r"\s{2,}|\t", line.strip()) if p]
        if len(parts) < 2:
            return False
        name, status = parts[0], parts[1]
        state = LICENSE_VALUES.get(status.lower())
        lic = _licence_by_name(name)
        if state is None:
            self.bad(n, line.strip(), f'unknown licence status "{status}"')
            return True
        if lic is None:
            self.bad(n, line.strip(), f'"{name}" is not a licence this lab knows')
            return True
        count = parts[-1] if len(parts) >= 4 and parts[-1].isdigit() else "1"
        self.result.target.licenses.append(LicenseLine(n, lic.name, lic.code, str(state), int(count)))
        self.ok(n, lic.name, LicenseState(state).label + (f" (count {count})" if count != "1" else ""))
        return True


def paste_parse(text: str) -> ParseResult:
    """Read a paste; never raises on content (bad lines are listed), only on an empty paste."""
    if not text or not text.strip():
        raise PasteError("The paste is empty: paste the output of license_smart > STATUS (and SUMMARY).")
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise PasteError(f"The paste has {len(lines)} lines; paste at most {MAX_LINES} (STATUS and SUMMARY only).")
    result = _Parser(lines).run()
    t = result.target
    if not result.usable:
        result.problems.append(
            "No STATUS or SUMMARY line was recognised, so there is no state to build. Paste the output of "
            "license_smart > STATUS (and SUMMARY), starting at the Smart Licensing is: line."
        )
        return result
    if not result.status_seen:
        result.problems.append("No STATUS output: only the licences of SUMMARY are known.")
    elif t.registration is None:
        result.problems.append("No Registration Status line: the appliance is taken as Unregistered.")
    if t.smart_enabled is None and (t.registration or t.authorization):
        t.smart_enabled = True
    if t.reservation_mode is None:
        t.reservation_mode = (t.registration or "") in ("rsv_requested", "slr_installed", "plr_installed")
    if t.authorization is None and result.status_seen:
        result.problems.append("No License Authorization Status line.")
    if t.registration == "registered" and t.registered_at is None:
        result.problems.append("The registration date is missing: the lab registers now.")
    return result
