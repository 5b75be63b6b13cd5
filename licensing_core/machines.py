"""Smart Licensing state machines as explicit transition tables (domain-notes §1).

Each machine is a plain ``{(state, action): new_state}`` dict so a reader can
check it line by line against the tables in §1 (row ids R1–R8, S1–S8, L1–L10
are noted next to the entries). Anything not in a table is refused with a
sentence the user can read on the page; specific reasons come from
``refusals``, everything else gets a generic "X is not available while ..."
sentence.

Enum ``.label`` values are the exact GUI texts; machines never read the clock
or the database — callers store the state and pass it back in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db.models import TextChoices

from .catalogue import License


class TransitionRefused(Exception):
    """An action is not allowed in the current state; ``reason`` is for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- State enums (labels are word for word from the GUI) ---------------------


class LicensingMode(TextChoices):
    CLASSIC = "classic", "Classic"
    SMART = "smart", "Smart"


class RegistrationMode(TextChoices):
    SMART_LICENSE_REGISTRATION = "smart_license_registration", "Smart License Registration"
    LICENSE_RESERVATION = "license_reservation", "Specific/Permanent License Reservation"


class RegistrationState(TextChoices):
    UNREGISTERED = "unregistered", "Unregistered"
    REGISTERING = "registering", "Unregistered - Registration Pending"
    REG_FAILED = "reg_failed", "Unregistered - Registration Failed"
    REGISTERED = "registered", "Registered"
    REG_EXPIRED = "reg_expired", "Unregistered - Registration Expired"
    UNIDENTIFIED = "unidentified", "Unidentified"


class AuthorizationState(TextChoices):
    NO_LICENSE_IN_USE = "no_license_in_use", "No License In Use"
    EVAL = "eval", "Evaluation Mode"
    EVAL_EXPIRED = "eval_expired", "Evaluation Period Expired"
    AUTHORIZED = "authorized", "Authorized"
    OUT_OF_COMPLIANCE = "out_of_compliance", "Out of Compliance"
    AUTH_EXPIRED = "auth_expired", "Authorization Expired"
    AUTHORIZED_RESERVED = "authorized_reserved", "Authorized - Reserved"
    NOT_AUTHORIZED = "not_authorized", "Not Authorized"


class ReservationState(TextChoices):
    # NONE is never shown (the page is in Smart License Registration mode then);
    # ENABLED and RETURNED both show "Unregistered" in the Registration Status row.
    NONE = "none", "Reservation Not Enabled"
    ENABLED = "enabled", "Unregistered"
    REQUESTED = "requested", "Reservation In Progress"
    SLR_INSTALLED = "slr_installed", "Registered - Specific License Reservation"
    PLR_INSTALLED = "plr_installed", "Registered - Permanent License Reservation"
    RETURNED = "returned", "Unregistered"


class LicenseState(TextChoices):
    NOT_REQUESTED = "not_requested", "Not requested"
    REQUEST_IN_PROGRESS = "request_in_progress", "Request in progress"
    EVAL = "eval", "Eval"
    EVAL_EXPIRED = "eval_expired", "Eval Expired"
    IN_COMPLIANCE = "in_compliance", "In Compliance"
    OOC_GRACE = "ooc_grace", "Out Of Compliance"
    OOC_EXPIRED = "ooc_expired", "Out Of Compliance (grace expired)"
    AUTH_EXPIRED = "auth_expired", "Authorization Expired"
    RESERVED_IN_COMPLIANCE = "reserved_in_compliance", "Reserved in Compliance"
    NOT_AUTHORIZED = "not_authorized", "Not Authorized"


class ConversionState(TextChoices):
    NOT_STARTED = "not_started", "Not Started"
    IN_PROGRESS = "in_progress", "In Progress"
    SUCCESS = "success", "success"
    FAILED = "failed", "failed"


class AgentUpdateState(TextChoices):
    UP_TO_DATE = "up_to_date", "Up to date"
    UPDATING = "updating", "Update in progress"
    UPDATED = "updated", "Updated"
    FAILED = "failed", "Update failed"


# --- Machine -------------------------------------------------------------------

Key = tuple[str, str]


@dataclass(frozen=True)
class Machine:
    """A transition table plus the sentences shown when an action is refused.

    ``refusals`` keys are either ``(state, action)`` (most specific) or a bare
    ``action`` (refused from every state where the table has no entry).
    """

    name: str
    states: type[TextChoices]
    table: Mapping[Key, str]
    refusals: Mapping[Key | str, str] = field(default_factory=dict)
    status_noun: str = "status"  # used in the generic refusal sentence
    action_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        valid = set(self.states.values)
        for (state, _action), new in self.table.items():
            if state not in valid or new not in valid:
                raise ValueError(f"{self.name}: table uses a state outside {self.states.__name__}")
        for key in self.refusals:
            if isinstance(key, tuple) and key in self.table:
                raise ValueError(f"{self.name}: {key} is both allowed and refused")

    @property
    def actions(self) -> frozenset[str]:
        named = {a for (_s, a) in self.table} | {k[1] if isinstance(k, tuple) else k for k in self.refusals}
        return frozenset(named)

    def action_label(self, action: str) -> str:
        return self.action_labels.get(action) or action.replace("_", " ").capitalize()

    def apply(self, state: str, action: str) -> str:
        """Return the new state, or raise TransitionRefused with a readable reason."""
        state = self.states(state)
        if action not in self.actions:
            raise ValueError(f"{self.name}: unknown action {action!r}")
        try:
            return self.states(self.table[(state, action)])
        except KeyError:
            raise TransitionRefused(self.refusal_reason(state, action)) from None

    def allowed(self, state: str, action: str) -> bool:
        return (self.states(state), action) in self.table

    def actions_from(self, state: str) -> set[str]:
        state = self.states(state)
        return {a for (s, a) in self.table if s == state}

    def refusal_reason(self, state: str, action: str) -> str:
        state = self.states(state)
        specific = self.refusals.get((state, action)) or self.refusals.get(action)
        if specific:
            return specific
        return f"{self.action_label(action)} is not available while the {self.status_noun} is {state.label}."


def _rows(sources: Iterable[str], action: str, target: str) -> dict[Key, str]:
    """Same action from several states to one target (one row of a §1 table)."""
    return {(s, action): target for s in sources}


def _stay(sources: Iterable[str], action: str) -> dict[Key, str]:
    """Allowed action that keeps the state (settings edits, renewals)."""
    return {(s, action): s for s in sources}


# --- 1.1 Licensing mode ----------------------------------------------------------

LM = LicensingMode
LICENSING_MODE = Machine(
    name="licensing_mode",
    states=LicensingMode,
    status_noun="licensing mode",
    table={(LM.CLASSIC, "enable"): LM.SMART},
    refusals={
        (LM.SMART, "enable"): "Smart Software Licensing is already enabled.",
        "disable": (
            "Smart Software Licensing cannot be disabled. Once it is enabled, you cannot revert back "
            "to classic licensing; the only way to do so is by completely reverting or resetting the "
            "appliance. If you have any questions, contact Cisco TAC."
        ),
    },
    action_labels={"enable": "Enable Smart Software Licensing", "disable": "Disable Smart Software Licensing"},
)

# --- 1.2 Registration mode ---------------------------------------------------------

RM = RegistrationMode
REGISTRATION_MODE = Machine(
    name="registration_mode",
    states=RegistrationMode,
    status_noun="registration mode",
    table={
        (RM.SMART_LICENSE_REGISTRATION, "enable_reservation"): RM.LICENSE_RESERVATION,  # S1
        (RM.LICENSE_RESERVATION, "disable_reservation"): RM.SMART_LICENSE_REGISTRATION,  # S7
    },
    refusals={
        (RM.LICENSE_RESERVATION, "enable_reservation"): "License reservation is already enabled.",
        (RM.SMART_LICENSE_REGISTRATION, "disable_reservation"): "License reservation is not enabled.",
    },
    action_labels={
        "enable_reservation": "Specific/Permanent License Reservation",
        "disable_reservation": "Change Type",
    },
)

# --- 1.3 Registration (online) -------------------------------------------------------

RS = RegistrationState
_NOT_REGISTERED = (RS.UNREGISTERED, RS.REG_FAILED, RS.REG_EXPIRED, RS.UNIDENTIFIED)
_ONLY_BEFORE_REGISTERING = " Deregister the product first."

REGISTRATION = Machine(
    name="registration",
    states=RegistrationState,
    status_noun="registration status",
    table={
        **_rows(_NOT_REGISTERED, "register", RS.REGISTERING),  # R1, R5 (with "reregister" tick)
        (RS.REGISTERING, "registration_succeeded"): RS.REGISTERED,  # R2
        (RS.REGISTERING, "registration_failed"): RS.REG_FAILED,  # R3
        # R4: Reregister replaces the instance with a fresh registration; it goes
        # through REGISTERING so the outcome uses the same two actions as R2/R3.
        (RS.REGISTERED, "reregister"): RS.REGISTERING,
        (RS.REGISTERED, "deregister"): RS.UNREGISTERED,  # R6
        (RS.REGISTERED, "renew_id"): RS.REGISTERED,  # R7 (success or failure both stay)
        (RS.REGISTERED, "renew_auth"): RS.REGISTERED,  # §1.4 renewal needs a registration
        (RS.REGISTERED, "id_cert_expired"): RS.REG_EXPIRED,  # R8
        # §1.2 / S7 + §9 Q4: leaving reservation mode with a code installed.
        (RS.UNREGISTERED, "reservation_kept"): RS.UNIDENTIFIED,
        (RS.UNIDENTIFIED, "reservation_resumed"): RS.UNREGISTERED,
        # Settings that can change only before registering (§1.3, §9 Q16).
        **_stay(_NOT_REGISTERED, "edit_transport"),
        **_stay(_NOT_REGISTERED, "change_registration_mode"),
    },
    refusals={
        (RS.REGISTERED, "register"): "The product is already registered. Use Reregister to register it again.",
        (RS.REGISTERING, "register"): "A registration is already in progress.",
        (RS.REGISTERING, "reregister"): "A registration is already in progress.",
        "renew_id": "Renew Certificates Now is available only after successful registration.",
        "renew_auth": "Renew Authorization Now is available only after successful registration.",
        "deregister": "Deregister is available only while the product is registered.",
        "reregister": "Reregister is available only while the product is registered. Use Register instead.",
        "edit_transport": ("You can change the transport settings only before registering." + _ONLY_BEFORE_REGISTERING),
        "change_registration_mode": (
            "You can change the registration mode only before registering." + _ONLY_BEFORE_REGISTERING
        ),
    },
    action_labels={
        "register": "Register",
        "registration_succeeded": "Completing a registration",
        "registration_failed": "Failing a registration",
        "reregister": "Reregister",
        "deregister": "Deregister",
        "renew_id": "Renew Certificates Now",
        "renew_auth": "Renew Authorization Now",
        "id_cert_expired": "ID certificate expiry",
        "reservation_kept": "Keeping an installed reservation",
        "reservation_resumed": "Resuming an installed reservation",
        "edit_transport": "Editing the transport settings",
        "change_registration_mode": "Changing the registration mode",
    },
)

# --- 1.4 Authorization (overall License Authorization Status) ---------------------

AS = AuthorizationState
_ONLINE_AUTH = (AS.EVAL, AS.EVAL_EXPIRED, AS.NO_LICENSE_IN_USE, AS.AUTHORIZED, AS.OUT_OF_COMPLIANCE, AS.AUTH_EXPIRED)
_REGISTERED_AUTH = (AS.NO_LICENSE_IN_USE, AS.AUTHORIZED, AS.OUT_OF_COMPLIANCE, AS.AUTH_EXPIRED)
_RESERVATION_AUTH = (AS.EVAL, AS.EVAL_EXPIRED, AS.NOT_AUTHORIZED, AS.AUTHORIZED_RESERVED)

AUTHORIZATION = Machine(
    name="authorization",
    states=AuthorizationState,
    status_noun="license authorization status",
    table={
        # Registration, 30-day renewal, Renew Authorization Now, any request/release.
        **_rows(_ONLINE_AUTH, "authorized", AS.AUTHORIZED),
        **_rows(_ONLINE_AUTH, "out_of_compliance", AS.OUT_OF_COMPLIANCE),
        **_rows(_ONLINE_AUTH, "nothing_in_use", AS.NO_LICENSE_IN_USE),
        # 90 days without a successful authorization.
        **_rows((AS.AUTHORIZED, AS.OUT_OF_COMPLIANCE), "auth_deadline_passed", AS.AUTH_EXPIRED),
        # Deregister: back to the evaluation period if time is left (§9 Q2).
        **_rows(_REGISTERED_AUTH, "deregistered_eval", AS.EVAL),
        **_rows(_REGISTERED_AUTH, "deregistered_no_eval", AS.EVAL_EXPIRED),
        (AS.EVAL, "eval_exhausted"): AS.EVAL_EXPIRED,
        # Reservation (§1.6): install / reauthorize / return.
        **_rows(_RESERVATION_AUTH, "reservation_authorized", AS.AUTHORIZED_RESERVED),
        **_rows(_RESERVATION_AUTH, "reservation_not_authorized", AS.NOT_AUTHORIZED),
        **_rows((AS.AUTHORIZED_RESERVED, AS.NOT_AUTHORIZED), "reservation_returned_eval", AS.EVAL),
        **_rows((AS.AUTHORIZED_RESERVED, AS.NOT_AUTHORIZED), "reservation_returned_no_eval", AS.EVAL_EXPIRED),
    },
    refusals={
        "auth_deadline_passed": "Only an authorized product can have its authorization expire.",
        (AS.EVAL_EXPIRED, "eval_exhausted"): "The evaluation period has already expired.",
    },
    action_labels={
        "authorized": "Authorization",
        "out_of_compliance": "Out of compliance",
        "nothing_in_use": "Releasing every license",
        "auth_deadline_passed": "Authorization expiry",
        "deregistered_eval": "Returning to the evaluation period",
        "deregistered_no_eval": "Ending the evaluation period",
        "eval_exhausted": "Evaluation period expiry",
        "reservation_authorized": "Installing a reservation",
        "reservation_not_authorized": "Installing a reservation",
        "reservation_returned_eval": "Returning a reservation",
        "reservation_returned_no_eval": "Returning a reservation",
    },
)

# --- 1.6 Reservation ---------------------------------------------------------------

RV = ReservationState
_INSTALLED = (RV.SLR_INSTALLED, RV.PLR_INSTALLED)

RESERVATION = Machine(
    name="reservation",
    states=ReservationState,
    status_noun="reservation status",
    table={
        (RV.NONE, "enable"): RV.ENABLED,  # S1
        **_stay(_INSTALLED, "enable"),  # §9 Q4: re-enabling restores the kept reservation
        (RV.ENABLED, "request_code"): RV.REQUESTED,  # S2
        (RV.RETURNED, "request_code"): RV.REQUESTED,
        (RV.REQUESTED, "request_code"): RV.REQUESTED,  # re-asking returns the same code
        (RV.REQUESTED, "cancel_request"): RV.ENABLED,  # S3
        (RV.REQUESTED, "install_slr"): RV.SLR_INSTALLED,  # S4
        (RV.REQUESTED, "install_plr"): RV.PLR_INSTALLED,  # S4
        (RV.SLR_INSTALLED, "reauthorize"): RV.SLR_INSTALLED,  # S5
        **_rows(_INSTALLED, "return_reservation", RV.RETURNED),  # S6
        **_rows((RV.ENABLED, RV.REQUESTED, RV.RETURNED), "disable", RV.NONE),  # S7
        **_stay(_INSTALLED, "disable"),  # S7: installed reservation "is maintained"
        (RV.SLR_INSTALLED, "reserved_license_expired"): RV.SLR_INSTALLED,  # S8
    },
    refusals={
        (RV.ENABLED, "enable"): "License reservation is already enabled.",
        (RV.REQUESTED, "enable"): "License reservation is already enabled.",
        (RV.RETURNED, "enable"): "License reservation is already enabled.",
        (RV.NONE, "disable"): "License reservation is not enabled.",
        (RV.NONE, "request_code"): "Enable license reservation before generating a request code.",
        **_rows(
            _INSTALLED,
            "request_code",
            "An authorization code is already installed. Generate a return code before requesting a new reservation.",
        ),
        "cancel_request": "There is no pending request code to cancel.",
        **_rows(
            _INSTALLED,
            "install_slr",
            "An authorization code is already installed. Use Reauthorize to update the reservation.",
        ),
        **_rows(
            _INSTALLED,
            "install_plr",
            "An authorization code is already installed. Use Reauthorize to update the reservation.",
        ),
        "install_slr": "Generate a request code before installing an authorization code.",
        "install_plr": "Generate a request code before installing an authorization code.",
        (RV.PLR_INSTALLED, "reauthorize"): (
            "A permanent license reservation cannot be updated, so Reauthorize is not available."
        ),
        "reauthorize": "Reauthorize is available only after a specific license reservation is installed.",
        "return_reservation": "There is no installed reservation to return.",
        (RV.PLR_INSTALLED, "reserved_license_expired"): "A permanent license reservation does not expire.",
        "reserved_license_expired": "Only an installed specific license reservation has licences that expire.",
    },
    action_labels={
        "enable": "Enable license reservation",
        "request_code": "Register",
        "cancel_request": "Cancel",
        "install_slr": "Install Authorization Code",
        "install_plr": "Install Authorization Code",
        "reauthorize": "Reauthorize",
        "return_reservation": "Return code",
        "disable": "Change Type",
        "reserved_license_expired": "Reserved licence expiry",
    },
)

# --- 1.7 Per-licence state -----------------------------------------------------------

LS = LicenseState
_REQUESTED_LS = tuple(s for s in LS if s not in (LS.NOT_REQUESTED,))
_ONLINE_OUTCOME_FROM = (
    LS.REQUEST_IN_PROGRESS,
    LS.EVAL,
    LS.EVAL_EXPIRED,
    LS.IN_COMPLIANCE,
    LS.OOC_GRACE,
    LS.OOC_EXPIRED,
    LS.AUTH_EXPIRED,
    LS.NOT_AUTHORIZED,  # a product without evaluation, authorized by its first registration
)
_BACK_TO_EVAL_FROM = (
    LS.REQUEST_IN_PROGRESS,
    LS.IN_COMPLIANCE,
    LS.OOC_GRACE,
    LS.OOC_EXPIRED,
    LS.AUTH_EXPIRED,
    LS.RESERVED_IN_COMPLIANCE,
    LS.NOT_AUTHORIZED,
)
_RESERVATION_OUTCOME_FROM = (
    LS.REQUEST_IN_PROGRESS,
    LS.EVAL,
    LS.EVAL_EXPIRED,
    LS.RESERVED_IN_COMPLIANCE,
    LS.NOT_AUTHORIZED,
)

LICENSE = Machine(
    name="license",
    states=LicenseState,
    status_noun="license status",
    table={
        (LS.NOT_REQUESTED, "request"): LS.REQUEST_IN_PROGRESS,  # L1 / L2 first half
        # L1 second half, L4 (deregister), return of a reservation (S6).
        **_rows(_BACK_TO_EVAL_FROM, "eval_granted", LS.EVAL),
        **_rows((*_BACK_TO_EVAL_FROM, LS.EVAL), "no_eval_left", LS.EVAL_EXPIRED),  # L9 and friends
        # A product that never had an evaluation period (a new virtual gateway,
        # guide "Enabling Smart Software Licensing" note): a requested licence
        # is simply not authorized until registration or a reservation covers it.
        **_rows(_BACK_TO_EVAL_FROM, "no_eval", LS.NOT_AUTHORIZED),
        # L2, L3, L7: CSSM reports enough licences.
        **_rows(_ONLINE_OUTCOME_FROM, "authorized", LS.IN_COMPLIANCE),
        # L6: shortage or expired term. An OOC licence stays where it is so the
        # 30-day grace keeps counting from the first day out of compliance.
        **_rows(
            (LS.REQUEST_IN_PROGRESS, LS.EVAL, LS.EVAL_EXPIRED, LS.IN_COMPLIANCE, LS.AUTH_EXPIRED, LS.NOT_AUTHORIZED),
            "shortage",
            LS.OOC_GRACE,
        ),
        (LS.OOC_GRACE, "shortage"): LS.OOC_GRACE,
        (LS.OOC_EXPIRED, "shortage"): LS.OOC_EXPIRED,
        (LS.OOC_GRACE, "grace_expired"): LS.OOC_EXPIRED,  # L8
        **_rows((LS.IN_COMPLIANCE, LS.OOC_GRACE, LS.OOC_EXPIRED), "auth_expired", LS.AUTH_EXPIRED),
        # L10: install / reauthorize a reservation code.
        **_rows(_RESERVATION_OUTCOME_FROM, "reserved", LS.RESERVED_IN_COMPLIANCE),
        **_rows(_RESERVATION_OUTCOME_FROM, "not_authorized", LS.NOT_AUTHORIZED),
        # L5: release from any settled requested state.
        **_rows((s for s in _REQUESTED_LS if s != LS.REQUEST_IN_PROGRESS), "release", LS.NOT_REQUESTED),
    },
    refusals={
        "request": "This license is already requested.",
        (LS.NOT_REQUESTED, "release"): "This license is not requested, so there is nothing to release.",
        (LS.REQUEST_IN_PROGRESS, "release"): ("The license request is still in progress. Try again in a few minutes."),
        (
            LS.EVAL_EXPIRED,
            "eval_granted",
        ): "The evaluation period has expired. Register the product to use this license.",
        "grace_expired": "Only a license that is out of compliance has a grace period.",
    },
    action_labels={
        "request": "License request",
        "release": "License release",
        "eval_granted": "Evaluation",
        "no_eval_left": "Evaluation expiry",
        "no_eval": "Leaving a license without evaluation",
        "authorized": "Authorization",
        "shortage": "Out of compliance",
        "grace_expired": "Grace period expiry",
        "auth_expired": "Authorization expiry",
        "reserved": "Reservation",
        "not_authorized": "Removing the reservation",
    },
)

_USABLE = frozenset({LS.EVAL, LS.IN_COMPLIANCE, LS.OOC_GRACE, LS.RESERVED_IN_COMPLIANCE})


def feature_usable(state: str) -> bool:
    """Whether the feature works; otherwise its pages show *License Unavailable*."""
    return LS(state) in _USABLE


BASE_LICENSE_RELEASE_REFUSAL = "Product Base License which is requested by default and cannot be released"


def license_release_refusal(license: License, *, virtual: bool = False) -> str | None:
    """Reason a licence cannot be released, or None. Base licences never can (§1.7, §9 Q3)."""
    del virtual  # same rule on hardware and virtual appliances
    return BASE_LICENSE_RELEASE_REFUSAL if license.is_base else None


def check_release(license: License, state: str, *, virtual: bool = False) -> LicenseState:
    """Release a licence or raise TransitionRefused (base-licence rule first)."""
    reason = license_release_refusal(license, virtual=virtual)
    if reason:
        raise TransitionRefused(reason)
    return LICENSE.apply(state, "release")


def base_license_fixed(license: License, *, virtual: bool) -> bool:
    """Hardware base licences are always In Compliance: no eval, no OOC (§9 Q3)."""
    return license.is_base and not virtual


def apply_license(license: License, state: str, action: str, *, virtual: bool) -> LicenseState:
    """LICENSE.apply plus the base-licence rules.

    On hardware a base licence ignores every outcome and stays In Compliance;
    on virtual appliances it behaves like any licence but can never be released.
    """
    if action == "release":
        return check_release(license, state, virtual=virtual)
    if base_license_fixed(license, virtual=virtual):
        return LS.IN_COMPLIANCE
    return LICENSE.apply(state, action)


def initial_license_state(
    license: License, *, virtual: bool, eval_available: bool, registered: bool, eval_granted: bool = True
) -> LicenseState:
    """State right after enabling Smart Licensing: base licences are requested by default.

    `eval_granted` is False for a product that gets no evaluation period at all
    (a new virtual gateway without classic licences): its requested licences
    are Not Authorized rather than "Eval Expired", since no evaluation ran.
    """
    if not license.is_base:
        return LS.NOT_REQUESTED
    if base_license_fixed(license, virtual=virtual):
        return LS.IN_COMPLIANCE
    if registered:
        return LS.REQUEST_IN_PROGRESS
    if not eval_granted:
        return LS.NOT_AUTHORIZED
    return LS.EVAL if eval_available else LS.EVAL_EXPIRED


# --- 1.9 Device Led Conversion ----------------------------------------------------------

CS = ConversionState
DLC = Machine(
    name="dlc",
    states=ConversionState,
    status_noun="Device Led Conversion status",
    table={
        (CS.NOT_STARTED, "start"): CS.IN_PROGRESS,
        (CS.IN_PROGRESS, "succeed"): CS.SUCCESS,
        (CS.IN_PROGRESS, "fail"): CS.FAILED,
        (CS.FAILED, "restart"): CS.IN_PROGRESS,  # license_smart > conversion_start
    },
    refusals={
        (CS.IN_PROGRESS, "start"): "A license conversion is already in progress.",
        (CS.IN_PROGRESS, "restart"): "A license conversion is already in progress.",
        (CS.SUCCESS, "start"): "The classic licenses have already been converted to smart licenses.",
        (CS.SUCCESS, "restart"): "The classic licenses have already been converted to smart licenses.",
        (CS.FAILED, "start"): "The last conversion failed. Fix the reported problem and start the conversion again.",
        (CS.NOT_STARTED, "restart"): "No conversion has run yet.",
    },
    action_labels={
        "start": "Device Led Conversion",
        "restart": "Restarting the conversion",
        "succeed": "Completing the conversion",
        "fail": "Failing the conversion",
    },
)

# --- 1.10 Smart Agent update -----------------------------------------------------------

AU = AgentUpdateState
AGENT_UPDATE = Machine(
    name="agent_update",
    states=AgentUpdateState,
    status_noun="Smart Agent update status",
    table={
        **_rows((AU.UP_TO_DATE, AU.UPDATED, AU.FAILED), "update", AU.UPDATING),
        (AU.UPDATING, "already_current"): AU.UP_TO_DATE,  # "smart license is up to date"
        (AU.UPDATING, "update_completed"): AU.UPDATED,  # "smart_agent update completed"
        (AU.UPDATING, "update_failed"): AU.FAILED,
    },
    refusals={(AU.UPDATING, "update"): "A Smart Agent update is already in progress."},
    action_labels={
        "update": "Update Now",
        "already_current": "Finishing an update",
        "update_completed": "Finishing an update",
        "update_failed": "Failing an update",
    },
)

MACHINES: dict[str, Machine] = {
    m.name: m
    for m in (
        LICENSING_MODE,
        REGISTRATION_MODE,
        REGISTRATION,
        AUTHORIZATION,
        RESERVATION,
        LICENSE,
        DLC,
        AGENT_UPDATE,
    )
}


# --- Aggregation (§1.4, INFERRED) -----------------------------------------------------


def aggregate_authorization(
    license_states: Iterable[str],
    *,
    registered: bool,
    reservation: bool,
    eval_left: bool | None = None,
) -> AuthorizationState:
    """Overall *License Authorization Status* from the per-licence states.

    Online and registered, the worst state wins: Authorization Expired >
    Out of Compliance > Authorized > No License In Use. Reservation mode:
    an installed reservation makes the product Authorized - Reserved (the
    licences it does not cover show Not Authorized on their own rows, as the
    guide describes after Reauthorize); without one, Not Authorized >
    Evaluation Period Expired > Evaluation Mode. Unregistered: Evaluation Mode
    while eval time is left, else Evaluation Period Expired — or Not
    Authorized for a product that never had an evaluation period.
    ``eval_left`` defaults to what the licences say (any Eval → yes, any Eval
    Expired → no).
    """
    states = {LS(s) for s in license_states}
    requested = states - {LS.NOT_REQUESTED}
    if not requested:
        return AS.NO_LICENSE_IN_USE
    if reservation:
        if LS.RESERVED_IN_COMPLIANCE in requested:
            return AS.AUTHORIZED_RESERVED
        if LS.NOT_AUTHORIZED in requested:
            return AS.NOT_AUTHORIZED
        if LS.EVAL_EXPIRED in requested:
            return AS.EVAL_EXPIRED
        if LS.EVAL in requested:
            return AS.EVAL
        return AS.NO_LICENSE_IN_USE
    if registered:
        if LS.AUTH_EXPIRED in requested:
            return AS.AUTH_EXPIRED
        if requested & {LS.OOC_GRACE, LS.OOC_EXPIRED}:
            return AS.OUT_OF_COMPLIANCE
        if LS.IN_COMPLIANCE in requested:
            return AS.AUTHORIZED
        return AS.NO_LICENSE_IN_USE  # only requests still in flight
    if LS.NOT_AUTHORIZED in requested and not requested & {LS.EVAL, LS.EVAL_EXPIRED}:
        return AS.NOT_AUTHORIZED  # no evaluation period was ever granted
    if eval_left is None:
        eval_left = LS.EVAL in requested or LS.EVAL_EXPIRED not in requested
    return AS.EVAL if eval_left else AS.EVAL_EXPIRED
