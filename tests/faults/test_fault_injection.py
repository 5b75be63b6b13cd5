"""Fault injection (licensing_core.faults) changes the real exchange, not its outcome:
the Smart Agent client refuses to connect when the lab cuts its transport, and the
CSSM endpoint really waits when the lab makes it slow. A CSSM answering 500 or
timing out leaves a failed attempt with its reason, retried on schedule."""

import http.server
import json
import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse

from cssm_portal.models import ProductInstance, RegistrationToken
from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, TransportMode
from licensing_core.faults import Fault, fault_set
from licensing_core.models import Event
from licensing_core.sweeps import lab_advance_by

pytestmark = pytest.mark.django_db(transaction=True)

GATEWAY_PATH = "/Transportgateway/services/DeviceRequestHandler"


def _register(appliance, token):
    services.agent_register(appliance=appliance, token=token, force=False, now=appliance_now(appliance))
    appliance.refresh_from_db()
    return appliance


def _use_gateway(appliance, url):
    Appliance.objects.filter(pk=appliance.pk).update(transport_mode=TransportMode.GATEWAY, transport_url=url)
    appliance.refresh_from_db()


def _wait_for(predicate, seconds=15.0):
    """Bounded wait for a server thread to finish work it owns (not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# --- CSSM unreachable (Direct transport) ---------------------------------------------------------


def test_cssm_unreachable_fails_direct_registration_before_sending(cssm, enabled, make_token, demo_lab):
    fault_set(lab=demo_lab, fault=Fault.CSSM_UNREACHABLE, value=True)
    token = make_token()
    _register(enabled, token)
    assert enabled.registration_state == "reg_failed"
    assert enabled.registration_error == f"Unable to reach Smart Software Manager at {cssm.url}/licservice/license."
    # Nothing reached the CSSM: no product instance, the token unused, no refusal logged there.
    assert not ProductInstance.objects.filter(lab=demo_lab, udi=enabled.udi).exists()
    assert RegistrationToken.objects.get(value=token).uses == 0
    assert enabled.alerts.filter(kind="registration_failed").exists()


def test_cssm_unreachable_off_again_lets_registration_through(cssm, enabled, make_token, demo_lab):
    fault_set(lab=demo_lab, fault=Fault.CSSM_UNREACHABLE, value=True)
    _register(enabled, make_token())
    assert enabled.registration_state == "reg_failed"
    fault_set(lab=demo_lab, fault=Fault.CSSM_UNREACHABLE, value=False)
    _register(enabled, make_token())
    assert enabled.registration_state == "registered"


def test_cssm_unreachable_does_not_cut_a_transport_gateway(cssm, enabled, make_token, demo_lab):
    _use_gateway(enabled, cssm.url + GATEWAY_PATH)
    fault_set(lab=demo_lab, fault=Fault.CSSM_UNREACHABLE, value=True)
    _register(enabled, make_token())
    assert enabled.registration_state == "registered"


def test_cssm_unreachable_is_shown_on_the_page(cssm, enabled, make_token, demo_lab, client, login_as):
    login_as("admin")
    fault_set(lab=demo_lab, fault=Fault.CSSM_UNREACHABLE, value=True)
    r = client.post(
        reverse("gateway:sl_register", args=[demo_lab.slug, enabled.hostname]), {"token": make_token()}, follow=True
    )
    assert f"Unable to reach Smart Software Manager at {cssm.url}/licservice/license." in r.content.decode()


# --- Transport gateway down -------------------------------------------------------------------------


def test_transport_gateway_down_fails_gateway_registration_before_sending(cssm, enabled, make_token, demo_lab):
    _use_gateway(enabled, cssm.url + GATEWAY_PATH)
    fault_set(lab=demo_lab, fault=Fault.TRANSPORT_GATEWAY_DOWN, value=True)
    token = make_token()
    _register(enabled, token)
    assert enabled.registration_state == "reg_failed"
    assert enabled.registration_error == f"Unable to reach Smart Software Manager at {cssm.url}{GATEWAY_PATH}."
    assert not ProductInstance.objects.filter(lab=demo_lab, udi=enabled.udi).exists()
    assert RegistrationToken.objects.get(value=token).uses == 0


def test_transport_gateway_down_does_not_cut_direct_transport(cssm, enabled, make_token, demo_lab):
    fault_set(lab=demo_lab, fault=Fault.TRANSPORT_GATEWAY_DOWN, value=True)
    _register(enabled, make_token())
    assert enabled.registration_state == "registered"


def test_faults_of_another_lab_do_not_apply(cssm, enabled, make_token, demo_lab):
    from licensing_core.models import Lab

    other = Lab.objects.create(name="Other", slug="other")
    fault_set(lab=other, fault=Fault.CSSM_UNREACHABLE, value=True)
    _register(enabled, make_token())
    assert enabled.registration_state == "registered"


# --- CSSM slow ------------------------------------------------------------------------------------


@pytest.fixture
def registered(cssm, enabled, make_token, pools):
    _register(enabled, make_token())
    assert enabled.registration_state == "registered"
    return enabled


def test_cssm_slow_makes_the_endpoint_wait_the_configured_delay(client, demo_lab, monkeypatch):
    import cssm_portal.agent_api as agent_api

    waited = []
    monkeypatch.setattr(agent_api.time, "sleep", waited.append)
    envelope = {
        "protocol": "smart-agent/1", "lab": demo_lab.slug, "type": "deregister", "udi": "PID:C395 SN:X",
        "sent_at": "2000-01-01T00:00:00+00:00", "nonce": "0" * 32, "body": {},
    }  # fmt: skip

    def post():
        return client.post("/licservice/license", data=json.dumps(envelope), content_type="application/json")

    post()
    assert waited == []
    fault_set(lab=demo_lab, fault=Fault.CSSM_SLOW, value=7)
    r = post()
    assert waited == [7]
    assert r.status_code < 500
    assert r.json()["message"]


@pytest.mark.slow
def test_cssm_slow_beyond_the_agent_timeout_fails_the_exchange(registered, demo_lab, settings):
    settings.SMART_AGENT_HTTP_TIMEOUT = 1
    fault_set(lab=demo_lab, fault=Fault.CSSM_SLOW, value=3)
    before = Event.objects.filter(lab=demo_lab, kind="cssm.instance.authorized").count()
    now = appliance_now(registered)
    services.renew_authorization(appliance=registered, now=now)
    registered.refresh_from_db()
    assert registered.last_auth_ok is False
    assert registered.last_auth_reason.startswith("Communication with Smart Software Manager timed out")
    assert registered.next_auth_renewal_at == registered.last_auth_attempt_at + timedelta(hours=24)
    assert registered.exchange == ""
    # The slow CSSM still answers after the agent gave up; let its thread finish before teardown.
    assert _wait_for(lambda: Event.objects.filter(lab=demo_lab, kind="cssm.instance.authorized").count() > before)


@pytest.mark.slow
def test_cssm_slow_within_the_agent_timeout_succeeds(registered, demo_lab, settings):
    settings.SMART_AGENT_HTTP_TIMEOUT = 5
    fault_set(lab=demo_lab, fault=Fault.CSSM_SLOW, value=1)
    services.renew_authorization(appliance=registered, now=appliance_now(registered))
    registered.refresh_from_db()
    assert registered.last_auth_ok is True


# --- CSSM answering 500, retried on schedule ------------------------------------------------------


class _Broken(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self):  # noqa: N802
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<h1>Internal Server Error</h1>")

    def log_message(self, *args):
        pass


@pytest.fixture
def broken_cssm():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    _Broken.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _auth_failures(appliance):
    return list(
        Event.objects.filter(appliance_id=appliance.pk, kind="authorization.failed")
        .order_by("at")
        .values_list("at", flat=True)
    )


def test_cssm_500_records_a_failed_attempt_and_retries_on_schedule(registered, demo_lab, settings, broken_cssm, cssm):
    settings.CSSM_BASE_URL = broken_cssm
    services.renew_authorization(appliance=registered, now=appliance_now(registered))
    registered.refresh_from_db()
    assert _Broken.hits >= 1  # the request really reached the failing server
    assert registered.last_auth_ok is False
    assert registered.last_auth_reason == (
        f"Smart Software Manager at {broken_cssm}/licservice/license is unavailable (HTTP 500)."
    )
    first = registered.last_auth_attempt_at
    assert registered.next_auth_renewal_at == first + timedelta(hours=24)
    assert registered.alerts.filter(kind="authorization_failed").exists()
    assert _auth_failures(registered) == [first]

    # Still broken a day later: the sweep retries exactly on schedule and records a second failure.
    lab_advance_by(lab=demo_lab, by=timedelta(hours=24, minutes=1))
    registered.refresh_from_db()
    assert _auth_failures(registered) == [first, first + timedelta(hours=24)]
    assert registered.last_auth_ok is False

    # The CSSM is back: the next scheduled retry succeeds.
    settings.CSSM_BASE_URL = cssm.url
    lab_advance_by(lab=demo_lab, by=timedelta(hours=24, minutes=1))
    registered.refresh_from_db()
    assert len(_auth_failures(registered)) == 2
    assert registered.last_auth_ok is True
    assert registered.last_auth_reason == ""
    assert registered.last_auth_attempt_at == first + timedelta(hours=48)
