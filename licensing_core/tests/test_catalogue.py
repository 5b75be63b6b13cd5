"""Licence catalogue, appliance models, UDIs, Smart Account names, and the alert catalogues."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing_core.alerts import (
    ALERT_FOR_DUE,
    CSSM_ALERT_SEVERITY,
    GATEWAY_ALERT_BY_KIND,
    GATEWAY_ALERTS,
    CssmAlertType,
    CssmSeverity,
    GatewayAlertKind,
    GatewaySeverity,
    alert_for,
    render_alert,
    severity_for,
)
from licensing_core.catalogue import (
    ESA_LICENSES,
    MODELS,
    SMA_LICENSES,
    SMART_ACCOUNT_NAME_ALLOWED,
    base_licenses,
    license_by_code,
    license_by_tag,
    licenses_for,
    make_udi,
    model_by_pid,
    parse_udi,
    smart_account_name_problems,
)
from licensing_core.schedules import DueKind

ESA_PAGE = [
    ("imh", "Mail Handling"),
    ("bounce_verification", "Email Security Appliance Bounce Verification"),
    ("case", "Email Security Appliance Anti-Spam License"),
    ("VOF", "Email Security Appliance Outbreak Filters"),
    ("rsadlp", "Email Security Appliance Data Loss Prevention"),
    ("amp_file_rep", "Email Security Appliance Advanced Malware Protection Reputation"),
    ("amp_file_analysis", "Email Security Appliance Advanced Malware Protection"),
    ("sophos", "Email Security Appliance Sophos Anti-Malware"),
    ("mcafee", "Email Security Appliance McAfee Anti-Malware"),
    ("envelope_encryption", "Email Security Appliance PXE Encryption"),
    ("ims", "Email Security Appliance Intelligent Multi-Scan"),
    ("iia", "Email Security Appliance Image Analyzer"),
    ("ETF", "Email Security Appliance External Threat Feeds"),
    ("gm_unsubscription", "Email Security Appliance Graymail Safe-unsubscribe"),
]
SMA_PAGE = [
    ("imh", "Mail Handling"),
    ("iccm_processing", "Content Security Management Config Manager"),
    ("c_web_rep_processing", "Content Security Management Web Reporting"),
    ("master_isq", "Content Security Management Master ISQ"),
    ("c_track_processing", "Content Security Management Centralized Tracking"),
    ("c_rep_processing", "Content Security Management Centralized Reporting"),
]


def test_pages_list_the_licences_in_order_without_cloudmark():
    assert [(lic.code, lic.name) for lic in ESA_LICENSES] == ESA_PAGE
    assert [(lic.code, lic.name) for lic in SMA_LICENSES] == SMA_PAGE
    assert licenses_for("ESA") is ESA_LICENSES
    assert licenses_for("SMA") is SMA_LICENSES
    assert all(lic.product == "ESA" for lic in ESA_LICENSES)
    assert all(lic.product == "SMA" for lic in SMA_LICENSES)


def test_base_licences():
    assert [lic.code for lic in base_licenses("ESA")] == ["imh", "bounce_verification"]
    assert [lic.code for lic in base_licenses("SMA")] == ["imh"]


def test_tags_and_skus_are_stable_and_unique():
    everything = ESA_LICENSES + SMA_LICENSES
    tag_re = re.compile(r"regid\.2017-05\.com\.cisco\.(ESA|SMA)_(\w+),1\.0_[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")
    for lic in everything:
        match = tag_re.fullmatch(lic.entitlement_tag)
        assert match
        assert match[1] == lic.product
        assert match[2] == lic.code
        assert re.fullmatch(r"(ESA|SMA)-[A-Z]+-LIC=", lic.sku)
        assert license_by_tag(lic.entitlement_tag) is lic
        assert license_by_code(lic.product, lic.code) is lic
    assert len({lic.entitlement_tag for lic in everything}) == len(everything)
    assert len({lic.sku for lic in everything}) == len(everything)
    assert license_by_code("ESA", "amp_file_analysis").sku == "ESA-AMP-LIC="  # the guide's example
    assert license_by_code("ESA", "VOF").entitlement_tag == (
        "regid.2017-05.com.cisco.ESA_VOF,1.0_c6a382ff-4128-59d5-86cf-c746a38d7783"
    )


@pytest.mark.parametrize(
    "lookup",
    [
        lambda: licenses_for("WSA"),
        lambda: license_by_code("ESA", "cloudmark"),
        lambda: license_by_code("SMA", "VOF"),
        lambda: license_by_tag("regid.nope"),
        lambda: model_by_pid("C170"),
    ],
)
def test_unknown_lookups_raise_key_error(lookup):
    with pytest.raises(KeyError):
        lookup()


def test_models():
    assert [m.pid for m in MODELS if m.product == "ESA"] == ["C195", "C395", "C695", "C100V", "C300V", "C600V"]
    assert [m.pid for m in MODELS if m.product == "SMA"] == ["M195", "M395", "M695", "M100V", "M300V", "M600V"]
    for m in MODELS:
        assert model_by_pid(m.pid) is m
        assert m.virtual == m.pid.endswith("V")
        assert m.description


def test_udi():
    assert make_udi("C395", "FCH2216V0AB") == "PID:C395,SN:FCH2216V0AB"
    assert parse_udi(" PID:C100V,SN:564D8E1A-7B2C ") == ("C100V", "564D8E1A-7B2C")


@pytest.mark.parametrize(
    ("udi", "words"),
    [
        ("C395 FCH1", "must look like"),
        ("PID:,SN:FCH1", "no product ID"),
        ("PID:C395,SN:", "no serial number"),
        ("PID:C3 95,SN:X", "product ID may contain only"),
        ("PID:C395,SN:X,Y", "serial number may contain only"),
    ],
)
def test_parse_udi_reasons(udi, words):
    with pytest.raises(ValueError, match=words):
        parse_udi(udi)


@given(
    st.sampled_from([m.pid for m in MODELS]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,19}", fullmatch=True),
)
def test_udi_round_trips(pid, serial):
    assert parse_udi(make_udi(pid, serial)) == (pid, serial)


def test_smart_account_names():
    assert smart_account_name_problems("Acme Corp. (EMEA) - R&D #1 / \"Mail\"; 'ok'? ö ü Ã @:,_") == []
    assert smart_account_name_problems("  ") == ["The Smart Account name cannot be empty."]
    problems = smart_account_name_problems("Zürich Café™é")
    assert len(problems) == 2  # é and ™ (each reported once); ü is allowed
    assert "“é”" in problems[0]
    assert "“™”" in problems[1]
    assert "Talos" in problems[0]
    assert set("-_,.@:&\"'/;#?öüÃ() ") <= SMART_ACCOUNT_NAME_ALLOWED


# --- gateway alerts (§7.1) -------------------------------------------------------------

EXPECTED_SEVERITY = {
    "G1": "Information", "G2": "Critical", "G3": "Information", "G4": "Warning", "G5": "Information",
    "G6": "Critical", "G7": "Information", "G8": "Warning", "G9": "Information", "G10": "Warning",
    "G11": "Information", "G12": "Warning", "G13": "Critical", "G14": "Critical", "G15": "Warning",
    "G16": "Critical", "G17": "Warning", "G18": "Information", "G19": "Information", "G20": "Critical",
    "G21": "Warning", "G22": "Warning",
}  # fmt: skip


def test_all_22_gateway_alerts_are_class_system_with_the_recommended_severity():
    assert list(GATEWAY_ALERTS) == [f"G{n}" for n in range(1, 23)]
    assert {code: a.severity for code, a in GATEWAY_ALERTS.items()} == EXPECTED_SEVERITY
    assert {a.alert_class for a in GATEWAY_ALERTS.values()} == {"System"}
    assert set(GATEWAY_ALERT_BY_KIND) == set(GatewayAlertKind.values)
    assert GATEWAY_ALERTS["G1"].text == "Smart Software Licensing successfully enabled"
    assert GATEWAY_ALERTS["G1"].event == "Smart Software Licensing successfully enabled"
    assert GATEWAY_ALERTS["G18"].text == "Smart Agent successfully installed the license reservation."
    assert alert_for(GatewayAlertKind.EVAL_EXPIRY).code == "G4"
    assert alert_for("ooc_grace_expiry").code == "G15"


def test_scheduled_alerts_turn_critical_at_expiry():
    for kind in (GatewayAlertKind.EVAL_EXPIRY, GatewayAlertKind.OOC_GRACE_EXPIRY):
        for days_left in (90, 30, 5, 1):
            assert severity_for(kind, days_left) == GatewaySeverity.WARNING
        assert severity_for(kind, 0) == GatewaySeverity.CRITICAL
    assert severity_for(GatewayAlertKind.REGISTERED) == GatewaySeverity.INFORMATION
    assert severity_for(GatewayAlertKind.RESERVATION_EXPIRY_WARNING, 0) == GatewaySeverity.WARNING


def test_render_alert():
    assert render_alert("eval_expiry", days_left=30) == (
        "The evaluation period expires in 30 day(s). Register the product with Smart Software Manager."
    )
    assert render_alert("eval_expiry", days_left=0).startswith("The evaluation period has expired.")
    assert render_alert("ooc_grace_expiry", days_left=0, license="Outbreak Filters").startswith(
        "The out of compliance grace period for Outbreak Filters has expired."
    )
    assert render_alert("registration_failed", reason="The token has expired.").endswith("The token has expired.")
    assert GATEWAY_ALERTS["G15"].placeholders == ("license", "days_left")
    with pytest.raises(KeyError):
        render_alert("registration_failed")


def test_every_alert_template_renders_with_its_placeholders():
    for alert in GATEWAY_ALERTS.values():
        text = alert.render(**dict.fromkeys(alert.placeholders, "X"))
        assert "{" not in text
        assert text


# --- CSSM alerts (§5.8) ---------------------------------------------------------------


def test_cssm_alert_types_and_severities():
    assert len(CssmAlertType) == 17
    assert CssmAlertType.INSUFFICIENT_LICENSES == "Insufficient Licenses"
    assert CssmAlertType.PRODUCT_INSTANCE_FAILED_TO_RENEW.label == "Product Instance Failed to Renew"
    assert set(CSSM_ALERT_SEVERITY) == set(CssmAlertType)
    assert set(CSSM_ALERT_SEVERITY.values()) == set(CssmSeverity)
    major = {t for t, sev in CSSM_ALERT_SEVERITY.items() if sev == CssmSeverity.MAJOR}
    assert {
        CssmAlertType.INSUFFICIENT_LICENSES,
        CssmAlertType.LICENSES_EXPIRED,
        CssmAlertType.PRODUCT_INSTANCE_FAILED_TO_RENEW,
        CssmAlertType.RESERVED_LICENSE_EXPIRED,
        CssmAlertType.SATELLITE_EXPIRED_AND_REMOVED,
    } <= major
    assert CSSM_ALERT_SEVERITY[CssmAlertType.LICENSES_EXPIRING] == CssmSeverity.MINOR
    assert CSSM_ALERT_SEVERITY[CssmAlertType.RESERVED_LICENSES_RETURNED] == CssmSeverity.INFORMATIONAL


def test_every_alerting_due_kind_maps_to_a_gateway_alert():
    jobs = {"auth_renewal", "id_renewal", "dlc_completion"}
    assert set(ALERT_FOR_DUE) | jobs == set(DueKind.__args__)
    assert ALERT_FOR_DUE["eval_notice"] == GatewayAlertKind.EVAL_EXPIRY
