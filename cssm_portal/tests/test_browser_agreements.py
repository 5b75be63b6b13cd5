"""In Chromium: an updated agreement published in the lab, accepted from the portal's banner;
a satellite synchronized by file (Export Sync File, Upload, File Ready, Download)."""

import json

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from cssm_portal.models import AgreementAcceptance, CssmAlert, SatelliteInstance, SmartAccount
from licensing_core.alerts import CssmAlertType as T
from licensing_core.clock import clock_freeze, lab_now

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in(live_server, demo_lab, demo_password, page):
    clock_freeze(lab=demo_lab)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    account = SmartAccount.objects.get(lab=demo_lab, domain="example.com")

    def go(name, *args):
        page.goto(live_server.url + reverse(f"cssm:{name}", args=["demo", account.pk, *args]))

    return {"page": page, "account": account, "go": go, "url": live_server.url}


def _open(account, alert_type):
    return CssmAlert.objects.filter(smart_account=account, alert_type=alert_type, cleared_at__isnull=True)


def test_publish_an_agreement_then_accept_it_from_the_banner(signed_in):
    page, account = signed_in["page"], signed_in["account"]
    # The lab manager publishes an updated agreement on the lab page.
    page.goto(signed_in["url"] + reverse("labs:detail", args=["demo"]))
    page.get_by_label("What changed").fill("Usage data is kept for 5 years.")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messages")).to_contain_text("Smart Software Licensing Agreement version 1 published")
    # The portal shows the banner and both alerts.
    signed_in["go"]("alerts")
    banner = page.get_by_role("region", name="Smart Licensing Agreement Pending")
    expect(banner).to_contain_text("must be accepted for Smart Account Example Corp")
    table = page.locator("#alerts-table")
    expect(table).to_contain_text("Updated Smart License Agreement")
    expect(table).to_contain_text("Usage data is kept for 5 years.")
    expect(table).to_contain_text("Smart Licensing Agreement Pending")
    # View Agreement shows the text being accepted.
    banner.get_by_role("link", name="View Agreement").click()
    expect(page.get_by_text("SMART SOFTWARE LICENSING AGREEMENT (lab replica)")).to_be_visible()
    page.get_by_role("region", name="Smart Licensing Agreement Pending").get_by_role("button", name="Accept").click()
    expect(page.get_by_text("You accepted version 1 of the Smart Software Licensing Agreement.")).to_be_visible()
    expect(page.get_by_role("region", name="Smart Licensing Agreement Pending")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text="admin")).to_contain_text("1")
    # Both alerts are cleared.
    signed_in["go"]("alerts")
    table = page.locator("#alerts-table")
    expect(table).not_to_contain_text("Smart Licensing Agreement Pending")
    expect(table).not_to_contain_text("Updated Smart License Agreement")
    assert not _open(account, T.SMART_LICENSING_AGREEMENT_PENDING).exists()
    assert AgreementAcceptance.objects.get(smart_account=account).accepted_by == "admin"


def test_satellite_file_synchronization(signed_in, tmp_path):
    page, account = signed_in["page"], signed_in["account"]
    sat = SatelliteInstance.objects.get(smart_account=account)
    signed_in["go"]("on_prem")
    row = page.get_by_role("row").filter(has_text=sat.name)
    expect(row).to_contain_text("None")  # no authorization file yet
    # The file the satellite exports (the lab stands in for the satellite).
    with page.expect_download() as exported:
        row.get_by_role("link", name="Export Sync File").click()
    sync_file = tmp_path / exported.value.suggested_filename
    exported.value.save_as(sync_file)
    # A file that is not one is refused with the reason.
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}')
    page.get_by_label("Synchronization File:").set_input_files(bad)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("This is not a Satellite synchronization file.")).to_be_visible()
    # The real file: the authorization file is prepared.
    page.get_by_label("Synchronization File:").set_input_files(sync_file)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text(f'The authorization file for Satellite "{sat.name}" is ready to download.')).to_be_visible()
    signed_in["go"]("alerts")
    expect(page.locator("#alerts-table")).to_contain_text("Satellite Authorization File Ready")
    # Download from the satellite's row: the satellite is synchronized.
    signed_in["go"]("on_prem")
    row = page.get_by_role("row").filter(has_text=sat.name)
    with page.expect_download() as authorization:
        row.get_by_role("button", name="Download").click()
    assert authorization.value.suggested_filename == f"satellite-authorization-{sat.name}.json"
    document = json.loads(authorization.value.path().read_text())
    assert document["format"] == "ssm-onprem-authorization"
    sat.refresh_from_db()
    assert sat.last_sync == lab_now(account.lab)
    assert not _open(account, T.SATELLITE_AUTHORIZATION_FILE_READY).exists()
    signed_in["go"]("alerts")
    expect(page.locator("#alerts-table")).not_to_contain_text("Satellite Authorization File Ready")
