"""The guide's portal procedures, driven in Chromium against a live server."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from cssm_portal import services
from cssm_portal.models import ProductInstance, RegistrationToken, Reservation, SmartAccount, VirtualAccount
from cssm_portal.tests.conftest import tag
from licensing_core import codes
from licensing_core.clock import lab_now
from licensing_core.trust import lab_trust

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(live_server, demo_lab, demo_password, page):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    account = SmartAccount.objects.get(lab=demo_lab, domain="example.com")
    va = VirtualAccount.objects.get(smart_account=account, name="ESA")

    def go(name, *args):
        page.goto(live_server.url + reverse(f"cssm:{name}", args=["demo", account.pk, *args]))

    return {"page": page, "account": account, "va": va, "go": go, "lab": demo_lab}


def test_token_creation_steps_1_to_4(portal):
    page, va = portal["page"], portal["va"]
    # Step 1: Inventory > General of the Virtual Account.
    portal["go"]("general", va.pk)
    expect(page.get_by_text("Cisco Software Central > Smart Software Licensing")).to_be_visible()
    expect(page.get_by_role("heading", name="Product Instance Registration Tokens")).to_be_visible()
    # Step 2: New Token... opens the dialog.
    page.get_by_role("link", name="New Token...").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Create Registration Token")).to_be_visible()
    expect(dialog.get_by_text("Between 1 - 365, 30 days recommended")).to_be_visible()
    # A bad value gets its message beside the field.
    dialog.get_by_label("Expire After:").fill("400")
    dialog.get_by_role("button", name="Create Token").click()
    expect(dialog.get_by_text("Expire After must be between 1 - 365 days.")).to_be_visible()
    # Step 3: fill in and Create Token.
    dialog.get_by_label("Description:").fill("Secure Email Gateways")
    dialog.get_by_label("Expire After:").fill("30")
    dialog.get_by_label("Max. Number of Uses:").fill("100")
    dialog.get_by_role("button", name="Create Token").click()
    expect(dialog.locator("#new-token")).to_be_visible()
    token = RegistrationToken.objects.get()
    expect(dialog.locator("#new-token")).to_have_value(token.value)
    # Step 4: Copy the token.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    dialog.get_by_role("button", name="Copy", exact=True).click()
    assert page.evaluate("navigator.clipboard.readText()") == token.value
    dialog.get_by_role("link", name="Close").click()
    row = page.get_by_role("row").filter(has_text=codes.token_display(token.value))
    expect(row).to_contain_text("(in 30 days)")
    expect(row).to_contain_text("0 of 100")
    expect(row).to_contain_text("Not Allowed")
    expect(row).to_contain_text("Secure Email Gateways")
    expect(row).to_contain_text("admin")


def test_generating_an_authorization_code_from_a_request_code(portal):
    page, va, lab = portal["page"], portal["va"], portal["lab"]
    request_code = codes.request_code_generate(pid="C395", serial="AIRGAP01")
    portal["go"]("licenses", va.pk)
    page.get_by_role("link", name="License Reservation...").click()
    dialog = page.get_by_role("dialog")
    # A code that does not parse is refused.
    dialog.get_by_label("Reservation Request Code:").fill("CB-ZC395:AIRGAP01-abc")
    dialog.get_by_role("button", name="Next").click()
    expect(dialog.locator(".field-error")).to_contain_text("request code")
    dialog.get_by_label("Reservation Request Code:").fill(request_code)
    dialog.get_by_role("button", name="Next").click()
    expect(dialog.get_by_role("heading", name="Step 2: Select Licenses")).to_be_visible()
    # More than available is refused.
    dialog.get_by_label("Email Security Appliance Outbreak Filters").fill("5")
    dialog.get_by_role("button", name="Next").click()
    expect(dialog.get_by_text("Only 1 available.")).to_be_visible()
    dialog.get_by_label("Email Security Appliance Outbreak Filters").fill("")
    dialog.get_by_label("Email Security Appliance Anti-Spam License").fill("2")
    dialog.get_by_role("button", name="Next").click()
    expect(dialog.get_by_role("heading", name="Step 3: Review and Confirm")).to_be_visible()
    dialog.get_by_role("button", name="Generate Authorization Code").click()
    code_box = dialog.locator("#authorization-code")
    expect(code_box).to_have_value(re.compile(r"^<specificPLR>"))
    parsed = codes.authorization_code_parse(
        code_box.input_value(),
        ca_cert_pem=bytes(lab_trust(lab=lab, now=lab_now(lab)).ca_cert_pem),
        expected_request_code=request_code,
        expected_udi="PID:C395,SN:AIRGAP01",
    )
    assert [(e.tag, e.count) for e in parsed.entitlements] == [(tag("case"), 2)]
    with page.expect_download() as download:
        dialog.get_by_role("link", name="Download as File").click()
    assert download.value.suggested_filename == "AuthorizationCode_SN_AIRGAP01.txt"


def _reserving(va, serial, count=1):
    lab = va.smart_account.lab
    return services.reservation_authorize(
        va=va,
        request_code=codes.request_code_generate(pid="C395", serial=serial),
        reservation_type="SPECIFIC",
        quantities={tag("case"): count},
        actor="admin",
        now=lab_now(lab),
    ).instance


def test_updating_reserved_licenses_and_entering_the_confirmation_code(portal):
    page, va = portal["page"], portal["va"]
    inst = _reserving(va, "UPD00001")
    portal["go"]("instances", va.pk)
    row = page.get_by_role("row").filter(has_text=inst.name)
    row.get_by_role("link", name="Update Reserved Licenses...").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Select Licenses")).to_be_visible()
    dialog.get_by_label("Email Security Appliance Anti-Spam License").fill("3")
    dialog.get_by_role("button", name="Next").click()
    expect(dialog.get_by_role("heading", name="Review and Confirm")).to_be_visible()
    dialog.get_by_role("button", name="Generate Authorization Code").click()
    code = dialog.locator("#authorization-code").input_value()
    assert code.startswith("<specificPLR>")
    assert Reservation.objects.get(instance=inst).pending
    # The device installs the code and shows its confirmation code.
    dialog.get_by_role("link", name="Enter Confirmation Code...").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Confirmation Code:").fill("deadbeef")
    dialog.get_by_role("button", name="OK").click()
    expect(dialog.locator(".field-error")).to_contain_text("does not match")
    dialog.get_by_label("Confirmation Code:").fill(codes.confirmation_code(code))
    dialog.get_by_role("button", name="OK").click()
    expect(page.get_by_text("reservation update of")).to_be_visible()
    reservation = Reservation.objects.get(instance=inst)
    assert not reservation.pending
    assert reservation.entitlements == {tag("case"): 3}


def test_removing_a_product_instance_with_its_return_code(portal):
    page, va, lab = portal["page"], portal["va"], portal["lab"]
    inst = _reserving(va, "RET00001", count=2)
    portal["go"]("instances", va.pk)
    row = page.get_by_role("row").filter(has_text=inst.name)
    row.get_by_role("link", name="Remove...").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Confirm Remove Product Instance")).to_be_visible()
    dialog.get_by_label("Reservation Return Code:").fill("not-a-code")
    dialog.get_by_role("button", name="Remove Product Instance").click()
    expect(dialog.get_by_text(codes.RETURN_DAMAGED)).to_be_visible()
    secret = bytes(lab_trust(lab=lab, now=lab_now(lab)).return_code_secret)
    good = codes.return_code_generate(secret=secret, piid=str(inst.piid), udi=inst.udi)
    dialog.get_by_label("Reservation Return Code:").fill(good)
    dialog.get_by_role("button", name="Remove Product Instance").click()
    expect(page.get_by_text(f'Product instance "{inst.name}" was removed')).to_be_visible()
    assert not ProductInstance.objects.filter(pk=inst.pk).exists()
    expect(page.get_by_role("row").filter(has_text=inst.name)).to_have_count(0)
