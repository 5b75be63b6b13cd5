"""On-Prem Accounts: Unregister, and manual synchronization by file (§5.8 satellite alerts,
§5.10)."""

import base64
import html
import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cssm_portal import satellites, services
from cssm_portal.models import CssmAlert, SatelliteInstance, SmartAccount, VirtualAccount
from cssm_portal.tests.conftest import tag
from licensing_core import pki
from licensing_core.alerts import CssmAlertType as T
from licensing_core.clock import clock_advance, lab_now
from licensing_core.models import Event, Lab
from licensing_core.trust import lab_trust

pytestmark = pytest.mark.django_db


@pytest.fixture
def sat(account):
    return SatelliteInstance.objects.get(smart_account=account, name="satellite.example.com")


def _url(name, account, *args):
    return reverse(f"cssm:{name}", args=["demo", account.pk, *args])


def _open(account, alert_type):
    return list(CssmAlert.objects.filter(smart_account=account, alert_type=alert_type, cleared_at__isnull=True))


def _upload(client, account, text, name="sync.json"):
    data = {"file": SimpleUploadedFile(name, text if isinstance(text, bytes) else text.encode())}
    return html.unescape(client.post(_url("satellite_sync_upload", account), data, follow=True).content.decode())


def _sync_file(client, account, sat):
    response = client.get(_url("satellite_sync_request", account, sat.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="satellite-sync-satellite.example.com.json"'
    return response.content.decode()


# --- Unregister ---------------------------------------------------------------------------------------


def test_unregister_removes_the_satellite_and_returns_its_virtual_accounts(client, login_as, lab, account, sat):
    lab_va = VirtualAccount.objects.get(smart_account=account, name="Lab")
    # 40 days without synchronization: Synchronization Overdue is open for it.
    SatelliteInstance.objects.filter(pk=sat.pk).update(last_sync=lab_now(lab) - timedelta(days=40))
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    assert _open(account, T.SYNCHRONIZATION_OVERDUE)
    login_as("sa-admin")
    dialog = client.get(_url("satellite_unregister", account, sat.pk)).content.decode()
    assert "Confirm Unregister Satellite" in dialog
    assert "Lab" in dialog
    body = html.unescape(client.post(_url("satellite_unregister", account, sat.pk), follow=True).content.decode())
    assert 'Satellite "satellite.example.com" was unregistered and removed.' in body
    assert not SatelliteInstance.objects.filter(pk=sat.pk).exists()
    assert VirtualAccount.objects.filter(pk=lab_va.pk).exists()
    assert not lab_va.satellites.exists()
    [alert] = _open(account, T.SATELLITE_UNREGISTERED_AND_REMOVED)
    assert alert.severity == "Major"
    assert alert.virtual_account is None
    assert alert.message == (
        'Satellite "satellite.example.com" was unregistered and removed by sa-admin; Virtual Account Lab is '
        "managed in Smart Software Manager again."
    )
    assert not _open(account, T.SYNCHRONIZATION_OVERDUE)
    event = Event.objects.get(kind="cssm.satellite.unregistered")
    assert (event.smart_account_id, event.actor) == (account.pk, "sa-admin")
    # The Activity > Event Log of the Smart Account lists it.
    assert "was unregistered and removed" in client.get(_url("activity_events", account)).content.decode()


@pytest.mark.parametrize("username", ["sa-user", "sa-viewer", "va-admin"])
def test_only_a_smart_account_administrator_unregisters(client, login_as, account, sat, username):
    login_as(username)
    assert "Unregister..." not in client.get(_url("on_prem", account)).content.decode()
    response = client.post(_url("satellite_unregister", account, sat.pk))
    assert response.status_code == 403
    assert SatelliteInstance.objects.filter(pk=sat.pk).exists()


def test_a_satellite_of_another_smart_account_is_not_found(client, login_as, lab, account):
    other = SmartAccount.objects.create(lab=lab, name="Acme", domain="acme.example")
    theirs = SatelliteInstance.objects.create(smart_account=other, name="sat.acme.example", version="8")
    login_as("admin")
    assert client.post(_url("satellite_unregister", account, theirs.pk)).status_code == 404
    assert client.get(_url("satellite_sync_request", account, theirs.pk)).status_code == 404


# --- manual synchronization ---------------------------------------------------------------------------


def test_file_synchronization_from_upload_to_download(client, login_as, lab, account, sat):
    SatelliteInstance.objects.filter(pk=sat.pk).update(last_sync=lab_now(lab) - timedelta(days=65))
    services.alerts_refresh(smart_account=account, now=lab_now(lab))
    assert _open(account, T.SATELLITE_SYNC_DEADLINE)
    login_as("admin")
    request_text = _sync_file(client, account, sat)
    request = json.loads(request_text)
    assert request["format"] == "ssm-onprem-sync-request"
    assert request["satellite"]["name"] == "satellite.example.com"
    assert [v["name"] for v in request["virtual_accounts"]] == ["Lab"]
    clock_advance(lab=lab, by=timedelta(hours=1))
    body = _upload(client, account, request_text)
    assert 'The authorization file for Satellite "satellite.example.com" is ready to download.' in body
    assert ">Download</button>" in body
    [ready] = _open(account, T.SATELLITE_AUTHORIZATION_FILE_READY)
    assert ready.severity == "Informational"
    assert ready.virtual_account is None
    assert 'The authorization file for Satellite "satellite.example.com" is ready' in ready.message
    sat.refresh_from_db()
    assert sat.last_sync < lab_now(lab) - timedelta(days=64)  # not synchronized until the file is applied
    # Download: the signed authorization file; the satellite is now synchronized.
    clock_advance(lab=lab, by=timedelta(hours=1))
    response = client.post(_url("satellite_authorization", account, sat.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="satellite-authorization-satellite.example.com.json"'
    )
    document = json.loads(response.content)
    assert document["format"] == "ssm-onprem-authorization"
    assert document["request_nonce"] == request["nonce"]
    [lab_va] = document["virtual_accounts"]
    purchased = {lic["tag"]: lic["purchased"] for lic in lab_va["licenses"]}
    assert purchased == {tag("imh"): 2, tag("case"): 2, tag("imh", "SMA"): 1}  # the Lab account's licences
    signature = base64.b64decode(document["signature"])
    ca = bytes(lab_trust(lab=lab, now=lab_now(lab)).ca_cert_pem)
    assert pki.verify_with_ca(ca_cert_pem=ca, data=satellites._canonical(document), signature=signature)
    synced_at = lab_now(lab)
    sat.refresh_from_db()
    assert sat.last_sync == synced_at
    assert not _open(account, T.SATELLITE_AUTHORIZATION_FILE_READY)
    assert not _open(account, T.SATELLITE_SYNC_DEADLINE)
    assert Event.objects.filter(kind="cssm.satellite.synchronized", smart_account_id=account.pk).count() == 1
    # Downloading the same file again gives the file but is no new synchronization.
    clock_advance(lab=lab, by=timedelta(days=3))
    assert client.post(_url("satellite_authorization", account, sat.pk)).content == response.content
    sat.refresh_from_db()
    assert sat.last_sync == synced_at
    assert Event.objects.filter(kind="cssm.satellite.synchronized").count() == 1


def test_the_same_synchronization_file_is_taken_once(client, login_as, account, sat):
    login_as("admin")
    text = _sync_file(client, account, sat)
    _upload(client, account, text)
    body = _upload(client, account, text)
    assert "This synchronization file (or a newer one) was already uploaded." in body
    assert len(_open(account, T.SATELLITE_AUTHORIZATION_FILE_READY)) == 1


def _resigned(lab, document):
    """A file the lab's key signed, with content no satellite exported."""
    return satellites._signed(document, sa=SmartAccount.objects.get(lab=lab, domain="example.com"), now=lab_now(lab))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda lab, text: b"\x00\xff binary", "The file is not a text file"),
        (lambda lab, text: "just text", "This is not a Satellite synchronization file."),
        (lambda lab, text: json.dumps({"format": "smart-licensing-lab"}), "This is not a Satellite synchronization"),
        (
            lambda lab, text: text.replace('"Lab"', '"ESA"'),
            "The synchronization file was changed after the satellite exported it",
        ),
        (
            lambda lab, text: json.dumps({k: v for k, v in json.loads(text).items() if k != "signature"}),
            "its signature does not match",
        ),
        (
            lambda lab, text: _resigned(lab, {**json.loads(text), "smart_account": "acme.example"}),
            "This synchronization file belongs to Smart Account acme.example, not to example.com.",
        ),
        (
            lambda lab, text: _resigned(
                lab, {**json.loads(text), "satellite": {**json.loads(text)["satellite"], "id": 999999}}
            ),
            'Satellite "satellite.example.com" is not registered to this Smart Account',
        ),
        (
            lambda lab, text: _resigned(
                lab, {**json.loads(text), "generated_at": (lab_now(lab) + timedelta(days=2)).isoformat()}
            ),
            "The synchronization file was made in the future",
        ),
        (
            lambda lab, text: _resigned(lab, {**json.loads(text), "generated_at": "yesterday"}),
            "The synchronization file has no valid creation time.",
        ),
    ],
    ids=["binary", "not-json", "other-format", "tampered", "unsigned", "other-account", "unknown", "future", "no-time"],
)
def test_bad_synchronization_files_are_refused_with_a_reason(client, login_as, lab, account, sat, make, message):
    login_as("admin")
    body = _upload(client, account, make(lab, _sync_file(client, account, sat)))
    assert message in body
    sat.refresh_from_db()
    assert not sat.authorization_file
    assert not _open(account, T.SATELLITE_AUTHORIZATION_FILE_READY)


def test_a_file_from_another_lab_is_refused(client, login_as, lab, account, sat):
    other_lab = Lab.objects.create(name="Other", slug="other")
    other_sa = SmartAccount.objects.create(lab=other_lab, name="Example Corp", domain="example.com")
    twin = SatelliteInstance.objects.create(smart_account=other_sa, name="satellite.example.com", version="8")
    _, text = satellites.sync_request_file(satellite=twin, now=lab_now(lab))
    login_as("admin")
    assert "its signature does not match" in _upload(client, account, text)


def test_download_before_any_upload_says_what_to_do(client, login_as, account, sat):
    login_as("admin")
    body = html.unescape(client.post(_url("satellite_authorization", account, sat.pk), follow=True).content.decode())
    assert 'No authorization file is ready for Satellite "satellite.example.com"' in body


@pytest.mark.parametrize("username", ["sa-user", "va-admin"])
def test_only_a_smart_account_administrator_synchronizes(client, login_as, account, sat, username):
    login_as("admin")
    text = _sync_file(client, account, sat)
    login_as(username)
    assert client.get(_url("satellite_sync_request", account, sat.pk)).status_code == 403
    response = client.post(
        _url("satellite_sync_upload", account), {"file": SimpleUploadedFile("s.json", text.encode())}
    )
    assert response.status_code == 403
    assert client.post(_url("satellite_authorization", account, sat.pk)).status_code == 403
    sat.refresh_from_db()
    assert not sat.authorization_file
