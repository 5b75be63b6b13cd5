"""Malformed, tampered, foreign (another lab's keys) and replayed codes, tokens and signed
envelopes are each refused with their own reason, on the endpoint or on the page."""

import base64
import json
import secrets

import pytest
from django.urls import reverse

from cssm_portal import services as cssm
from cssm_portal.models import LicensePool, SmartAccount, VirtualAccount
from cssm_portal.tests.conftest import Agent
from gateway_ui import services as gw
from gateway_ui.clock import appliance_now
from licensing_core import catalogue, codes
from licensing_core.clock import clock_freeze, lab_now
from licensing_core.models import Lab
from licensing_core.trust import lab_trust

pytestmark = pytest.mark.django_db

IMH = next(lic.entitlement_tag for lic in catalogue.ESA_LICENSES if lic.code == "imh")


@pytest.fixture
def other_lab():
    lab = Lab.objects.create(name="Other", slug="other")
    clock_freeze(lab=lab)
    sa = SmartAccount.objects.create(lab=lab, name="Other Corp", domain="other.org", reservation_allowed=True)
    va = VirtualAccount.objects.create(smart_account=sa, name="Main", is_default=True)
    LicensePool.objects.create(virtual_account=va, tag=IMH, purchased=5)
    return lab


def _flip(text: str, at: int) -> str:
    ch = text[at]
    return text[:at] + ("A" if ch != "A" else "B") + text[at + 1 :]


# --- registration tokens ----------------------------------------------------------------------------


def test_malformed_token(agent):
    status, data = agent.register("this is not a token")
    assert (status, data["code"], data["message"]) == (400, "token_invalid", codes.TOKEN_INVALID)


def test_tampered_token(agent, token):
    raw = base64.b64decode(token.value).decode()
    other_first = "1" if raw[0] != "1" else "2"
    forged = base64.b64encode((other_first + raw[1:]).encode()).decode()  # another token id, the old MAC
    status, data = agent.register(forged)
    assert (status, data["code"], data["message"]) == (400, "token_invalid", codes.TOKEN_FOREIGN)


def test_foreign_token(agent, other_lab):
    theirs = codes.token_generate(
        secret_key=bytes(lab_trust(lab=other_lab, now=lab_now(other_lab)).token_secret), now=lab_now(other_lab)
    )
    status, data = agent.register(theirs)
    assert (status, data["code"], data["message"]) == (400, "token_invalid", codes.TOKEN_FOREIGN)


def test_replayed_token_beyond_its_uses(make_agent, va, now):
    once = cssm.token_create(
        va=va, actor="t", description="", expire_days=1, max_uses=1, export_controlled=False, now=now
    )
    assert make_agent().register(once.value)[0] == 200
    status, data = make_agent().register(once.value)
    assert (status, data["code"]) == (403, "token_used_up")
    assert data["message"] == "The registration token has reached its maximum number of uses."


def test_revoked_token(agent, token, now):
    cssm.token_revoke(token=token, actor="t", now=now)
    status, data = agent.register(token.value)
    assert (status, data["code"], data["message"]) == (403, "token_revoked", "The registration token has been revoked.")


# --- signed envelopes ----------------------------------------------------------------------------------


@pytest.fixture
def registered_agent(agent, token):
    assert agent.register(token.value)[0] == 200
    return agent


def test_tampered_envelope(registered_agent):
    env = registered_agent.envelope("authorize", {"usage": []})
    env["body"] = {"usage": [{"tag": IMH, "count": 1}]}  # changed after signing
    status, data = registered_agent.post(env)
    assert (status, data["code"]) == (403, "signature_invalid")
    assert data["message"]


def test_unsigned_envelope(registered_agent):
    status, data = registered_agent.send("authorize", {"usage": []}, sign=False)
    assert (status, data["code"], data["message"]) == (403, "signature_invalid", "The message is not signed.")


def test_foreign_key_signs_for_a_registered_product(registered_agent, client, lab):
    impostor = Agent(client, lab, serial=registered_agent.serial)  # same UDI, its own key
    status, data = impostor.send("authorize", {"usage": []})
    assert (status, data["code"]) == (403, "signature_invalid")


def test_replayed_envelope(registered_agent):
    env = registered_agent.envelope("authorize", {"usage": []})
    assert registered_agent.post(env)[0] == 200
    status, data = registered_agent.post(env)
    assert (status, data["code"], data["message"]) == (
        409,
        "replayed",
        "This message was already received (repeated nonce).",
    )


def test_envelope_for_another_lab(registered_agent, other_lab):
    env = registered_agent.envelope("authorize", {"usage": []})
    env["lab"] = other_lab.slug
    status, data = registered_agent.post(env)
    assert (status, data["code"]) == (404, "unknown_instance")


# --- authorization codes on the appliance page --------------------------------------------------------


@pytest.fixture
def requesting(enabled, account, lab):
    SmartAccount.objects.filter(pk=account.pk).update(reservation_allowed=True)
    now = appliance_now(enabled)
    gw.registration_mode_set(appliance=enabled, mode="license_reservation", now=now)
    gw.reservation_request_code(appliance=enabled, now=now)
    enabled.refresh_from_db()
    return enabled


def _authorize(va, request_code, now):
    return cssm.reservation_authorize(
        va=va, request_code=request_code, reservation_type="SPECIFIC", quantities={IMH: 1}, actor="t", now=now
    ).authorization_code


def _install(client, appliance, code):
    url = reverse("gateway:sl_install", args=[appliance.lab.slug, appliance.hostname])
    return client.post(url, {"source": "paste", "code": code}, follow=True).content.decode()


@pytest.fixture
def admin_client(client, login_as):
    login_as("admin")
    return client


def test_malformed_authorization_code(admin_client, requesting):
    assert codes.AUTH_DAMAGED.replace("'", "&#x27;") in _install(admin_client, requesting, "<specificPLR>")


def test_tampered_authorization_code(admin_client, requesting, va, now):
    code = _authorize(va, requesting.reservation_request_code, now)
    tampered = code.replace("<count>1</count>", "<count>9</count>")
    assert tampered != code
    assert codes.AUTH_FORGED in _install(admin_client, requesting, tampered)


def test_foreign_authorization_code(admin_client, requesting, other_lab):
    theirs = _authorize(
        VirtualAccount.objects.get(smart_account__lab=other_lab),
        requesting.reservation_request_code,
        lab_now(other_lab),
    )
    assert codes.AUTH_FORGED in _install(admin_client, requesting, theirs)


def test_replayed_authorization_code(admin_client, requesting, va, now):
    code = _authorize(va, requesting.reservation_request_code, now)
    assert "Smart Agent successfully installed the license reservation." in _install(admin_client, requesting, code)
    page = _install(admin_client, requesting, code)
    assert "Smart Agent successfully installed the license reservation." not in page
    assert 'role="alert"' in page


# --- return and confirmation codes on the portal ---------------------------------------------------------


@pytest.fixture
def reserved(requesting, va, now):
    _authorize(va, requesting.reservation_request_code, now)
    return va.instances.get(udi=requesting.udi)


def _remove(client, account, va, inst, code):
    url = reverse("cssm:instance_remove", args=[account.lab.slug, account.pk, va.pk, inst.piid])
    return client.post(url, {"return_code": code}).content.decode()


def test_malformed_return_code(admin_client, account, va, reserved):
    assert codes.RETURN_DAMAGED in _remove(admin_client, account, va, reserved, "12345")


def test_tampered_and_foreign_return_codes(admin_client, account, va, reserved, lab, other_lab):
    secret = bytes(lab_trust(lab=lab, now=lab_now(lab)).return_code_secret)
    good = codes.return_code_generate(secret=secret, piid=str(reserved.piid), udi=reserved.udi)
    tampered = _flip(good, 0)
    other_secret = bytes(lab_trust(lab=other_lab, now=lab_now(other_lab)).return_code_secret)
    foreign = codes.return_code_generate(secret=other_secret, piid=str(reserved.piid), udi=reserved.udi)
    assert codes.RETURN_MISMATCH in _remove(admin_client, account, va, reserved, tampered)
    assert codes.RETURN_MISMATCH in _remove(admin_client, account, va, reserved, foreign)
    assert va.instances.filter(pk=reserved.pk).exists()


def test_malformed_and_tampered_confirmation_codes(admin_client, account, va, reserved, now):
    cssm.reservation_update(instance=reserved, quantities={IMH: 2}, actor="t", now=now)
    url = reverse("cssm:instance_confirm", args=[account.lab.slug, account.pk, va.pk, reserved.piid])
    page = admin_client.post(url, {"confirmation_code": "xyz"}).content.decode()
    assert "The confirmation code must be 8 characters: digits 0-9 and letters a-f." in page
    page = admin_client.post(url, {"confirmation_code": secrets.token_hex(4)}).content.decode()
    assert "The confirmation code does not match the authorization code installed on the product." in page


# --- uploads over 64 KiB --------------------------------------------------------------------------------


def test_oversized_upload_refused_on_the_appliance(admin_client, requesting, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    big = SimpleUploadedFile("code.txt", b"x" * (settings.LAB_UPLOAD_MAX_BYTES + 1))
    url = reverse("gateway:sl_install", args=[requesting.lab.slug, requesting.hostname])
    page = admin_client.post(url, {"source": "upload", "code_file": big}, follow=True).content.decode()
    assert "it must be a text file of at most 64 KB" in page


def test_oversized_upload_refused_on_the_portal(admin_client, account, va, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    SmartAccount.objects.filter(pk=account.pk).update(reservation_allowed=True)
    big = SimpleUploadedFile("code.txt", b"x" * (settings.LAB_UPLOAD_MAX_BYTES + 1))
    url = reverse("cssm:reserve", args=[account.lab.slug, account.pk, va.pk])
    page = admin_client.post(url, {"step": "request", "request_file": big}).content.decode()
    assert "The file is larger than 64 KiB." in page


def test_oversized_agent_message_refused(client, lab):
    body = json.dumps({"protocol": "smart-agent/1", "pad": "x" * (64 * 1024)})
    response = client.post("/licservice/license", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["message"] == "The message is larger than 64 KiB."
