"""Reading a customer's license_smart STATUS / SUMMARY output (labs.paste) and planning the build."""

from datetime import UTC, datetime, timedelta

import pytest

from labs.paste import PasteError, paste_parse
from labs.reproduce import plan_for

REGISTERED = """\
esa1.example.com> license_smart

Choose the operation you want to perform:
- URL - Set the Smart Transport URL.
- STATUS - Show overall Smart Licensing status.
- SUMMARY - Show Smart Licensing status summary.
[]> status

Smart Licensing is: Enabled
Evaluation Period: Not In Use
Evaluation Period Remaining: 89 days 23 hours 58 minutes 12 seconds
Registration Status: Registered ( 22 Aug 2018 07:21 )
Registration Expires On: 22 Aug 2019 07:15
License Authorization Status: Authorized ( 22 Aug 2018 07:21 )
Expires On: 20 Nov 2018 07:15
Last Authorization Renewal Attempt: Succeeded on 22 Aug 2018 07:21
Last Registration Renewal Attempt Status: Succeeded on 22 Aug 2018 16:22
Transport Settings: Direct
(https://smartreceiver.cisco.com/licservice/license)
Conversion Status: Not Started

[]> summary

FeatureName                                     LicenseAuthorisationStatus  AuthorisationExpiryDate  Count
--------------------------------------------------------------------------------------------------------
Mail Handling                                   In Compliance               2018-11-20 07:15:00      1
Email Security Appliance Anti-Spam License      In Compliance               2018-11-20 07:15:00      1
Email Security Appliance Outbreak Filters       In Compliance               2018-11-20 07:15:00      1
"""

EVAL_12_DAYS = """\
Smart Licensing is: Enabled
Evaluation Period: In Use
Evaluation Period Remaining: 12 days 3 hours 0 minutes 0 seconds
Registration Status: Unregistered
License Authorization Status: Evaluation Mode
Last Authorization Renewal Attempt: No communication attempted
Last Registration Renewal Attempt Status: No communication attempted
Transport Settings: Direct
(https://smartreceiver.cisco.com/licservice/license)
Conversion Status: Not Started
"""

OUT_OF_COMPLIANCE = """\
Smart Licensing is: Enabled
Evaluation Period: Not In Use
Evaluation Period Remaining: 90 days 0 hours 0 minutes 0 seconds
Registration Status: Registered ( 03 Mar 2031 09:00 )
Registration Expires On: 03 Mar 2032 09:00
License Authorization Status: Out of Compliance ( 03 Mar 2031 09:00 )
Expires On: 01 Jun 2031 09:00
Last Authorization Renewal Attempt: Succeeded on 15 Mar 2031 09:00
Last Registration Renewal Attempt Status: No communication attempted
Transport Settings: Direct
(https://smartreceiver.cisco.com/licservice/license)
Conversion Status: Not Started

FeatureName                                     LicenseAuthorisationStatus  AuthorisationExpiryDate  Count
-----------------------------------------------------------------------------------------------------------
Mail Handling                                   In Compliance               2031-06-01 09:00:00      1
Email Security Appliance Outbreak Filters       Out Of Compliance           2031-06-01 09:00:00      1
"""

RESERVED = """\
Smart Licensing is: Enabled
Registration Mode: Specific/Permanent License Reservation
Evaluation Period: Not In Use
Evaluation Period Remaining: 90 days 0 hours 0 minutes 0 seconds
Registration Status: Registered - Specific License Reservation
License Authorization Status: Authorized - Reserved

FeatureName                                     LicenseAuthorisationStatus  AuthorisationExpiryDate  Count
-----------------------------------------------------------------------------------------------------------
Email Security Appliance Anti-Spam License      Reserved in Compliance      Never                    1
Email Security Appliance Outbreak Filters       Reserved in Compliance      Never                    2
"""

OLDER_FORM = """\
Smart Licensing Status
=======================
Smart Licensing is ENABLED

Registration:
Status: UNREGISTERED
Export-Controlled Functionality: Not Allowed

License Authorization:
Status: EVAL MODE
Evaluation Period Remaining: 87 days 1 hr 41 min 0 sec
Last Communication Attempt: NONE

License Conversion:
Automatic Conversion Enabled: true
Status: NOT STARTED

Utility:
Status: DISABLED

Transport:
Type: TransportCallHome

Evaluation Period:
Evaluation Mode: In Use
Evaluation Period Remaining: 87 days 1 hr 41 min 0 sec

License Usage
=============
License Authorization Status: EVALUATION MODE
Evaluation Period Remaining: 87 days 1 hr 41 min 0 sec

(VOF)
Description: null
Count: 1
Version: 1.0
Status: Eval

Product Information
===================
UDI: PID:C395,SN:FCH2222ABCD

Agent Version
=============
Smart Agent for Licensing: 1.3.5
"""


def _labels(result):
    return {u.label: u.value for u in result.understood}


def test_newer_form_registered_and_authorized():
    result = paste_parse(REGISTERED)
    t = result.target
    assert result.not_understood == []
    assert t.smart_enabled is True
    assert t.registration == "registered"
    assert t.registered_at == datetime(2018, 8, 22, 7, 21, tzinfo=UTC)
    assert t.authorization == "authorized"
    assert t.authorization_expires == datetime(2018, 11, 20, 7, 15, tzinfo=UTC)
    assert t.last_auth_ok is True
    assert t.last_id_at == datetime(2018, 8, 22, 16, 22, tzinfo=UTC)
    assert t.transport == "direct"
    assert t.transport_url == "https://smartreceiver.cisco.com/licservice/license"
    assert [(line.code, line.state) for line in t.licenses] == [
        ("imh", "in_compliance"), ("case", "in_compliance"), ("VOF", "in_compliance")]  # fmt: skip
    labels = _labels(result)
    assert labels["Registration Status"] == "Registered ( 22 Aug 2018 07:21 )"
    # Each understood field keeps its line number in the paste.
    line = next(u.line for u in result.understood if u.label == "Registration Status")
    assert REGISTERED.splitlines()[line - 1].startswith("Registration Status:")
    steps = [s.text for s in plan_for(result).steps]
    assert any("Register esa1.example.com" in s for s in steps)
    assert any("Advance 9 h 1 min" in s for s in steps)  # 07:21 registration → 16:22 last attempt


def test_eval_with_days_remaining_plans_the_time_used():
    result = paste_parse(EVAL_12_DAYS)
    assert result.not_understood == []
    assert result.target.eval_remaining == timedelta(days=12, hours=3)
    plan = plan_for(result)
    assert [s.text for s in plan.steps] == [
        "Enable Smart Software Licensing on esa1.example.com and commit",
        "Let the evaluation period run for 77 days 21 h",
    ]


def test_out_of_compliance_plans_a_shortage_before_registering():
    result = paste_parse(OUT_OF_COMPLIANCE)
    assert result.not_understood == []
    assert result.target.authorization == "out_of_compliance"
    steps = [s.text for s in plan_for(result).steps]
    shortage = next(i for i, s in enumerate(steps) if "shortage" in s)
    register = next(i for i, s in enumerate(steps) if s.startswith("Register"))
    assert shortage < register
    assert steps[-1] == "Advance 12 days (registration to the latest time in the paste)"


def test_reservation_installed():
    result = paste_parse(RESERVED)
    assert result.not_understood == []
    t = result.target
    assert t.reservation_mode is True
    assert t.registration == "slr_installed"
    assert [(line.code, line.count) for line in t.licenses] == [("case", 1), ("VOF", 2)]
    steps = [s.text for s in plan_for(result).steps]
    assert "Authorize a specific reservation in the portal from the request code: VOF x2, case x1" in steps
    assert steps[-1] == "Install the authorization code on esa1.example.com"


def test_older_sectioned_form():
    result = paste_parse(OLDER_FORM)
    assert result.not_understood == []
    t = result.target
    assert t.smart_enabled is True
    assert t.registration == "unregistered"
    assert t.authorization == "eval"
    assert t.eval_remaining == timedelta(days=87, hours=1, minutes=41)
    assert t.conversion == "not_started"
    assert (t.pid, t.serial) == ("C395", "FCH2222ABCD")
    assert [(line.code, line.state) for line in t.licenses] == [("VOF", "eval")]
    plan = plan_for(result)
    assert plan.hostname == "esa1.example.com"
    assert "PID:C395,SN:FCH2222ABCD" in plan.notes[0]


def test_malformed_lines_are_listed_with_their_line_numbers():
    text = EVAL_12_DAYS.replace("Evaluation Mode", "Banana").replace(
        "Conversion Status: Not Started", "Conversion Status: Not Started\nsomething odd here"
    )
    result = paste_parse(text)
    bad = {(n.line, n.text): n.reason for n in result.not_understood}
    assert bad == {
        (5, "License Authorization Status: Banana"): "unknown authorization status",
        (11, "something odd here"): "not a STATUS or SUMMARY line",
    }
    assert result.usable  # the rest still describes a state
    assert "No License Authorization Status line." in result.problems


def test_a_partial_paste_says_what_is_missing():
    result = paste_parse("Smart Licensing is: Enabled\nRegistration Status: Registered\n")
    assert result.usable
    assert "The registration date is missing: the lab registers now." in result.problems
    assert "No License Authorization Status line." in result.problems
    summary_only = paste_parse(REGISTERED.split("[]> summary")[1])
    assert summary_only.usable
    assert summary_only.problems == ["No STATUS output: only the licences of SUMMARY are known."]


def test_nonsense_is_not_usable_and_empty_is_refused():
    result = paste_parse("hello\nworld: 42\n")
    assert not result.usable
    assert "No STATUS or SUMMARY line was recognised" in result.problems[0]
    assert [n.line for n in result.not_understood] == [1, 2]
    assert plan_for(result).steps == []
    with pytest.raises(PasteError, match="empty"):
        paste_parse("  \n")


def test_bad_values_get_a_reason():
    result = paste_parse(
        "Evaluation Period Remaining: 120 days 0 hours 0 minutes 0 seconds\n"
        "Registration Expires On: sometime\n"
        "Last Authorization Renewal Attempt: maybe\n"
        "Registration Status: Registered\n"
    )
    reasons = [n.reason for n in result.not_understood]
    assert reasons == [
        "the evaluation period is 90 days at most",
        "expected a date like 22 Aug 2018 07:21",
        "expected Succeeded on <date> or Failed on <date>",
    ]
