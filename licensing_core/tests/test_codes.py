"""Registration tokens and air-gap codes: round trips, reasons, and tamper detection."""

import base64
import re
import string
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licensing_core import codes
from licensing_core.catalogue import MODELS
from licensing_core.codes import (
    AUTH_DAMAGED,
    AUTH_FORGED,
    AUTH_WRONG_REQUEST,
    AUTH_WRONG_UDI,
    RETURN_DAMAGED,
    RETURN_MISMATCH,
    TOKEN_EMPTY,
    TOKEN_FOREIGN,
    TOKEN_INVALID,
    CodeError,
    Entitlement,
    authorization_code_generate,
    authorization_code_parse,
    confirmation_code,
    confirmation_code_verify,
    plr_code_display,
    request_code_generate,
    request_code_parse,
    return_code_generate,
    return_code_verify,
    token_display,
    token_generate,
    token_parse,
    token_wrapped,
)
from licensing_core.pki import make_ca

NOW = datetime(2024, 4, 1, 8, 31, 5, 123000, tzinfo=UTC)
KEY = b"lab-one-secret"
CA = make_ca(common_name="CSSM lab one", now=NOW)
OTHER_CA = make_ca(common_name="CSSM lab two", now=NOW)
UDI = "PID:C395,SN:FCH2216V0AB"
B62 = string.ascii_letters + string.digits
PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "

ENTITLEMENTS = [
    Entitlement(
        tag="regid.2017-05.com.cisco.ESA_VOF,1.0_c6a382ff-4128-59d5-86cf-c746a38d7783",
        count=2,
        start_date=date(2024, 4, 1),
        end_date=date(2025, 3, 31),
        license_type="TERM",
        display_name="Email Security Appliance Outbreak Filters",
        tag_description="Outbreak Filters & <more>",
        subscription_id="Sub123",
    ),
    Entitlement(
        tag="regid.2017-05.com.cisco.ESA_case,1.0_1a75a96f-de9c-5924-9b45-31bcf7abf36a",
        count=1,
        start_date=date(2024, 4, 1),
        display_name="Email Security Appliance Anti-Spam License",
    ),
]


def mutate(text: str, index: int, replacement: str) -> str:
    assert replacement != text[index]
    return text[:index] + replacement + text[index + 1 :]


def other_char(ch: str, pool: str = PRINTABLE) -> str:
    return pool[(pool.index(ch) + 1) % len(pool)] if ch in pool else "A"


# --- tokens ------------------------------------------------------------------------


def test_token_round_trip_and_shape():
    token = token_generate(secret_key=KEY, now=NOW)
    parsed = token_parse(token, secret_key=KEY)
    assert parsed.created_at == NOW.replace(microsecond=123000)
    payload = base64.b64decode(token).decode()
    assert re.fullmatch(r"[0-9a-f-]{36}-\d{13}\|[A-Za-z0-9+/]{43}=", payload)
    assert payload.startswith(parsed.token_id + "-")


def test_token_id_can_be_chosen():
    token = token_generate(secret_key=KEY, now=NOW, token_id="7939e431-f88e-4d1c-9e0a-2b7a3c1d0e4f")
    assert token_parse(token, secret_key=KEY).token_id == "7939e431-f88e-4d1c-9e0a-2b7a3c1d0e4f"
    assert token_display(token) == token[:16] + "..."


def test_token_accepts_wrapped_and_url_encoded_input():
    token = token_generate(secret_key=KEY, now=NOW)
    wrapped = token_wrapped(token)
    assert "\n" in wrapped
    assert all(len(line) <= 60 for line in wrapped.splitlines())
    assert token_parse(wrapped, secret_key=KEY) == token_parse(token, secret_key=KEY)
    assert token_parse(wrapped.replace("\n", "%0A"), secret_key=KEY) == token_parse(token, secret_key=KEY)
    assert token_parse(f"  {token}\n", secret_key=KEY).token_id


def test_token_display_short_values_unchanged():
    assert token_display("abc") == "abc"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", TOKEN_EMPTY),
        ("   \n", TOKEN_EMPTY),
        ("not base64!", TOKEN_INVALID),
        (base64.b64encode(b"hello|world").decode(), TOKEN_INVALID),
        (base64.b64encode(b"no separator at all").decode(), TOKEN_INVALID),
        (base64.b64encode(b"\xff\xfe").decode(), TOKEN_INVALID),
    ],
)
def test_token_refusals(token, reason):
    with pytest.raises(CodeError) as info:
        token_parse(token, secret_key=KEY)
    assert info.value.reason == reason


def test_token_from_another_cssm_is_refused():
    token = token_generate(secret_key=b"another lab", now=NOW)
    with pytest.raises(CodeError, match=re.escape(TOKEN_FOREIGN)):
        token_parse(token, secret_key=KEY)


def test_token_forged_with_valid_shape_but_wrong_mac_is_refused():
    raw = "7939e431-f88e-4d1c-9e0a-2b7a3c1d0e4f-1711960265123"
    forged = base64.b64encode(f"{raw}|{base64.b64encode(bytes(32)).decode()}".encode()).decode()
    with pytest.raises(CodeError, match=re.escape(TOKEN_FOREIGN)):
        token_parse(forged, secret_key=KEY)


def test_every_single_character_change_to_a_token_is_refused():
    token = token_generate(secret_key=KEY, now=NOW)
    for index, ch in enumerate(token):
        for replacement in {other_char(ch), other_char(ch, B62), " "} - {ch}:
            with pytest.raises(CodeError) as info:
                token_parse(mutate(token, index, replacement), secret_key=KEY)
            assert info.value.reason in (TOKEN_INVALID, TOKEN_FOREIGN)


@given(
    st.datetimes(min_value=datetime(2001, 9, 10), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.binary(min_size=1, max_size=64),
)
def test_token_round_trips(now, key):
    parsed = token_parse(token_generate(secret_key=key, now=now), secret_key=key)
    assert abs(parsed.created_at - now) < timedelta(milliseconds=1)


@given(st.data())
def test_random_single_character_change_to_a_token_is_refused(data):
    token = token_generate(secret_key=KEY, now=NOW)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(PRINTABLE).filter(lambda c: c != token[index]))
    with pytest.raises(CodeError):
        token_parse(mutate(token, index, replacement), secret_key=KEY)


def test_token_needs_an_aware_now():
    with pytest.raises(ValueError):
        token_generate(secret_key=KEY, now=datetime(2024, 1, 1))


# --- request codes -----------------------------------------------------------------------


def test_request_code_format_matches_the_ios_shape():
    code = request_code_generate(pid="C395", serial="FCH2216V0AB", nonce="AK9A6sMT")
    assert re.fullmatch(r"CB-ZC395:FCH2216V0AB-AK9A6sMT-[0-9A-F]{2}", code)
    parsed = request_code_parse(code)
    assert (parsed.pid, parsed.serial, parsed.nonce) == ("C395", "FCH2216V0AB", "AK9A6sMT")
    assert parsed.udi == "PID:C395,SN:FCH2216V0AB"
    assert parsed.code == code
    # lower-case check digits and stray whitespace are accepted
    assert request_code_parse(" " + code[:-2] + code[-2:].lower() + "\n") == parsed


def test_request_codes_with_random_nonce_differ():
    a = request_code_generate(pid="C100V", serial="42")
    b = request_code_generate(pid="C100V", serial="42")
    assert a != b
    assert request_code_parse(a).pid == "C100V"


def test_request_code_pid_with_dashes_round_trips():
    code = request_code_generate(pid="C9300-24UX", serial="FCW2134L0RN", nonce="AK9A6sMT")
    assert request_code_parse(code).pid == "C9300-24UX"


@given(
    st.sampled_from([m.pid for m in MODELS]),
    st.text(alphabet=B62 + "-._", min_size=1, max_size=20).filter(lambda s: s[0] in B62),
    st.text(alphabet=B62, min_size=8, max_size=8),
)
def test_request_codes_round_trip(pid, serial, nonce):
    parsed = request_code_parse(request_code_generate(pid=pid, serial=serial, nonce=nonce))
    assert (parsed.pid, parsed.serial, parsed.nonce) == (pid, serial, nonce)


GOOD_REQ = request_code_generate(pid="C395", serial="FCH2216V0AB", nonce="AK9A6sMT")


def _with_crc(body: str) -> str:
    return f"{body}-{codes._crc(body)}"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("", "empty"),
        ("XX-ZC395:FCH1-AK9A6sMT-00", "must start with CB-Z"),
        ("CB-ZC395", "incomplete"),
        ("CB-ZC395:FCH1-AK9A6sMT-0", "hexadecimal checksum"),
        (GOOD_REQ[:-2] + ("00" if GOOD_REQ[-2:] != "00" else "01"), "checksum mismatch"),
        (_with_crc("CB-ZC395:FCH1-AK9A6s"), "8 letters or digits"),
        (_with_crc("CB-ZC395FCH1-AK9A6sMT"), "product ID and serial number"),
        (_with_crc("CB-ZC395:-AK9A6sMT"), "serial number may contain only"),
        (_with_crc("CB-Z:FCH1-AK9A6sMT"), "product ID may contain only"),
    ],
)
def test_request_code_refusals(code, words):
    with pytest.raises(CodeError, match=re.escape(words)):
        request_code_parse(code)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"pid": "C3 95", "serial": "X"}, "product ID"),
        ({"pid": "C395", "serial": "X:Y"}, "serial number"),
        ({"pid": "C395", "serial": "X", "nonce": "short"}, "8 letters or digits"),
    ],
)
def test_request_code_generate_refusals(kwargs, words):
    with pytest.raises(CodeError, match=words):
        request_code_generate(**kwargs)


# --- authorization codes -------------------------------------------------------------------


def _auth(**overrides):
    kwargs = {
        "ca": CA,
        "request_code": GOOD_REQ,
        "udi": UDI,
        "piid": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
        "entitlements": ENTITLEMENTS,
        "now": NOW,
    }
    kwargs.update(overrides)
    return authorization_code_generate(**kwargs)


AUTH = _auth()


def test_authorization_code_has_the_section_6_4_shape():
    assert AUTH.startswith("<specificPLR><authorizationCode><flag>A</flag><version>C</version><piid>")
    for element in ("timestamp", "requestCode", "entitlements", "tag", "count", "startDate", "endDate"):
        assert f"<{element}>" in AUTH
    for element in ("licenseType", "displayName", "tagDescription", "subscriptionID"):
        assert f"<{element}>" in AUTH
    assert re.search(
        r"</authorizationCode><signature>[A-Za-z0-9+/=]+</signature><udi>PID:C395,SN:FCH2216V0AB</udi>", AUTH
    )
    assert AUTH.endswith("</specificPLR>")


def test_authorization_code_round_trip():
    parsed = authorization_code_parse(AUTH, ca_cert_pem=CA.cert_pem, expected_request_code=GOOD_REQ, expected_udi=UDI)
    assert parsed.flag == "A"
    assert parsed.reservation_type == "SPECIFIC"
    assert not parsed.is_permanent
    assert parsed.version == "C"
    assert parsed.piid == "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    assert parsed.timestamp == NOW
    assert parsed.request_code == GOOD_REQ
    assert parsed.udi == UDI
    assert parsed.entitlements == tuple(ENTITLEMENTS)
    assert parsed.code == AUTH


def test_permanent_reservation_uses_flag_p_and_may_list_no_entitlements():
    plr = _auth(reservation_type="PERMANENT", entitlements=[])
    parsed = authorization_code_parse(plr, ca_cert_pem=CA.cert_pem)
    assert "<flag>P</flag>" in plr
    assert parsed.is_permanent
    assert parsed.reservation_type == "PERMANENT"
    assert parsed.entitlements == ()
    assert re.fullmatch(r"([A-Z0-9]{6}-){5}[A-Z0-9]{6}", plr_code_display(plr))


@pytest.mark.parametrize(
    "overrides",
    [
        {"reservation_type": "FOREVER"},
        {"entitlements": []},
        {"entitlements": [Entitlement(tag="t", count=0, start_date=date(2024, 1, 1))]},
        {"entitlements": [Entitlement(tag="t", count=1, start_date=date(2024, 1, 1), license_type="TERM")]},
        {"entitlements": [Entitlement(tag="t", count=1, start_date=date(2024, 1, 1), end_date=date(2025, 1, 1))]},
        {"now": datetime(2024, 1, 1)},
        {"piid": "bad\x00piid"},
        {"udi": "PID:C395,SN:\r"},
    ],
)
def test_authorization_code_generate_rejects_bad_input(overrides):
    with pytest.raises(ValueError):
        _auth(**overrides)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", AUTH_DAMAGED),
        ("hello", AUTH_DAMAGED),
        ("<specificPLR></specificPLR>", AUTH_DAMAGED),
        ('<!DOCTYPE x [<!ENTITY a "b">]>' + AUTH, AUTH_DAMAGED),
        ("<" * 300_000, AUTH_DAMAGED),
    ],
)
def test_authorization_code_refuses_garbage(code, reason):
    with pytest.raises(CodeError) as info:
        authorization_code_parse(code, ca_cert_pem=CA.cert_pem)
    assert info.value.reason == reason


def test_authorization_code_from_another_cssm_is_refused():
    with pytest.raises(CodeError) as info:
        authorization_code_parse(AUTH, ca_cert_pem=OTHER_CA.cert_pem)
    assert info.value.reason == AUTH_FORGED


def test_authorization_code_for_another_request_is_refused_with_the_ios_message():
    other_req = request_code_generate(pid="C395", serial="FCH2216V0AB", nonce="ZZZZZZZZ")
    with pytest.raises(CodeError) as info:
        authorization_code_parse(AUTH, ca_cert_pem=CA.cert_pem, expected_request_code=other_req)
    assert info.value.reason == AUTH_WRONG_REQUEST
    assert AUTH_WRONG_REQUEST == "The Reservation Authorization Code does not match the Reservation Request Code"


def test_authorization_code_for_another_device_is_refused():
    with pytest.raises(CodeError) as info:
        authorization_code_parse(AUTH, ca_cert_pem=CA.cert_pem, expected_udi="PID:C395,SN:OTHER")
    assert info.value.reason == AUTH_WRONG_UDI


def test_authorization_code_with_unreadable_ca_certificate():
    with pytest.raises(CodeError, match="certificate authority"):
        authorization_code_parse(AUTH, ca_cert_pem=b"nope")


def test_authorization_code_leading_and_trailing_whitespace_is_ignored():
    assert authorization_code_parse(f"\n  {AUTH}  \n", ca_cert_pem=CA.cert_pem).udi == UDI


def test_signed_but_unreadable_content_is_reported_as_damaged():
    # Only a generator bug could produce this: a well-signed code whose fields do not parse.
    bad = _auth(piid="x")
    for good, broken in [
        ("<count>2</count>", "<count>two</count>"),
        ("<flag>A</flag>", "<flag>Q</flag>"),
        ("<licenseType>TERM</licenseType>", "<licenseType>BOGUS</licenseType>"),
        ("<version>C</version>", ""),
    ]:
        auth_xml = re.search(r"<authorizationCode>.*</authorizationCode>", bad).group(0).replace(good, broken)
        udi_xml = f"<udi>{UDI}</udi>"
        sig = base64.b64encode(codes.sign_with_ca(ca=CA, data=(auth_xml + udi_xml).encode())).decode()
        forged = f"<specificPLR>{auth_xml}<signature>{sig}</signature>{udi_xml}</specificPLR>"
        with pytest.raises(CodeError) as info:
            authorization_code_parse(forged, ca_cert_pem=CA.cert_pem)
        assert info.value.reason == AUTH_DAMAGED


def _regions(code: str) -> dict[str, range]:
    auth = re.search(r"<authorizationCode>.*</authorizationCode>", code)
    sig = re.search(r"(?<=<signature>)[^<]+", code)
    udi = re.search(r"(?<=<udi>)[^<]+", code)
    return {
        "signed content": range(auth.start(), auth.end()),
        "signature": range(sig.start(), sig.end()),
        "udi": range(udi.start(), udi.end()),
        "everything": range(len(code)),
    }


def test_every_single_character_change_to_an_authorization_code_is_refused():
    for index, ch in enumerate(AUTH):
        replacement = other_char(ch, B62) if ch in B62 else other_char(ch)
        with pytest.raises(CodeError) as info:
            authorization_code_parse(mutate(AUTH, index, replacement), ca_cert_pem=CA.cert_pem)
        assert info.value.reason in (AUTH_DAMAGED, AUTH_FORGED)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_change_inside_signed_content_signature_or_udi_is_refused(data):
    region = data.draw(st.sampled_from(["signed content", "signature", "udi", "everything"]))
    index = data.draw(st.sampled_from(_regions(AUTH)[region]))
    replacement = data.draw(st.sampled_from(PRINTABLE).filter(lambda c: c != AUTH[index]))
    with pytest.raises(CodeError) as info:
        authorization_code_parse(mutate(AUTH, index, replacement), ca_cert_pem=CA.cert_pem)
    if region in ("signed content", "udi") and replacement in B62:
        # Letters and digits keep the XML well formed, so only the signature can notice.
        assert info.value.reason in (AUTH_FORGED, AUTH_DAMAGED)
    if region == "signature":
        assert info.value.reason in (AUTH_FORGED, AUTH_DAMAGED)


# Any text XML can carry: everything but surrogates, control characters other
# than tab/newline, and the two non-characters U+FFFE/U+FFFF.
xml_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(
        lambda c: c in "\t\n" or (c >= " " and c not in "\ufffe\uffff")
    ),
    max_size=30,
)


@st.composite
def entitlements(draw):
    term = draw(st.booleans())
    start = draw(st.dates(min_value=date(2015, 1, 1), max_value=date(2040, 1, 1)))
    return Entitlement(
        tag=draw(xml_text),
        count=draw(st.integers(1, 10_000)),
        start_date=start,
        end_date=start + timedelta(days=draw(st.integers(1, 3650))) if term else None,
        license_type="TERM" if term else "PERPETUAL",
        display_name=draw(xml_text),
        tag_description=draw(xml_text),
        subscription_id=draw(xml_text),
    )


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(entitlements(), min_size=1, max_size=5),
    st.sampled_from(["SPECIFIC", "PERMANENT"]),
    xml_text,
)
def test_authorization_codes_round_trip(ents, kind, piid):
    # Leading/trailing whitespace in text nodes survives because nothing strips inside the XML.
    code = _auth(entitlements=ents, reservation_type=kind, piid=piid)
    parsed = authorization_code_parse(code, ca_cert_pem=CA.cert_pem, expected_request_code=GOOD_REQ, expected_udi=UDI)
    assert parsed.entitlements == tuple(ents)
    assert parsed.reservation_type == kind
    assert parsed.piid == piid


# --- confirmation codes -------------------------------------------------------------------


def test_confirmation_code_is_eight_hex_and_verifies():
    code = confirmation_code(AUTH)
    assert re.fullmatch(r"[0-9a-f]{8}", code)
    confirmation_code_verify(code, auth_code=AUTH)
    confirmation_code_verify(f" {code.upper()} ", auth_code=AUTH)
    # whitespace inside the authorization code does not matter
    assert confirmation_code(AUTH[:50] + "\n" + AUTH[50:]) == code


@pytest.mark.parametrize(("entered", "words"), [("xyz", "8 characters"), ("", "8 characters"), ("0000000g", "8")])
def test_confirmation_code_malformed(entered, words):
    with pytest.raises(CodeError, match=words):
        confirmation_code_verify(entered, auth_code=AUTH)


def test_confirmation_code_for_another_authorization_code_is_refused():
    other = confirmation_code(_auth(piid="other"))
    with pytest.raises(CodeError, match="does not match"):
        confirmation_code_verify(other, auth_code=AUTH)


# --- return codes ---------------------------------------------------------------------------

SECRET = b"cssm-return-secret"
PIID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


def test_return_code_shape_and_verification():
    code = return_code_generate(secret=SECRET, piid=PIID, udi=UDI, nonce="n-1")
    assert re.fullmatch(r"([0-9A-Za-z]{6}-){8}[0-9A-Za-z]{3}", code)
    return_code_verify(code, secret=SECRET, piid=PIID, udi=UDI)
    return_code_verify(f"  {code}\n", secret=SECRET, piid=PIID, udi=UDI)
    assert code == return_code_generate(secret=SECRET, piid=PIID, udi=UDI, nonce="n-1")
    assert code != return_code_generate(secret=SECRET, piid=PIID, udi=UDI, nonce="n-2")


def test_random_nonce_return_codes_differ_and_verify():
    a = return_code_generate(secret=SECRET, piid=PIID, udi=UDI)
    b = return_code_generate(secret=SECRET, piid=PIID, udi=UDI)
    assert a != b
    return_code_verify(a, secret=SECRET, piid=PIID, udi=UDI)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": b"another lab", "piid": PIID, "udi": UDI},
        {"secret": SECRET, "piid": "another instance", "udi": UDI},
        {"secret": SECRET, "piid": PIID, "udi": "PID:C395,SN:OTHER"},
    ],
)
def test_return_code_for_another_instance_is_refused(kwargs):
    code = return_code_generate(secret=SECRET, piid=PIID, udi=UDI, nonce="n")
    with pytest.raises(CodeError) as info:
        return_code_verify(code, **kwargs)
    assert info.value.reason == RETURN_MISMATCH


@pytest.mark.parametrize("code", ["", "ChWhde-okvz5f", "ChWhde-okvz5f-ckFy8a-aSx4AK-Qf1iFZ-WXYaP1-wwDwmB-K5SEWq-rb"])
def test_malformed_return_codes(code):
    with pytest.raises(CodeError) as info:
        return_code_verify(code, secret=SECRET, piid=PIID, udi=UDI)
    assert info.value.reason == RETURN_DAMAGED


def test_every_single_character_change_to_a_return_code_is_refused():
    code = return_code_generate(secret=SECRET, piid=PIID, udi=UDI, nonce="n")
    for index, ch in enumerate(code):
        for replacement in {other_char(ch, B62), other_char(ch), "-", " "} - {ch}:
            with pytest.raises(CodeError):
                return_code_verify(mutate(code, index, replacement), secret=SECRET, piid=PIID, udi=UDI)


@given(st.binary(min_size=1, max_size=64), st.text(max_size=40), st.text(max_size=40), st.text(max_size=20))
def test_return_codes_round_trip(secret, piid, udi, nonce):
    code = return_code_generate(secret=secret, piid=piid, udi=udi, nonce=nonce)
    return_code_verify(code, secret=secret, piid=piid, udi=udi)


def test_b62_is_fixed_width():
    assert codes._b62(b"\x00", 4) == "0000"
    assert codes._b62(bytes([61]), 2) == "0z"
