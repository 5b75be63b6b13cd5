"""State machines: every (state, action) pair, the §1 rows, and random walks."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing_core.catalogue import license_by_code
from licensing_core.machines import (
    AGENT_UPDATE,
    AUTHORIZATION,
    BASE_LICENSE_RELEASE_REFUSAL,
    DLC,
    LICENSE,
    LICENSING_MODE,
    MACHINES,
    REGISTRATION,
    REGISTRATION_MODE,
    RESERVATION,
    AgentUpdateState,
    AuthorizationState,
    ConversionState,
    LicenseState,
    LicensingMode,
    Machine,
    RegistrationMode,
    RegistrationState,
    ReservationState,
    TransitionRefused,
    aggregate_authorization,
    apply_license,
    check_release,
    feature_usable,
    initial_license_state,
    license_release_refusal,
)

AS, LS, RS, RV, CS, AU = (
    AuthorizationState,
    LicenseState,
    RegistrationState,
    ReservationState,
    ConversionState,
    AgentUpdateState,
)

# Words and characters that betray code rather than a sentence for the user.
JARGON = re.compile(r"_|None|Error|Traceback|dict|tuple|\bself\b|[<>{}\[\]]|'")

ALL_PAIRS = [
    pytest.param(machine, state, action, id=f"{machine.name}:{state.value}:{action}")
    for machine in MACHINES.values()
    for state in machine.states
    for action in sorted(machine.actions)
]


@pytest.mark.parametrize(("machine", "state", "action"), ALL_PAIRS)
def test_every_state_action_pair_is_either_in_the_table_or_refused_readably(machine, state, action):
    if (state, action) in machine.table:
        assert machine.allowed(state, action)
        assert action in machine.actions_from(state)
        assert machine.apply(state, action) == machine.table[(state, action)]
        assert isinstance(machine.apply(state.value, action), machine.states)
    else:
        assert not machine.allowed(state, action)
        assert action not in machine.actions_from(state)
        with pytest.raises(TransitionRefused) as info:
            machine.apply(state, action)
        reason = info.value.reason
        assert reason
        assert reason == str(info.value)
        assert reason[0].isupper()
        assert not JARGON.search(reason), reason


def test_the_machines_registry_lists_every_machine_once():
    assert set(MACHINES) == {
        "licensing_mode",
        "registration_mode",
        "registration",
        "authorization",
        "reservation",
        "license",
        "dlc",
        "agent_update",
    }
    for name, machine in MACHINES.items():
        assert machine.name == name
        assert set(machine.states.values) >= {s for (s, _a) in machine.table}


# Rows of domain-notes §1, written out so a reviewer can tick them off.
SPEC_ROWS = [
    # §1.1
    (LICENSING_MODE, LicensingMode.CLASSIC, "enable", LicensingMode.SMART),
    # §1.2
    (
        REGISTRATION_MODE,
        RegistrationMode.SMART_LICENSE_REGISTRATION,
        "enable_reservation",
        RegistrationMode.LICENSE_RESERVATION,
    ),
    (
        REGISTRATION_MODE,
        RegistrationMode.LICENSE_RESERVATION,
        "disable_reservation",
        RegistrationMode.SMART_LICENSE_REGISTRATION,
    ),
    # §1.3 R1/R5
    (REGISTRATION, RS.UNREGISTERED, "register", RS.REGISTERING),
    (REGISTRATION, RS.REG_FAILED, "register", RS.REGISTERING),
    (REGISTRATION, RS.REG_EXPIRED, "register", RS.REGISTERING),
    (REGISTRATION, RS.UNIDENTIFIED, "register", RS.REGISTERING),
    (REGISTRATION, RS.REGISTERING, "registration_succeeded", RS.REGISTERED),  # R2
    (REGISTRATION, RS.REGISTERING, "registration_failed", RS.REG_FAILED),  # R3
    (REGISTRATION, RS.REGISTERED, "reregister", RS.REGISTERING),  # R4
    (REGISTRATION, RS.REGISTERED, "deregister", RS.UNREGISTERED),  # R6
    (REGISTRATION, RS.REGISTERED, "renew_id", RS.REGISTERED),  # R7
    (REGISTRATION, RS.REGISTERED, "renew_auth", RS.REGISTERED),
    (REGISTRATION, RS.REGISTERED, "id_cert_expired", RS.REG_EXPIRED),  # R8
    (REGISTRATION, RS.UNREGISTERED, "reservation_kept", RS.UNIDENTIFIED),  # §9 Q4
    (REGISTRATION, RS.UNREGISTERED, "edit_transport", RS.UNREGISTERED),
    # §1.4
    (AUTHORIZATION, AS.EVAL, "authorized", AS.AUTHORIZED),
    (AUTHORIZATION, AS.NO_LICENSE_IN_USE, "out_of_compliance", AS.OUT_OF_COMPLIANCE),
    (AUTHORIZATION, AS.AUTHORIZED, "auth_deadline_passed", AS.AUTH_EXPIRED),
    (AUTHORIZATION, AS.OUT_OF_COMPLIANCE, "auth_deadline_passed", AS.AUTH_EXPIRED),
    (AUTHORIZATION, AS.AUTH_EXPIRED, "authorized", AS.AUTHORIZED),
    (AUTHORIZATION, AS.AUTHORIZED, "deregistered_eval", AS.EVAL),
    (AUTHORIZATION, AS.AUTHORIZED, "deregistered_no_eval", AS.EVAL_EXPIRED),
    (AUTHORIZATION, AS.EVAL, "eval_exhausted", AS.EVAL_EXPIRED),
    (AUTHORIZATION, AS.EVAL, "reservation_authorized", AS.AUTHORIZED_RESERVED),
    (AUTHORIZATION, AS.AUTHORIZED_RESERVED, "reservation_not_authorized", AS.NOT_AUTHORIZED),
    # §1.6
    (RESERVATION, RV.NONE, "enable", RV.ENABLED),  # S1
    (RESERVATION, RV.ENABLED, "request_code", RV.REQUESTED),  # S2
    (RESERVATION, RV.REQUESTED, "request_code", RV.REQUESTED),  # same code again
    (RESERVATION, RV.REQUESTED, "cancel_request", RV.ENABLED),  # S3
    (RESERVATION, RV.REQUESTED, "install_slr", RV.SLR_INSTALLED),  # S4
    (RESERVATION, RV.REQUESTED, "install_plr", RV.PLR_INSTALLED),  # S4
    (RESERVATION, RV.SLR_INSTALLED, "reauthorize", RV.SLR_INSTALLED),  # S5
    (RESERVATION, RV.SLR_INSTALLED, "return_reservation", RV.RETURNED),  # S6
    (RESERVATION, RV.PLR_INSTALLED, "return_reservation", RV.RETURNED),  # S6
    (RESERVATION, RV.REQUESTED, "disable", RV.NONE),  # S7, request cancelled
    (RESERVATION, RV.SLR_INSTALLED, "disable", RV.SLR_INSTALLED),  # S7, reservation maintained
    (RESERVATION, RV.SLR_INSTALLED, "enable", RV.SLR_INSTALLED),  # §9 Q4 restore
    (RESERVATION, RV.SLR_INSTALLED, "reserved_license_expired", RV.SLR_INSTALLED),  # S8
    (RESERVATION, RV.RETURNED, "request_code", RV.REQUESTED),
    # §1.7
    (LICENSE, LS.NOT_REQUESTED, "request", LS.REQUEST_IN_PROGRESS),  # L1/L2
    (LICENSE, LS.REQUEST_IN_PROGRESS, "eval_granted", LS.EVAL),  # L1
    (LICENSE, LS.REQUEST_IN_PROGRESS, "authorized", LS.IN_COMPLIANCE),  # L2
    (LICENSE, LS.REQUEST_IN_PROGRESS, "shortage", LS.OOC_GRACE),  # L2
    (LICENSE, LS.EVAL, "authorized", LS.IN_COMPLIANCE),  # L3
    (LICENSE, LS.EVAL, "shortage", LS.OOC_GRACE),  # L3
    (LICENSE, LS.IN_COMPLIANCE, "eval_granted", LS.EVAL),  # L4
    (LICENSE, LS.OOC_GRACE, "eval_granted", LS.EVAL),  # L4
    (LICENSE, LS.IN_COMPLIANCE, "release", LS.NOT_REQUESTED),  # L5
    (LICENSE, LS.EVAL, "release", LS.NOT_REQUESTED),  # L5
    (LICENSE, LS.IN_COMPLIANCE, "shortage", LS.OOC_GRACE),  # L6
    (LICENSE, LS.OOC_GRACE, "authorized", LS.IN_COMPLIANCE),  # L7
    (LICENSE, LS.OOC_GRACE, "grace_expired", LS.OOC_EXPIRED),  # L8
    (LICENSE, LS.OOC_GRACE, "shortage", LS.OOC_GRACE),  # grace keeps counting
    (LICENSE, LS.EVAL, "no_eval_left", LS.EVAL_EXPIRED),  # L9
    (LICENSE, LS.EVAL, "reserved", LS.RESERVED_IN_COMPLIANCE),  # L10
    (LICENSE, LS.RESERVED_IN_COMPLIANCE, "not_authorized", LS.NOT_AUTHORIZED),  # L10 reauthorize
    (LICENSE, LS.RESERVED_IN_COMPLIANCE, "eval_granted", LS.EVAL),  # S6 return
    (LICENSE, LS.IN_COMPLIANCE, "auth_expired", LS.AUTH_EXPIRED),
    # §1.9
    (DLC, CS.NOT_STARTED, "start", CS.IN_PROGRESS),
    (DLC, CS.IN_PROGRESS, "succeed", CS.SUCCESS),
    (DLC, CS.IN_PROGRESS, "fail", CS.FAILED),
    (DLC, CS.FAILED, "restart", CS.IN_PROGRESS),
    # §1.10
    (AGENT_UPDATE, AU.UP_TO_DATE, "update", AU.UPDATING),
    (AGENT_UPDATE, AU.UPDATING, "already_current", AU.UP_TO_DATE),
    (AGENT_UPDATE, AU.UPDATING, "update_completed", AU.UPDATED),
    (AGENT_UPDATE, AU.UPDATING, "update_failed", AU.FAILED),
]


@pytest.mark.parametrize(("machine", "before", "action", "after"), SPEC_ROWS)
def test_spec_rows(machine, before, action, after):
    assert machine.apply(before, action) == after


SPEC_REFUSALS = [
    (LICENSING_MODE, LicensingMode.SMART, "disable", "contact Cisco TAC"),
    (LICENSING_MODE, LicensingMode.SMART, "disable", "cannot be disabled"),
    (REGISTRATION, RS.REGISTERED, "edit_transport", "You can change the transport settings only before registering."),
    (REGISTRATION, RS.REGISTERED, "change_registration_mode", "only before registering"),
    (REGISTRATION, RS.REG_FAILED, "deregister", "only while the product is registered"),  # R3: no DEREGISTER
    (REGISTRATION, RS.UNREGISTERED, "renew_auth", "only after successful registration"),
    (REGISTRATION, RS.REGISTERED, "register", "Use Reregister"),
    (RESERVATION, RV.PLR_INSTALLED, "reauthorize", "permanent license reservation cannot be updated"),
    (RESERVATION, RV.ENABLED, "install_slr", "Generate a request code"),
    (RESERVATION, RV.ENABLED, "cancel_request", "no pending request code"),
    (LICENSE, LS.EVAL_EXPIRED, "eval_granted", "evaluation period has expired"),
    (LICENSE, LS.NOT_REQUESTED, "release", "not requested"),
    (DLC, CS.SUCCESS, "start", "already been converted"),
    (AUTHORIZATION, AS.EVAL, "deregistered_eval", "is not available while the license authorization status is"),
]


@pytest.mark.parametrize(("machine", "state", "action", "words"), SPEC_REFUSALS)
def test_specific_refusal_reasons(machine, state, action, words):
    with pytest.raises(TransitionRefused, match=re.escape(words)):
        machine.apply(state, action)


def test_generic_refusal_names_the_action_and_the_state_label():
    assert REGISTRATION.refusal_reason(RS.REGISTERING, "deregister") == (
        "Deregister is available only while the product is registered."
    )
    assert AGENT_UPDATE.refusal_reason(AU.UP_TO_DATE, "update_failed") == (
        "Failing an update is not available while the Smart Agent update status is Up to date."
    )


def test_unknown_action_is_a_programming_error_not_a_refusal():
    with pytest.raises(ValueError):
        REGISTRATION.apply(RS.UNREGISTERED, "frobnicate")
    with pytest.raises(ValueError):
        REGISTRATION.apply("no-such-state", "register")


def test_machine_rejects_a_table_with_states_outside_its_enum():
    with pytest.raises(ValueError, match="outside"):
        Machine(name="bad", states=LicensingMode, table={("classic", "go"): "elsewhere"})


def test_machine_rejects_a_pair_that_is_both_allowed_and_refused():
    with pytest.raises(ValueError, match="both allowed and refused"):
        Machine(
            name="bad",
            states=LicensingMode,
            table={("classic", "enable"): "smart"},
            refusals={("classic", "enable"): "No."},
        )


def test_action_label_falls_back_to_a_capitalised_action_name():
    machine = Machine(name="m", states=LicensingMode, table={("classic", "turn_on"): "smart"})
    assert machine.action_label("turn_on") == "Turn on"
    assert machine.refusal_reason("smart", "turn_on") == "Turn on is not available while the status is Smart."


def test_gui_labels_are_word_for_word():
    assert RS.REGISTERING.label == "Unregistered - Registration Pending"
    assert RS.REG_FAILED.label == "Unregistered - Registration Failed"
    assert RS.REG_EXPIRED.label == "Unregistered - Registration Expired"
    assert AS.NO_LICENSE_IN_USE.label == "No License In Use"
    assert AS.EVAL.label == "Evaluation Mode"
    assert AS.AUTHORIZED_RESERVED.label == "Authorized - Reserved"
    assert RV.REQUESTED.label == "Reservation In Progress"
    assert RV.SLR_INSTALLED.label == "Registered - Specific License Reservation"
    assert RV.PLR_INSTALLED.label == "Registered - Permanent License Reservation"
    assert LS.NOT_REQUESTED.label == "Not requested"
    assert LS.OOC_GRACE.label == "Out Of Compliance"
    assert LS.RESERVED_IN_COMPLIANCE.label == "Reserved in Compliance"
    assert RegistrationMode.LICENSE_RESERVATION.label == "Specific/Permanent License Reservation"
    assert CS.NOT_STARTED.label == "Not Started"
    assert CS.SUCCESS.label == "success"
    assert CS.FAILED.label == "failed"


# --- random walks -------------------------------------------------------------------


@st.composite
def walks(draw):
    machine = draw(st.sampled_from(list(MACHINES.values())))
    start = draw(st.sampled_from(list(machine.states)))
    actions = draw(st.lists(st.sampled_from(sorted(machine.actions)), max_size=40))
    return machine, start, actions


@given(walks())
def test_random_action_sequences_only_follow_table_entries(walk):
    machine, state, actions = walk
    for action in actions:
        if (state, action) not in machine.table:
            with pytest.raises(TransitionRefused):
                machine.apply(state, action)
            continue
        new = machine.apply(state, action)
        assert new == machine.table[(state, action)]
        assert new in set(machine.states)
        state = new


# --- per-licence rules --------------------------------------------------------------


@pytest.mark.parametrize("state", list(LS))
def test_feature_usable(state):
    usable = {LS.EVAL, LS.IN_COMPLIANCE, LS.OOC_GRACE, LS.RESERVED_IN_COMPLIANCE}
    assert feature_usable(state) is (state in usable)


MAIL_HANDLING = license_by_code("ESA", "imh")
BOUNCE = license_by_code("ESA", "bounce_verification")
OUTBREAK = license_by_code("ESA", "VOF")


@pytest.mark.parametrize("virtual", [False, True])
@pytest.mark.parametrize("lic", [MAIL_HANDLING, BOUNCE, license_by_code("SMA", "imh")])
def test_base_licenses_can_never_be_released(lic, virtual):
    assert license_release_refusal(lic, virtual=virtual) == BASE_LICENSE_RELEASE_REFUSAL
    with pytest.raises(TransitionRefused, match="cannot be released"):
        check_release(lic, LS.IN_COMPLIANCE, virtual=virtual)
    with pytest.raises(TransitionRefused, match="Product Base License"):
        apply_license(lic, LS.EVAL, "release", virtual=virtual)


def test_ordinary_licenses_release_normally():
    assert license_release_refusal(OUTBREAK) is None
    assert check_release(OUTBREAK, LS.EVAL) == LS.NOT_REQUESTED
    assert apply_license(OUTBREAK, LS.OOC_GRACE, "release", virtual=False) == LS.NOT_REQUESTED


@pytest.mark.parametrize("action", ["shortage", "no_eval_left", "auth_expired", "eval_granted", "authorized"])
def test_hardware_base_license_is_always_in_compliance(action):
    assert apply_license(MAIL_HANDLING, LS.IN_COMPLIANCE, action, virtual=False) == LS.IN_COMPLIANCE


def test_virtual_base_license_behaves_like_a_normal_one():
    assert apply_license(MAIL_HANDLING, LS.IN_COMPLIANCE, "shortage", virtual=True) == LS.OOC_GRACE
    assert apply_license(MAIL_HANDLING, LS.EVAL, "no_eval_left", virtual=True) == LS.EVAL_EXPIRED
    assert apply_license(OUTBREAK, LS.IN_COMPLIANCE, "shortage", virtual=False) == LS.OOC_GRACE


def test_initial_license_states_after_enabling():
    kw = {"eval_available": True, "registered": False}
    assert initial_license_state(OUTBREAK, virtual=False, **kw) == LS.NOT_REQUESTED
    assert initial_license_state(MAIL_HANDLING, virtual=False, **kw) == LS.IN_COMPLIANCE
    assert initial_license_state(MAIL_HANDLING, virtual=True, **kw) == LS.EVAL
    assert initial_license_state(BOUNCE, virtual=True, eval_available=False, registered=False) == LS.EVAL_EXPIRED
    assert initial_license_state(BOUNCE, virtual=True, eval_available=False, registered=True) == (
        LS.REQUEST_IN_PROGRESS
    )
    # A new virtual gateway never had an evaluation period: not "Eval Expired".
    no_eval = {"eval_available": False, "registered": False, "eval_granted": False}
    assert initial_license_state(BOUNCE, virtual=True, **no_eval) == LS.NOT_AUTHORIZED
    assert initial_license_state(OUTBREAK, virtual=True, **no_eval) == LS.NOT_REQUESTED


def test_a_licence_without_evaluation_is_not_authorized():
    assert LICENSE.apply(LS.REQUEST_IN_PROGRESS, "no_eval") == LS.NOT_AUTHORIZED
    assert LICENSE.apply(LS.IN_COMPLIANCE, "no_eval") == LS.NOT_AUTHORIZED  # deregistered, no eval to fall back on


# --- aggregation --------------------------------------------------------------------

AGGREGATION_CASES = [
    # (licence states, registered, reservation, eval_left, expected)
    ([], True, False, None, AS.NO_LICENSE_IN_USE),
    ([LS.NOT_REQUESTED, LS.NOT_REQUESTED], False, False, None, AS.NO_LICENSE_IN_USE),
    ([LS.IN_COMPLIANCE, LS.IN_COMPLIANCE], True, False, None, AS.AUTHORIZED),
    ([LS.IN_COMPLIANCE, LS.OOC_GRACE], True, False, None, AS.OUT_OF_COMPLIANCE),
    ([LS.IN_COMPLIANCE, LS.OOC_EXPIRED], True, False, None, AS.OUT_OF_COMPLIANCE),
    ([LS.OOC_GRACE, LS.AUTH_EXPIRED], True, False, None, AS.AUTH_EXPIRED),
    ([LS.REQUEST_IN_PROGRESS], True, False, None, AS.NO_LICENSE_IN_USE),
    ([LS.EVAL, LS.NOT_REQUESTED], False, False, None, AS.EVAL),
    ([LS.EVAL_EXPIRED], False, False, None, AS.EVAL_EXPIRED),
    ([LS.IN_COMPLIANCE], False, False, None, AS.EVAL),  # hardware base licence keeps eval running
    ([LS.IN_COMPLIANCE], False, False, False, AS.EVAL_EXPIRED),
    ([LS.RESERVED_IN_COMPLIANCE, LS.RESERVED_IN_COMPLIANCE], False, True, None, AS.AUTHORIZED_RESERVED),
    # An installed reservation authorizes the product; uncovered licences say so on their own rows.
    ([LS.RESERVED_IN_COMPLIANCE, LS.NOT_AUTHORIZED], False, True, None, AS.AUTHORIZED_RESERVED),
    ([LS.NOT_AUTHORIZED, LS.EVAL_EXPIRED], False, True, None, AS.NOT_AUTHORIZED),
    ([LS.EVAL], False, True, None, AS.EVAL),
    ([LS.EVAL_EXPIRED, LS.RESERVED_IN_COMPLIANCE], False, True, None, AS.AUTHORIZED_RESERVED),
    ([LS.EVAL_EXPIRED], False, True, None, AS.EVAL_EXPIRED),
    # A new virtual gateway, unregistered: no evaluation period, nothing authorized.
    ([LS.NOT_AUTHORIZED, LS.NOT_REQUESTED], False, False, None, AS.NOT_AUTHORIZED),
    ([LS.REQUEST_IN_PROGRESS], False, True, None, AS.NO_LICENSE_IN_USE),
]


@pytest.mark.parametrize(("states", "registered", "reservation", "eval_left", "expected"), AGGREGATION_CASES)
def test_aggregate_authorization(states, registered, reservation, eval_left, expected):
    got = aggregate_authorization(states, registered=registered, reservation=reservation, eval_left=eval_left)
    assert got == expected


@given(st.lists(st.sampled_from(list(LS))), st.booleans(), st.booleans())
def test_aggregation_always_returns_a_known_status(states, registered, reservation):
    result = aggregate_authorization(states, registered=registered, reservation=reservation)
    assert result in set(AS)
    if registered and not reservation and LS.AUTH_EXPIRED in states:
        assert result == AS.AUTH_EXPIRED
