"""The Smart Agent endpoint: success and every refusal of docs/protocol.md."""

from datetime import timedelta

import pytest

from cssm_portal import services
from cssm_portal.models import CssmAlert, LicensePool, LicenseTransaction, ProductInstance, RegistrationToken
from cssm_portal.tests.conftest import tag
from licensing_core import pki
from licensing_core.clock import clock_advance
from licensing_core.models import Event

pytestmark = pytest.mark.django_db


def test_register_returns_an_id_certificate_and_the_accounts(agent, token, lab, now):
    status, answer = agent.register(token.value)
    assert status == 200, answer
    assert answer["status"] == "ok"
    assert answer["smart_account"] == "Example Corp"
    assert answer["virtual_account"] == "ESA"
    assert answer["export_controlled"] is False
    info = pki.verify_certificate(
        ca_cert_pem=answer["ca_certificate"].encode(), cert_pem=answer["certificate"].encode(), now=now
    )
    assert info.udi == agent.udi
    instance = ProductInstance.objects.get(piid=answer["instance_id"])
    assert instance.name == agent.hostname
    assert instance.last_contact == now
    token.refresh_from_db()
    assert token.uses == 1
    assert Event.objects.filter(kind="cssm.instance.registered", product_instance_id=instance.pk).exists()


def test_the_transport_gateway_path_answers_too(client, lab, token, make_agent):
    agent = make_agent(path="/Transportgateway/services/DeviceRequestHandler")
    status, _ = agent.register(token.value)
    assert status == 200


@pytest.mark.parametrize(
    ("mutate", "code", "http"),
    [
        (lambda t, now: None, None, 200),
        (lambda t, now: RegistrationToken.objects.filter(pk=t.pk).update(revoked_at=now), "token_revoked", 403),
        (
            lambda t, now: RegistrationToken.objects.filter(pk=t.pk).update(expires_at=now - timedelta(seconds=1)),
            "token_expired",
            403,
        ),
        (lambda t, now: RegistrationToken.objects.filter(pk=t.pk).update(max_uses=1, uses=1), "token_used_up", 403),
    ],
)
def test_register_checks_the_token(agent, token, now, mutate, code, http):
    mutate(token, now)
    status, answer = agent.register(token.value)
    assert status == http
    if code:
        assert answer["code"] == code
        assert answer["message"]


def test_register_refuses_a_foreign_or_garbled_token(agent, token):
    status, answer = agent.register("bm90IGEgdG9rZW4=")
    assert (status, answer["code"]) == (400, "token_invalid")
    from licensing_core import codes

    foreign = codes.token_generate(secret_key=b"x" * 32, now=token.created_at)
    status, answer = agent.register(foreign)
    assert (status, answer["code"]) == (400, "token_invalid")


def test_token_uses_never_exceed_the_maximum(make_agent, va, now):
    t = services.token_create(
        va=va, actor="admin", description="", expire_days=1, max_uses=2, export_controlled=False, now=now
    )
    codes_seen = [make_agent().register(t.value)[0] for _ in range(3)]
    assert codes_seen == [200, 200, 403]
    t.refresh_from_db()
    assert t.uses == 2


def test_reregistration_needs_force_and_replaces_the_instance(agent, token):
    assert agent.register(token.value)[0] == 200
    first = ProductInstance.objects.get(udi=agent.udi)
    status, answer = agent.register(token.value)
    assert (status, answer["code"]) == (409, "already_registered")
    status, answer = agent.register(token.value, force=True)
    assert status == 200
    assert ProductInstance.objects.filter(udi=agent.udi).count() == 1
    assert str(ProductInstance.objects.get(udi=agent.udi).piid) != str(first.piid)


def test_clock_out_of_sync(agent, token):
    agent.skew = timedelta(minutes=61)
    status, answer = agent.register(token.value)
    assert (status, answer["code"]) == (403, "clock_out_of_sync")
    agent.skew = timedelta(minutes=-59)
    assert agent.register(token.value)[0] == 200


@pytest.mark.parametrize(
    ("raw", "content_type", "http"),
    [
        ("not json", "application/json", 400),
        ("[1]", "application/json", 400),
        ('{"protocol": "smart-agent/2"}', "application/json", 400),
        ("{}", "text/plain", 400),
        ("{" + " " * 70000 + "}", "application/json", 413),
    ],
)
def test_bad_requests(client, lab, raw, content_type, http):
    response = client.post("/licservice/license", data=raw, content_type=content_type)
    assert response.status_code == http
    assert response.json()["code"] == "bad_request"


def test_missing_fields_are_bad_requests(agent, token):
    env = agent.envelope("register", {"token": token.value}, sign=False)
    status, answer = agent.post(env)
    assert (status, answer["code"]) == (400, "bad_request")
    env = agent.envelope("authorize", {"usage": "x"})
    del env["nonce"]
    assert agent.post(env)[1]["code"] == "bad_request"


def test_get_is_not_allowed(client):
    assert client.get("/licservice/license").status_code == 405


def test_unknown_lab(agent, token):
    env = agent.envelope("authorize", {"usage": []})
    env["lab"] = "nowhere"
    status, answer = agent.post(env)
    assert (status, answer["code"]) == (404, "lab_not_found")


def _registered(agent, token):
    status, answer = agent.register(token.value)
    assert status == 200, answer
    return ProductInstance.objects.get(udi=agent.udi)


def test_authorize_answers_per_licence_and_flags_shortages(agent, make_agent, token, pool, lab, now):
    _registered(agent, token)
    status, answer = agent.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 1}, {"tag": "bogus", "count": 1}]})
    assert status == 200, answer
    by_tag = {row["tag"]: row["status"] for row in answer["licenses"]}
    assert by_tag == {tag("VOF"): "authorized", "bogus": "invalid_tag"}
    assert answer["expires_at"] == (now + timedelta(days=90)).isoformat()
    assert answer["next_renewal"] == (now + timedelta(days=30)).isoformat()
    # Two more in use than purchased: everybody using VOF is out of compliance.
    other = make_agent()
    _registered(other, token)
    status, answer = other.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 2}]})
    assert answer["licenses"][0]["status"] == "out_of_compliance"
    assert CssmAlert.objects.filter(alert_type="Insufficient Licenses", cleared_at__isnull=True).count() == 1
    status, answer = agent.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 1}]})
    assert answer["licenses"][0]["status"] == "out_of_compliance"
    # Release: back in compliance and the alert clears.
    other.send("authorize", {"usage": []})
    status, answer = agent.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 1}]})
    assert answer["licenses"][0]["status"] == "authorized"
    assert not CssmAlert.objects.filter(alert_type="Insufficient Licenses", cleared_at__isnull=True).exists()


def test_authorize_updates_last_contact(agent, token, lab):
    instance = _registered(agent, token)
    clock_advance(lab=lab, by=timedelta(hours=2))
    agent.send("authorize", {"usage": []})
    instance.refresh_from_db()
    assert instance.last_contact > instance.registered_at


def test_sma_tags_are_invalid_on_an_esa(agent, token):
    _registered(agent, token)
    _, answer = agent.send("authorize", {"usage": [{"tag": tag("imh", "SMA"), "count": 1}]})
    assert answer["licenses"][0]["status"] == "invalid_tag"


def test_unknown_instance(agent):
    status, answer = agent.send("authorize", {"usage": []})
    assert (status, answer["code"]) == (404, "unknown_instance")


def test_signature_missing_or_wrong(agent, token):
    _registered(agent, token)
    status, answer = agent.send("authorize", {"usage": []}, sign=False)
    assert (status, answer["code"]) == (403, "signature_invalid")
    env = agent.envelope("authorize", {"usage": []})
    env["body"] = {"usage": [{"tag": tag("VOF"), "count": 5}]}  # changed after signing
    status, answer = agent.post(env)
    assert (status, answer["code"]) == (403, "signature_invalid")
    agent.key = pki.make_device_key()  # another device's key
    status, answer = agent.send("authorize", {"usage": []})
    assert (status, answer["code"]) == (403, "signature_invalid")


def test_certificate_expired(agent, token, lab):
    _registered(agent, token)
    clock_advance(lab=lab, by=timedelta(days=366))
    status, answer = agent.send("authorize", {"usage": []})
    assert (status, answer["code"]) == (403, "certificate_expired")


def test_replayed(agent, token):
    _registered(agent, token)
    env = agent.envelope("authorize", {"usage": []})
    assert agent.post(env)[0] == 200
    status, answer = agent.post(env)
    assert (status, answer["code"]) == (409, "replayed")


def test_renew_id(agent, token, lab, now):
    instance = _registered(agent, token)
    clock_advance(lab=lab, by=timedelta(days=180))
    csr = pki.make_csr(key_pem=agent.key, common_name=agent.hostname, udi=agent.udi).decode()
    status, answer = agent.send("renew_id", {"csr": csr})
    assert status == 200, answer
    instance.refresh_from_db()
    assert instance.cert_expires_at.isoformat() == answer["registration_expires"]
    assert instance.cert_expires_at > now + timedelta(days=500)
    status, answer = agent.send("renew_id", {"csr": "garbage"})
    assert (status, answer["code"]) == (400, "bad_request")


def test_deregister_returns_licences(agent, token, pool):
    _registered(agent, token)
    agent.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 2}]})
    status, answer = agent.send("deregister", {})
    assert (status, answer) == (200, {"status": "ok"})
    assert not ProductInstance.objects.filter(udi=agent.udi).exists()
    assert services.in_use_by_tag(pool.virtual_account).get(tag("VOF"), 0) == 0
    status, answer = agent.send("authorize", {"usage": []})
    assert answer["code"] == "unknown_instance"


def test_dlc_deposit(agent, token, pool):
    _registered(agent, token)
    body = {"licenses": [{"tag": tag("VOF"), "count": 3, "classic_feature": "Outbreak Filters"}]}
    status, answer = agent.send("dlc_deposit", body)
    assert status == 200, answer
    assert answer["conversion"] == "success"
    pool.refresh_from_db()
    assert pool.purchased == 5
    assert LicenseTransaction.objects.filter(source="DLC Device Migration", quantity=3).exists()
    status, answer = agent.send("dlc_deposit", body)
    assert (status, answer["code"]) == (422, "dlc_failed")


@pytest.mark.parametrize(
    "licenses",
    [[], [{"tag": "nope", "count": 1}], [{"tag": tag("imh", "SMA"), "count": 1}]],
)
def test_dlc_refusals(agent, token, licenses):
    _registered(agent, token)
    status, answer = agent.send("dlc_deposit", {"licenses": licenses})
    assert (status, answer["code"]) == (422, "dlc_failed")
    assert LicensePool.objects.filter(tag="nope").count() == 0


def test_refusals_write_events(agent, lab):
    agent.send("authorize", {"usage": []})
    assert Event.objects.filter(lab=lab, kind="cssm.agent.refused").exists()


def test_a_second_product_with_the_same_serial_raises_duplicate_licenses(make_agent, token, account):
    first = make_agent(pid="C395", serial="FCHSAME01")
    assert first.register(token.value)[0] == 200
    assert not CssmAlert.objects.filter(alert_type="Duplicate Licenses", cleared_at__isnull=True).exists()
    second = make_agent(pid="C100V", serial="FCHSAME01")
    assert second.register(token.value)[0] == 200
    alert = CssmAlert.objects.get(alert_type="Duplicate Licenses", cleared_at__isnull=True)
    assert alert.smart_account == account
    assert "FCHSAME01" in alert.message
    # Reregistering (force) replaces the instance: the duplicate still holds and stays open, once.
    assert second.register(token.value, force=True)[0] == 200
    assert CssmAlert.objects.filter(alert_type="Duplicate Licenses", cleared_at__isnull=True).count() == 1


def test_registration_runs_the_same_statements_whatever_the_account_holds(make_agent, token, lab, va, now):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cssm_portal.tests.conftest import instances_bulk

    def statements() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert make_agent().register(token.value)[0] == 200
        return len(ctx.captured_queries)

    few = statements()
    instances_bulk(lab=lab, va=va, now=now, serial="BULK{:04d}", name="bulk{:04d}", numbers=range(300))
    assert statements() == few
