"""agent.client.exchange_many: many appliances' renewals in batch POSTs, each
message's result what a single exchange gives — against a canned CSSM that
answers what the test says (per-message answers, a refusal of the whole
batch, a 500, garbage, no answer), and with the lab's faults."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway_ui.agent import client
from gateway_ui.agent.client import AgentError, exchange_many
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, Product, TransportMode
from licensing_core import pki
from licensing_core.faults import Fault, fault_set

pytestmark = pytest.mark.django_db


class Canned:
    """A CSSM stand-in: records each POST and answers (status, body) from `reply(payload)`."""

    def __init__(self):
        self.posts: list[tuple[str, dict, dict]] = []
        self.reply = lambda payload: (200, {"status": "ok", "answers": []})
        self.hold = threading.Event()
        self.hold.set()
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                canned.posts.append((self.path, dict(self.headers), payload))
                canned.hold.wait(10)
                status, body = canned.reply(payload)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the agent gave up waiting (the timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned(settings):
    server = Canned()
    settings.CSSM_BASE_URL = server.url
    yield server
    server.close()


@pytest.fixture
def fleet(demo_lab):
    """Three registered-looking appliances (their own device keys) of the demo lab."""
    out = []
    for i in range(3):
        a = Appliance.objects.create(
            lab=demo_lab, hostname=f"b{i}.example.com", product=Product.ESA, model_pid="C395", serial=f"B{i}"
        )
        a.device_key_pem = pki.make_device_key().decode()
        out.append(a)
    return out


def _messages(fleet, kind="authorize"):
    return [(a, kind, {"usage": []}, appliance_now(a)) for a in fleet]


def test_one_post_carries_every_signed_envelope_and_each_gets_its_own_answer(canned, fleet, demo_lab):
    answers = [
        {"status": "ok", "authorized_at": "x", "licenses": []},
        {"status": "error", "code": "replayed", "message": "Seen before."},
        {"status": "error", "code": "unknown_instance"},
    ]
    canned.reply = lambda payload: (200, {"status": "ok", "answers": answers})
    results = exchange_many(_messages(fleet))
    ((path, headers, payload),) = canned.posts
    assert path == "/licservice/license/batch"
    assert headers["Content-Type"] == "application/json"
    assert (payload["protocol"], payload["lab"]) == ("smart-agent/1", demo_lab.slug)
    for a, envelope in zip(fleet, payload["messages"], strict=True):
        assert (envelope["type"], envelope["udi"], envelope["lab"]) == ("authorize", a.udi, demo_lab.slug)
        signature = envelope.pop("signature")
        # Each envelope is signed by its own appliance's key, over the same canonical bytes as a single exchange.
        key = serialization.load_pem_private_key(a.device_key_pem.encode(), password=None)
        key.public_key().verify(base64.b64decode(signature), client.canonical(envelope), ec.ECDSA(hashes.SHA256()))
    assert results[0] == answers[0]
    assert (results[1].code, results[1].reason) == ("replayed", "Seen before.")
    assert (results[2].code, results[2].reason) == ("unknown_instance", client.REFUSAL_MESSAGES["unknown_instance"])


def test_a_refusal_of_the_whole_batch_is_every_messages_refusal(canned, fleet):
    canned.reply = lambda payload: (400, {"status": "error", "code": "bad_request", "message": "Too many messages."})
    results = exchange_many(_messages(fleet))
    assert [(r.code, r.reason) for r in results] == [("bad_request", "Too many messages.")] * 3


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            500,
            b"<h1>Server Error</h1>",
            "Smart Software Manager at {url}/licservice/license is unavailable (HTTP 500).",
        ),
        (200, b"not json", "{url}/licservice/license did not answer as a Smart Software Manager (HTTP 200)."),
        (200, {"status": "ok", "answers": [{}]}, "{url}/licservice/license did not answer as a Smart Software Manager"),
    ],
)
def test_a_failed_batch_fails_each_message_with_the_single_exchanges_reason(canned, fleet, status, body, reason):
    """The reasons name the URL the agents are set to use (Direct), as a single exchange's do."""
    canned.reply = lambda payload: (status, body)
    results = exchange_many(_messages(fleet))
    assert len(results) == 3
    for r in results:
        assert isinstance(r, AgentError)
        assert r.code == "unreachable"
        assert r.reason.startswith(reason.format(url=canned.url))


def test_an_answer_that_is_not_an_object_fails_only_its_message(canned, fleet):
    canned.reply = lambda payload: (200, {"status": "ok", "answers": [{"status": "ok"}, "?", {"status": "ok"}]})
    results = exchange_many(_messages(fleet))
    assert results[0] == results[2] == {"status": "ok"}
    assert (
        results[1].reason == f"{canned.url}/licservice/license did not answer as a Smart Software Manager (HTTP 200)."
    )


def test_no_answer_within_the_batch_timeout_fails_every_message_as_timed_out(canned, fleet, settings, monkeypatch):
    settings.SMART_AGENT_HTTP_TIMEOUT = 1
    monkeypatch.setattr(client, "BATCH_SECONDS_PER_MESSAGE", 0)
    canned.hold.clear()  # the CSSM never answers in time
    results = exchange_many(_messages(fleet))
    expected = f"Communication with Smart Software Manager timed out ({canned.url}/licservice/license)."
    assert [r.reason for r in results] == [expected] * 3


def test_the_batch_timeout_allows_time_per_message(settings):
    settings.SMART_AGENT_HTTP_TIMEOUT = 10
    assert client.batch_timeout(1000) == (10, 10 + 1000 * client.BATCH_SECONDS_PER_MESSAGE)


def test_batches_hold_at_most_a_thousand_messages(canned, fleet, monkeypatch):
    monkeypatch.setattr(client, "BATCH_MAX", 2)
    canned.reply = lambda payload: (
        200,
        {"status": "ok", "answers": [{"status": "ok", "n": len(payload["messages"])}] * len(payload["messages"])},
    )
    results = exchange_many(_messages(fleet))
    assert [len(p["messages"]) for _, _, p in canned.posts] == [2, 1]
    assert [r["n"] for r in results] == [2, 2, 1]


def test_cssm_unreachable_fails_every_message_before_anything_is_sent(canned, fleet, demo_lab):
    fault_set(lab=demo_lab, fault=Fault.CSSM_UNREACHABLE, value=True)
    results = exchange_many(_messages(fleet))
    assert [r.reason for r in results] == [
        f"Unable to reach Smart Software Manager at {canned.url}/licservice/license."
    ] * 3
    assert canned.posts == []


def test_transport_gateway_down_does_not_cut_a_direct_batch(canned, fleet, demo_lab):
    canned.reply = lambda payload: (200, {"status": "ok", "answers": [{"status": "ok"}] * 3})
    fault_set(lab=demo_lab, fault=Fault.TRANSPORT_GATEWAY_DOWN, value=True)
    assert exchange_many(_messages(fleet)) == [{"status": "ok"}] * 3


def test_only_direct_appliances_without_a_proxy_are_batchable(fleet):
    a, b, c = fleet
    b.transport_mode, b.transport_url = TransportMode.GATEWAY, "https://tg.example.com/Transportgateway"
    c.proxy_host, c.proxy_port = "proxy.example.com", 3128
    assert [client.batchable(x) for x in fleet] == [True, False, False]
    with pytest.raises(ValueError, match="Direct without proxy"):
        exchange_many(_messages(fleet))
    with pytest.raises(ValueError, match="authorize and renew_id"):
        exchange_many([(a, "register", {}, appliance_now(a))])
