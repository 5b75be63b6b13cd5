"""The batch sweep (gateway_ui.sweeps) against the one-appliance-at-a-time
reference (LAB_SWEEP_BATCH = False): two identical labs live through the same
year, one each way, and end with the same events, alerts, e-mail, licence
rows and appliance states on both sides; a renewal sweep costs the same
queries for 10 or 50 appliances; a GUI exchange in flight keeps its
appliance out of the batch.

The CSSM is this test server's real endpoint (pytest-django live_server, in
another thread with its own database connection), so the queries counted
here are the gateway's only."""

import io
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cssm_portal.models import CssmAlert, LicensePool, LicenseUsage, ProductInstance
from gateway_ui import services
from gateway_ui.agent import client
from gateway_ui.clock import appliance_now
from gateway_ui.models import AlertMailState, AlertRecipient, Appliance, ApplianceAlert, ApplianceLicense, TransportMode
from gateway_ui.sweeps import gateway_process
from gateway_ui.tasks import exchange_claim, exchange_release
from labs.world import world_seed
from licensing_core import mail
from licensing_core.catalogue import ESA_LICENSES
from licensing_core.clock import clock_freeze, clock_set, lab_now
from licensing_core.faults import Fault, fault_set
from licensing_core.models import Event, Lab, MailMessage
from licensing_core.roles import GatewayRole
from licensing_core.sweeps import lab_advance
from tests.time.support import TRANSPORT_GATEWAY_PATH, free_port

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
VOF_TAG = next(lic.entitlement_tag for lic in ESA_LICENSES if lic.code == "VOF")


def _fleet(slug: str, registered: int) -> Lab:
    """A lab frozen at START with `registered` appliances cloned by seed_fleet."""
    lab = Lab.objects.create(slug=slug, name=slug)
    world_seed(lab=lab)
    clock_freeze(lab=lab)
    clock_set(lab=lab, to=START)
    call_command("seed_fleet", lab=slug, appliances=registered, registered=registered, tokens=0, stdout=io.StringIO())
    lab.refresh_from_db()
    return lab


def _gw(lab: Lab) -> list[Appliance]:
    return list(Appliance.objects.filter(lab=lab, registration_state="registered").order_by("hostname"))


def _vary(lab: Lab, cssm_url: str) -> None:
    """The same mix in each lab: clocks ahead, a Transport Gateway, a proxy
    that refuses connections, alert recipients (one with long duplicate
    waits), and an unregistered appliance whose evaluation runs."""
    gw = _gw(lab)
    for i, a in enumerate(gw):
        AlertRecipient.objects.create(
            appliance=a, address=f"ops{i}@example.com", classes={"System": ["Critical", "Warning", "Information"]}
        )
    Appliance.objects.filter(pk__in=[a.pk for a in gw[1::4]]).update(clock_skew_minutes=30)
    Appliance.objects.filter(pk=gw[0].pk).update(
        alert_duplicate_initial_seconds=100_000, alert_duplicate_max_seconds=31_536_000
    )
    Appliance.objects.filter(pk=gw[2].pk).update(proxy_host="127.0.0.1", proxy_port=free_port())
    Appliance.objects.filter(pk=gw[3].pk).update(
        transport_mode=TransportMode.GATEWAY, transport_url=cssm_url + TRANSPORT_GATEWAY_PATH
    )
    esa1 = Appliance.objects.get(lab=lab, hostname="esa1.example.com")
    now = appliance_now(esa1)
    services.sl_enable(appliance=esa1, user=None, now=now)
    services.changes_commit(appliance=esa1, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    AlertRecipient.objects.get_or_create(
        appliance=esa1, address="eval@example.com", defaults={"classes": {"System": ["Warning", "Critical"]}}
    )


def _year(lab: Lab) -> None:
    """A year in stages: a licence shortage from day 40, the CSSM unreachable
    on days 100-102, then the proxy removed."""
    lab_advance(lab=lab, to=START + timedelta(days=40))
    LicensePool.objects.filter(
        virtual_account__smart_account__lab=lab, virtual_account__name="Fleet", tag=VOF_TAG
    ).update(purchased=1)
    lab_advance(lab=lab, to=START + timedelta(days=100))
    fault_set(lab=lab, fault=Fault.CSSM_UNREACHABLE, value=True)
    lab_advance(lab=lab, to=START + timedelta(days=102))
    fault_set(lab=lab, fault=Fault.CSSM_UNREACHABLE, value=False)
    Appliance.objects.filter(lab=lab).exclude(proxy_host="").update(proxy_host="", proxy_port=None)
    lab_advance(lab=lab, to=START + timedelta(days=365))


def _per(pairs) -> dict[str, list]:
    out: dict[str, list] = {}
    for key, row in pairs:
        out.setdefault(key, []).append(row)
    return out


IDENTITY = {"id", "lab_id", "device_key_pem", "id_cert_pem", "piid"}


def _observed(lab: Lab, since_event: int) -> dict:
    """Everything the year wrote in a lab, in terms that do not depend on row ids or keys."""
    apps = {a.pk: a for a in Appliance.objects.filter(lab=lab)}
    host = {pk: a.hostname for pk, a in apps.items()}
    events = Event.objects.filter(lab=lab, pk__gt=since_event).order_by("id")
    alerts = ApplianceAlert.objects.filter(appliance__lab=lab).order_by("id")
    return {
        # Per appliance in the order written; the CSSM's by subject in lab-time order.
        "gateway events": _per(
            (host[e.appliance_id], (e.at, e.kind, e.message))
            for e in events.filter(side="gateway")
            if e.appliance_id in host
        ),
        "cssm events": sorted(  # registration tokens are random: only their kind and time
            (e.at, e.kind) if e.kind.startswith("cssm.token.") else (e.at, e.kind, e.subject_name, e.message)
            for e in events.filter(side="cssm")
        ),
        "alerts": _per(
            (host[a.appliance_id], (a.at, a.kind, a.severity, a.text, a.dedupe_key, a.emailed)) for a in alerts
        ),
        "mail": sorted(
            (m.lab_time, m.recipients, m.sender, m.subject, m.body_text) for m in MailMessage.objects.filter(lab=lab)
        ),
        "mail states": sorted(
            (host[s.appliance_id], s.fingerprint, s.last_sent_at, s.wait_seconds, s.suppressed)
            for s in AlertMailState.objects.filter(appliance__lab=lab)
        ),
        "appliances": sorted(
            (a.hostname, sorted((k, str(v)) for k, v in vars(a).items() if not k.startswith("_") and k not in IDENTITY))
            for a in apps.values()
        ),
        "licences": sorted(
            ApplianceLicense.objects.filter(appliance__lab=lab).values_list(
                "appliance__hostname", "code", "state", "ooc_since", "ooc_notices_sent_through", "changed_at"
            )
        ),
        "cssm alerts": sorted(  # those the demo world raised before START, at their wall time: "before"
            (t, m, raised if raised >= START else "before", cleared)
            for t, m, raised, cleared in CssmAlert.objects.filter(smart_account__lab=lab).values_list(
                "alert_type", "message", "raised_at", "cleared_at"
            )
        ),
        "instances": sorted(ProductInstance.objects.filter(lab=lab).values_list("name", "last_contact")),
        "usage": sorted(
            LicenseUsage.objects.filter(instance__lab=lab).values_list("instance__name", "tag", "count", "status")
        ),
    }


@pytest.mark.slow
def test_a_year_batched_ends_as_a_year_one_appliance_at_a_time(cssm, settings):
    batched, single = _fleet("eq-batch", 10), _fleet("eq-single", 10)
    for lab in (batched, single):
        _vary(lab, cssm.url)
    since = Event.objects.order_by("-pk").values_list("pk", flat=True).first()
    settings.LAB_SWEEP_BATCH = True
    _year(batched)
    settings.LAB_SWEEP_BATCH = False
    _year(single)
    got, want = _observed(batched, since), _observed(single, since)
    for key in want:
        assert got[key] == want[key], key
    # The year did what it is here for: renewals (batched, alone through the gateway and the proxy),
    # failures and retries, the shortage's grace notices and expiry, the evaluation's notices, e-mail.
    kinds = {e[1] for rows in want["gateway events"].values() for e in rows}
    for kind in ("authorization.succeeded", "authorization.failed", "id_renewal.succeeded", "authorization.expired"):
        assert kind in kinds, kind
    alerts = [a for rows in want["alerts"].values() for a in rows]
    alert_kinds = {a[1] for a in alerts}
    assert {"ooc_grace_expiry", "feature_expired", "eval_expiry", "authorization_failed"} <= alert_kinds
    assert any(not a[5] for a in alerts)  # some held back as duplicates
    assert len(want["mail"]) > 100


def _renewal_due(lab: Lab) -> None:
    """Move the lab to its appliances' next authorization renewal."""
    due = min(a.next_due_at for a in _gw(lab))
    clock_set(lab=lab, to=due)
    lab.refresh_from_db()


def test_a_renewal_sweep_costs_the_same_queries_for_10_or_50_appliances(cssm, monkeypatch):
    # Delivering the queued e-mail is the outbox task's work (eager in tests), not the sweep's.
    kicks = []
    monkeypatch.setattr(mail, "_kick", lambda: kicks.append(1))
    counts = {}
    for n in (10, 50):
        lab = _fleet(f"q{n}", n)
        _renewal_due(lab)
        kicks.clear()
        with CaptureQueriesContext(connection) as ctx:
            fired = gateway_process(lab, lab_now(lab))
        assert fired == n
        assert len(kicks) == 1  # one delivery run asked for
        assert Event.objects.filter(lab=lab, kind="authorization.succeeded", at=lab_now(lab)).count() == n
        assert MailMessage.objects.filter(lab=lab, status="pending", lab_time=lab_now(lab)).count() == n
        counts[n] = len(ctx.captured_queries)
    assert counts[10] == counts[50]


def test_renewals_go_in_one_batch_post_and_transport_gateway_ones_alone(cssm, monkeypatch):
    lab = _fleet("posts", 6)
    gw = _gw(lab)
    Appliance.objects.filter(pk=gw[0].pk).update(
        transport_mode=TransportMode.GATEWAY, transport_url=cssm.url + TRANSPORT_GATEWAY_PATH
    )
    posted = []
    real = client.requests.post

    def spy(url, **kwargs):
        posted.append(url.removeprefix(cssm.url))
        return real(url, **kwargs)

    monkeypatch.setattr(client.requests, "post", spy)
    _renewal_due(lab)
    assert gateway_process(lab, lab_now(lab)) == 6
    assert posted == [client.BATCH_PATH, TRANSPORT_GATEWAY_PATH]
    assert not Appliance.objects.filter(lab=lab).exclude(sweep_claimed_until=None, exchange_claimed_until=None).exists()


def test_an_exchange_the_gui_is_running_keeps_its_appliance_out_of_the_batch(cssm):
    lab = _fleet("busy", 3)
    busy, *others = _gw(lab)
    _renewal_due(lab)
    at = lab_now(lab)
    assert exchange_claim(busy.pk)  # "Renew Authorization Now" is being carried out by a worker
    assert gateway_process(lab, at) == 2
    busy.refresh_from_db()
    assert busy.last_auth_attempt_at < at  # not renewed by the sweep ...
    assert busy.sweep_claimed_until is None  # ... and released, still due, for the next sweep
    assert busy.next_due_at == at
    for a in others:
        a.refresh_from_db()
        assert a.last_auth_attempt_at == at
    exchange_release(busy.pk)
    assert gateway_process(lab, at) == 1
    busy.refresh_from_db()
    assert (busy.last_auth_attempt_at, busy.last_auth_ok) == (at, True)


def test_a_month_of_time_travel_costs_the_same_queries_for_10_or_50_appliances(cssm, monkeypatch):
    """Each step is a fixed handful of queries and one batch POST, whatever the fleet's size."""
    monkeypatch.setattr(mail, "_kick", lambda: None)  # e-mail delivery is the outbox task's
    counts = {}
    for n in (10, 50):
        lab = _fleet(f"tt{n}", n)
        with CaptureQueriesContext(connection) as ctx:
            result = lab_advance(lab=lab, to=START + timedelta(days=31))
        assert Event.objects.filter(lab=lab, kind="authorization.succeeded", at__gt=START).count() == n
        counts[n] = (len(ctx.captured_queries), result.steps)
    assert counts[10] == counts[50]


def test_a_time_travel_step_runs_only_the_sweeps_with_something_due(cssm, monkeypatch):
    from licensing_core import sweeps

    calls = []
    monkeypatch.setitem(
        sweeps._SWEEPS,
        "idle",
        sweeps.Sweep(name="idle", next_due=lambda lab: None, process=lambda lab, now: calls.append(now) or 0),
    )
    lab = _fleet("steps", 2)
    result = lab_advance(lab=lab, to=START + timedelta(days=61))
    assert result.steps >= 2  # two renewals on the way
    assert calls == [START, START + timedelta(days=61)]  # the catch-up at the start and the arrival only


def test_with_cssm_slow_each_renewal_waits_against_its_own_timeout(cssm, settings, monkeypatch):
    """As it does alone: the sweep sends one by one, and each exchange times out on its own."""
    lab = _fleet("slow", 2)
    settings.SMART_AGENT_HTTP_TIMEOUT = 1
    fault_set(lab=lab, fault=Fault.CSSM_SLOW, value=2)
    posted = []
    real = client.requests.post
    monkeypatch.setattr(client.requests, "post", lambda url, **kw: posted.append(url) or real(url, **kw))
    _renewal_due(lab)
    renewed = Event.objects.filter(lab=lab, kind="cssm.instance.authorized")
    before = renewed.count()
    assert gateway_process(lab, lab_now(lab)) == 2
    assert posted == [cssm.url + client.DIRECT_PATH] * 2
    for a in _gw(lab):
        assert a.last_auth_ok is False
        assert (
            a.last_auth_reason
            == f"Communication with Smart Software Manager timed out ({cssm.url}/licservice/license)."
        )
    # The slow CSSM still answers after the agents gave up; let it finish before the test ends.
    deadline = time.monotonic() + 15
    while renewed.count() < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert renewed.count() == before + 2
