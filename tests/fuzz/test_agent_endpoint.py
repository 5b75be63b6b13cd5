"""The Smart Agent endpoint, fuzzed with hypothesis: every message type with fields replaced
by any JSON (wrong types, huge numbers, unicode, control characters) or left out, and raw bytes
that are not JSON at all. Never a 500; always a JSON refusal with a code and a message."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cssm_portal.agent_api import TYPES
from licensing_core.clock import clock_freeze, lab_now
from tests.fuzz.strategies import value

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXAMPLES = 200  # per test; docs/reliability.md multiplies this out

json_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        value,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
BODY_FIELDS = ("token", "csr", "hostname", "product", "pid", "serial", "force", "usage", "licenses", "tag", "count")
ENVELOPE_FIELDS = ("protocol", "lab", "type", "udi", "sent_at", "nonce", "body", "signature")

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _envelope(lab):
    body = st.fixed_dictionaries({}, optional=dict.fromkeys(BODY_FIELDS, json_value))
    return st.fixed_dictionaries(
        {"protocol": st.just("smart-agent/1"), "lab": st.just(lab.slug), "type": st.sampled_from(TYPES)},
        optional={
            "udi": st.one_of(st.just("PID:C395 SN:FUZZ1"), json_value),
            "sent_at": st.one_of(st.just(lab_now(lab).isoformat()), json_value),  # in the skew tolerance
            "nonce": st.one_of(st.just("a" * 32), json_value),
            "body": st.one_of(body, json_value),
            "signature": json_value,
        },
    )


def _check(response):
    assert response.status_code < 500
    data = response.json()
    assert data["status"] == "error"
    assert isinstance(data["code"], str)
    assert data["code"]
    assert isinstance(data["message"], str)
    assert data["message"]


def test_envelopes_with_any_fields(client, demo_lab):
    clock_freeze(lab=demo_lab)

    @FUZZ
    @given(env=_envelope(demo_lab), drop=st.lists(st.sampled_from(ENVELOPE_FIELDS), max_size=3))
    def check(env, drop):
        for name in drop:
            env.pop(name, None)
        response = client.post("/licservice/license", data=json.dumps(env), content_type="application/json")
        _check(response)

    check()


def test_raw_bytes(client, demo_lab):
    @FUZZ
    @given(raw=st.one_of(st.binary(max_size=512), st.text(max_size=512).map(str.encode)))
    def check(raw):
        _check(client.post("/licservice/license", data=raw, content_type="application/json"))

    check()


def test_bodies_over_64_kib(client, demo_lab):
    @settings(FUZZ, max_examples=10)
    @given(extra=st.integers(min_value=1, max_value=512 * 1024))
    def check(extra):
        raw = b'{"protocol": "smart-agent/1", "pad": "' + b"x" * (64 * 1024 + extra) + b'"}'
        response = client.post("/licservice/license", data=raw, content_type="application/json")
        _check(response)
        assert response.status_code == 413

    check()
