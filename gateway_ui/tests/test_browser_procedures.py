"""The guide's procedures in Chromium against a live server; the Smart Agent reaches the real CSSM over HTTP."""

import re

import pytest
from playwright.sync_api import expect

from gateway_ui.models import Appliance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ESA1 = "esa1.example.com"


@pytest.fixture
def gui(page, cssm, demo_lab, demo_password):
    """Log in as admin and return a helper that opens appliance pages."""
    page.goto(f"{cssm.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{cssm.url}/")

    def open_(path="smart-licensing/", host=ESA1):
        page.goto(f"{cssm.url}/appliance/demo/{host}/{path}")
        return page

    return open_


def enable_and_commit(page, gui):
    gui()
    page.click("#enable_sl")
    expect(page.get_by_text("Learn More about Smart Software Licensing")).to_have_count(0)
    page.click("#sl_ok")
    expect(page.get_by_role("status").filter(has_text="Commit your changes")).to_be_visible()
    page.get_by_role("link", name="Commit Changes").click()
    expect(page.locator("h1")).to_have_text("Uncommitted Changes")
    page.fill("#comment", "enable smart licensing")
    page.get_by_role("button", name="Commit Changes").click()
    expect(page.locator("#row-registration-status")).to_have_text("Unregistered")


def register(page, gui, token):
    gui()
    page.click("#register")
    page.fill("#register_token", token)
    page.get_by_role("button", name="Register").click()


def test_enable_smart_licensing_and_commit(gui, page):
    gui()
    expect(page.get_by_role("link", name="Learn More about Smart Software Licensing")).to_be_visible()
    enable_and_commit(page, gui)
    expect(page.locator("#row-eval")).to_have_text("In Use")
    expect(page.locator("#row-eval-remaining")).to_have_text(re.compile(r"^\d+ days, \d+ hr, \d+ min, \d+ sec$"))
    expect(page.locator("#row-authorization-status")).to_have_text("Evaluation Mode")
    expect(page.locator("#row-transport")).to_contain_text(
        "Direct (https://smartreceiver.cisco.com/licservice/license)"
    )
    expect(page.get_by_role("link", name="No Changes Pending")).to_be_visible()
    gui("logs/smartlicense/")
    expect(page.locator("#smartlicense-log")).to_contain_text("Smart Licensing is enabled")
    gui("alerts/")
    expect(page.locator("#alert-list")).to_contain_text("Smart Software Licensing successfully enabled")


def test_register_request_licenses_and_deregister(gui, page, make_token, pools):
    enable_and_commit(page, gui)
    register(page, gui, make_token())
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    expect(page.locator("#row-registration-status")).to_contain_text("Registration Expires on:")
    expect(page.locator("#row-smart-account")).to_have_text("Example Corp")
    expect(page.locator("#row-virtual-account")).to_have_text("ESA")
    expect(page.locator("#row-last-auth")).to_contain_text("SUCCEEDED on")
    expect(page.locator("#row-eval")).to_have_text("Not In Use")
    # Requesting for Licenses: Licenses > Edit Settings > tick two > Submit.
    gui("licenses/")
    page.click("#edit_settings")
    page.check("#rsadlp")
    page.check("#ims")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status").filter(has_text="License changes submitted")).to_be_visible()
    for code in ("rsadlp", "ims"):
        expect(page.locator(f"tr[data-code={code}] .state")).to_have_text("In Compliance")
    expect(page.locator("tr[data-code=imh] .state")).to_have_text("In Compliance")
    # Deregistering: Action > Deregister > Go > Submit.
    gui()
    page.select_option("#config_action", "Deregister")
    page.get_by_role("button", name="Go").click()
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#row-registration-status")).to_have_text("Unregistered")
    expect(page.locator("#row-authorization-status")).to_have_text("Evaluation Mode")
    gui("logs/smartlicense/")
    expect(page.locator("#smartlicense-log")).to_contain_text(
        "The product is deregistered successfully from Smart Software Manager"
    )
    expect(page.locator("#smartlicense-log")).to_contain_text("The product is registered successfully")


def test_a_bad_token_shows_its_message(gui, page):
    enable_and_commit(page, gui)
    register(page, gui, "bm90IGEgdG9rZW4=")
    expect(page.locator("#row-registration-status")).to_contain_text("Unregistered - Registration Failed")
    reason = Appliance.objects.get(hostname=ESA1).registration_error
    assert reason
    expect(page.locator("#row-registration-status")).to_contain_text(reason)
    gui("alerts/")
    expect(page.locator("#alert-list")).to_contain_text(
        "Registration of the product with Smart Software Manager failed"
    )


def test_empty_token_message(gui, page):
    enable_and_commit(page, gui)
    register(page, gui, "")
    expect(page.get_by_role("alert")).to_have_text("Token cannot be empty")


def _authorization_code(request_code, quantities):
    from cssm_portal.models import VirtualAccount
    from cssm_portal.services import reservation_authorize
    from licensing_core.catalogue import license_by_code
    from licensing_core.clock import lab_now

    va = VirtualAccount.objects.get(name="ESA")
    reservation = reservation_authorize(
        va=va,
        request_code=request_code,
        reservation_type="SPECIFIC",
        quantities={license_by_code("ESA", c).entitlement_tag: n for c, n in quantities.items()},
        actor="admin",
        now=lab_now(va.smart_account.lab),
    )
    return reservation.authorization_code


def test_license_reservation_install_and_return(gui, page, context, cssm, pools):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=cssm.url)
    enable_and_commit(page, gui)
    # Enabling License Reservation.
    page.get_by_label("Specific/Permanent License Reservation").check()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#row-registration-mode")).to_contain_text("Specific/Permanent License Reservation")
    # Registering License Reservation: Register -> request code -> Copy Code -> Next.
    page.click("#register")
    page.get_by_role("button", name="Copy Code").click()
    request_code = page.evaluate("navigator.clipboard.readText()")
    assert request_code == page.locator("#request-code").inner_text().strip()
    assert request_code.startswith("CB-ZC395:")
    page.get_by_role("link", name="Next").click()
    auth_code = _authorization_code(request_code, {"VOF": 1, "case": 1})
    page.get_by_label("Copy and Paste authorization code").check()
    page.fill("#auth-code", auth_code)
    page.get_by_role("button", name="Install Authorization Code").click()
    expect(
        page.get_by_role("status").filter(has_text="Smart Agent successfully installed the license reservation")
    ).to_be_visible()
    expect(page.locator("#row-registration-status")).to_have_text("Registered - Specific License Reservation")
    gui("licenses/")
    expect(page.locator("tr[data-code=VOF] .state")).to_have_text("Reserved in Compliance")
    expect(page.locator("tr[data-code=case] .state")).to_have_text("Reserved in Compliance")
    expect(page.locator("tr[data-code=sophos] .state")).to_have_text("Not Authorized")
    # Removing License Reservation: Action > Return code > Go > Copy Code > OK.
    gui()
    page.select_option("#config_action", "Return code")
    page.get_by_role("button", name="Go").click()
    return_code = page.locator("#shown-code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Za-z]{6}(-[0-9A-Za-z]{6}){7}-[0-9A-Za-z]{3}", return_code)
    page.get_by_role("button", name="Copy Code").click()
    assert page.evaluate("navigator.clipboard.readText()") == return_code
    page.get_by_role("link", name="OK").click()
    expect(page.locator("#row-registration-status")).to_have_text("Unregistered")
    gui("alerts/")
    expect(page.locator("#alert-list")).to_contain_text("Smart Agent successfully generated the return code")
