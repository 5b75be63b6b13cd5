"""The batch endpoint: many signed messages in one request, each answered and
checked as on the single endpoint, with the same side effects, in bulk."""

import json
import secrets
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cssm_portal import services
from cssm_portal.models import CssmAlert, LicensePool, LicenseUsage, ProductInstance, VirtualAccount
from cssm_portal.tests.conftest import Agent, tag
from licensing_core import pki
from licensing_core.clock import clock_freeze, lab_now
from licensing_core.models import Event, Lab

pytestmark = pytest.mark.django_db

BATCH = "/licservice/license/batch"


def post_batch(client, lab, messages, *, path=BATCH, **extra):
    body = {"protocol": "smart-agent/1", "lab": lab.slug, "messages": messages, **extra}
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def _registered(client, lab, token, n):
    agents = [Agent(client, lab) for _ in range(n)]
    for agent in agents:
        assert agent.register(token.value)[0] == 200
    return agents


def _usage(*pairs):
    return {"usage": [{"tag": tag(code), "count": count} for code, count in pairs]}


def test_a_batch_authorizes_each_appliance(client, lab, token):
    agents = _registered(client, lab, token, 3)
    messages = [a.envelope("authorize", _usage(("case", 1))) for a in agents]
    status, answer = post_batch(client, lab, messages)
    assert status == 200
    assert answer["status"] == "ok"
    assert [a["status"] for a in answer["answers"]] == ["ok"] * 3
    assert answer["answers"][0]["licenses"] == [
        {"tag": tag("case"), "status": "authorized", "display_name": services.license_name(tag("case"))}
    ]
    assert answer["answers"][0]["expires_at"] == (lab_now(lab) + timedelta(days=90)).isoformat()
    for agent, message in zip(agents, messages, strict=True):
        inst = ProductInstance.objects.get(udi=agent.udi)
        assert message["nonce"] in inst.recent_nonces
        assert list(inst.usage.values_list("tag", "count")) == [(tag("case"), 1)]
    assert LicensePool.objects.get(virtual_account__name="ESA", tag=tag("case")).in_use == 3
    assert Event.objects.filter(kind="cssm.instance.authorized").count() == 3


def test_the_transport_gateway_batch_path_answers_too(client, lab, token):
    (agent,) = _registered(client, lab, token, 1)
    status, answer = post_batch(
        client,
        lab,
        [agent.envelope("authorize", {"usage": []})],
        path="/Transportgateway/services/DeviceRequestHandler/batch",
    )
    assert (status, answer["answers"][0]["status"]) == (200, "ok")


def test_each_message_is_checked_alone(client, lab, token, now):
    good, replaying, expired, bad_body = _registered(client, lab, token, 4)
    first = replaying.envelope("authorize", {"usage": []})
    assert replaying.post(first)[0] == 200
    ProductInstance.objects.filter(udi=expired.udi).update(
        certificate_pem=pki.issue_id_certificate(
            ca=services.certificate_authority(services.lab_trust(lab=lab, now=now)),
            csr_pem=pki.make_csr(key_pem=expired.key, common_name="x", udi=expired.udi),
            now=now - timedelta(days=400),
        ).decode()
    )
    stranger = Agent(client, lab)  # never registered
    forged = good.envelope("authorize", {"usage": []})
    forged["signature"] = replaying.envelope("authorize", {"usage": []})["signature"]
    skewed = Agent(client, lab, serial=good.serial)
    skewed.key, skewed.skew = good.key, timedelta(hours=2)
    register = good.envelope("register", {}, sign=False)
    foreign = good.envelope("authorize", {"usage": []})
    foreign["lab"] = "elsewhere"
    messages = [
        good.envelope("authorize", _usage(("case", 1))),
        stranger.envelope("authorize", {"usage": []}),
        forged,
        replaying.envelope("authorize", {"usage": []}, nonce=first["nonce"]),
        skewed.envelope("authorize", {"usage": []}),
        expired.envelope("authorize", {"usage": []}),
        bad_body.envelope("authorize", {"usage": "lots"}),
        register,
        foreign,
        "not an envelope",
        good.envelope("renew_id", {"csr": "not a CSR"}),
    ]
    status, answer = post_batch(client, lab, messages)
    assert status == 200
    codes = [a.get("code", a["status"]) for a in answer["answers"]]
    assert codes == [
        "ok",
        "unknown_instance",
        "signature_invalid",
        "replayed",
        "clock_out_of_sync",
        "certificate_expired",
        "bad_request",
        "bad_request",
        "bad_request",
        "bad_request",
        "bad_request",
    ]
    assert "batch" in answer["answers"][7]["message"]
    # Refusals after the envelope checks are in the Event Log, as on the single endpoint.
    refused = Event.objects.filter(kind="cssm.agent.refused")
    assert refused.count() == 7
    assert refused.filter(message__contains="(clock_out_of_sync)").exists()
    # A message refused for its body was still received: last contact and nonce count.
    assert messages[6]["nonce"] in ProductInstance.objects.get(udi=bad_body.udi).recent_nonces
    assert messages[2]["nonce"] not in ProductInstance.objects.get(udi=good.udi).recent_nonces


def _batch(**fields):
    return json.dumps({"protocol": "smart-agent/1", "lab": "demo", "messages": [{}], **fields})


@pytest.mark.parametrize(
    ("body", "content_type", "code", "http"),
    [
        ("{not json", "application/json", "bad_request", 400),
        ("[1, 2]", "application/json", "bad_request", 400),
        (_batch(protocol="other"), "application/json", "bad_request", 400),
        (_batch(lab="nowhere"), "application/json", "lab_not_found", 404),
        (_batch(messages=[]), "application/json", "bad_request", 400),
        (_batch(messages=[{}] * 1001), "application/json", "bad_request", 400),
        (_batch(messages="x"), "application/json", "bad_request", 400),
        (_batch(), "text/plain", "bad_request", 400),
    ],
)
def test_whole_batch_refusals(client, lab, body, content_type, code, http):
    response = client.post(BATCH, data=body, content_type=content_type)
    assert response.status_code == http
    assert response.json()["status"] == "error"
    assert response.json()["code"] == code


def test_a_batch_larger_than_16_mib_is_refused(client, lab):
    body = json.dumps({"protocol": "smart-agent/1", "lab": lab.slug, "messages": ["x" * (16 * 1024 * 1024)]})
    response = client.post(BATCH, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "bad_request"


def test_get_is_not_allowed(client, lab):
    assert client.get(BATCH).status_code == 405


@pytest.mark.postgres
def test_renewals_with_unchanged_usage_cost_the_same_queries_for_10_and_100(client, lab, token):
    token.max_uses = None
    token.save()
    agents = _registered(client, lab, token, 100)
    usage = _usage(("case", 1), ("VOF", 1))
    post_batch(client, lab, [a.envelope("authorize", usage) for a in agents])  # usage in place

    def queries(n: int) -> int:
        messages = [a.envelope("authorize", usage) for a in agents[:n]]
        with CaptureQueriesContext(connection) as ctx:
            status, answer = post_batch(client, lab, messages)
        assert status == 200
        assert {a["status"] for a in answer["answers"]} == {"ok"}
        return len(ctx.captured_queries)

    assert queries(10) == queries(100)


def test_the_batch_query_count_does_not_depend_on_the_usage_when_it_is_unchanged(client, lab, token):
    """SQLite splits large bulk statements, so this runs on both with 10 and 20 messages."""
    token.max_uses = None
    token.save()
    agents = _registered(client, lab, token, 20)
    usage = _usage(("case", 1))
    post_batch(client, lab, [a.envelope("authorize", usage) for a in agents])

    def queries(n: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            post_batch(client, lab, [a.envelope("authorize", usage) for a in agents[:n]])
        return len(ctx.captured_queries)

    assert queries(10) == queries(20)
    # No usage row is written when nothing changed.
    with CaptureQueriesContext(connection) as ctx:
        post_batch(client, lab, [a.envelope("authorize", usage) for a in agents[:10]])
    assert not [q for q in ctx.captured_queries if "licenseusage" in q["sql"] and not q["sql"].startswith("SELECT")]


# --- equivalence with the single endpoint -------------------------------------------------------


@pytest.fixture
def twin(lab):
    """A second lab seeded like the demo lab, its clock frozen at the same instant."""
    from labs.world import world_seed

    other = Lab.objects.create(slug="twin", name="Twin")
    world_seed(lab=other)
    Lab.objects.filter(pk=other.pk).update(clock_frozen_at=lab.clock_frozen_at, clock_floor=lab.clock_floor)
    other.refresh_from_db()
    clock_freeze(lab=other)
    return other


def _state(lab, nonces):
    """What the messages changed, comparable across two labs (no ids, no keys; of
    the nonces, those of the messages: each lab's registration had its own)."""
    instances = {
        i.udi: (i.last_contact, [n for n in i.recent_nonces if n in nonces], i.cert_expires_at is not None)
        for i in ProductInstance.objects.filter(lab=lab)
    }
    usage = sorted(
        LicenseUsage.objects.filter(instance__lab=lab).values_list("instance__udi", "tag", "count", "status")
    )
    pools = sorted(
        LicensePool.objects.filter(virtual_account__smart_account__lab=lab).values_list(
            "virtual_account__name", "tag", "purchased", "in_use", "in_compliance"
        )
    )
    events = Counter(
        Event.objects.filter(lab=lab, side="cssm")
        .exclude(kind__in=["cssm.alert.raised", "cssm.token.created", "cssm.instance.registered"])
        .values_list("kind", "message", "subject_name")
    )
    alerts = sorted(
        CssmAlert.objects.filter(smart_account__lab=lab, cleared_at__isnull=True).values_list(
            "alert_type", "virtual_account__name"
        )
    )
    return instances, usage, pools, events, alerts


def _answer(a):
    """An answer without what differs between labs by construction (certificates)."""
    if "certificate" in a:
        return {**{k: v for k, v in a.items() if k != "certificate"}, "certificate": a["certificate"][:27]}
    return a


def test_a_batch_has_the_effects_of_its_messages_sent_one_by_one(client, lab, twin):
    def token_for(which):
        va = VirtualAccount.objects.get(smart_account__lab=which, name="ESA")
        return services.token_create(
            va=va, actor="t", description="", expire_days=30, max_uses=None, export_controlled=False, now=lab_now(which)
        )

    tokens = {lab.slug: token_for(lab), twin.slug: token_for(twin)}
    serials = [f"TWIN{i:04d}" for i in range(5)]
    keys = [pki.make_device_key() for _ in serials]

    def agents_of(which):
        out = []
        for serial, key in zip(serials, keys, strict=True):
            agent = Agent(client, which, serial=serial)
            agent.key = key
            out.append(agent)
        return out

    single, batched = agents_of(lab), agents_of(twin)
    for group, which in ((single, lab), (batched, twin)):
        for agent in group[:4]:  # the fifth is never registered
            assert agent.register(tokens[which.slug].value)[0] == 200
    nonces = [secrets.token_hex(16) for _ in range(14)]
    script = [
        (0, "authorize", _usage(("VOF", 1), ("case", 1)), nonces[0]),
        (1, "authorize", _usage(("VOF", 2)), nonces[1]),  # now short of Outbreak Filters
        (0, "authorize", _usage(("VOF", 0), ("case", 2)), nonces[2]),
        (2, "renew_id", None, nonces[3]),
        (3, "authorize", {"usage": [{"tag": tag("case"), "count": 1}, {"tag": "bogus", "count": 1}]}, nonces[4]),
        (1, "authorize", _usage(("VOF", 2)), nonces[5]),  # unchanged
        (1, "authorize", _usage(("VOF", 2)), nonces[5]),  # replayed
        (4, "authorize", _usage(("case", 1)), nonces[6]),  # unknown instance
        (2, "authorize", _usage(("sophos", 3)), nonces[7]),
        (3, "authorize", {"usage": "x"}, nonces[8]),  # bad body
        (1, "authorize", _usage(("VOF", 1)), nonces[9]),  # back within the one purchased: the verdict flips
        (0, "authorize", {"usage": []}, nonces[10]),
        # Export-restricted PXE Encryption: refused, then no longer requested (its alert clears).
        (2, "authorize", _usage(("envelope_encryption", 1), ("case", 1)), nonces[11]),
        (3, "authorize", _usage(("envelope_encryption", 1)), nonces[12]),
        (2, "authorize", _usage(("case", 1)), nonces[13]),
    ]

    def envelopes(group):
        out = []
        for index, kind, body, nonce in script:
            agent = group[index]
            if kind == "renew_id":
                body = {"csr": pki.make_csr(key_pem=agent.key, common_name=agent.hostname, udi=agent.udi).decode()}
            out.append(agent.envelope(kind, body, nonce=nonce))
        return out

    one_by_one = [_answer(single[0].post(env)[1]) for env in envelopes(single)]
    status, answer = post_batch(client, twin, envelopes(batched))
    assert status == 200
    assert [_answer(a) for a in answer["answers"]] == one_by_one
    assert {a.get("code") for a in one_by_one} >= {None, "replayed", "unknown_instance", "bad_request"}
    statuses = {lic["status"] for a in one_by_one for lic in a.get("licenses", [])}
    assert statuses == {"authorized", "out_of_compliance", "invalid_tag", "not_authorized"}
    for name, got, want in zip(
        ("instances", "usage", "pools", "events", "alerts"), _state(twin, nonces), _state(lab, nonces), strict=True
    ):
        assert got == want, name
