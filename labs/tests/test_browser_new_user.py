"""The issue's "done when", tried as a new user would from the README: load "Out of
compliance, grace day 12" from the lab home, see the status on the appliance and in the
portal, advance 18 days from the lab page, see the grace expire and the e-mails."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ESA1 = "esa1.example.com"
OUTBREAK = "Email Security Appliance Outbreak Filters"


def test_new_user_reproduces_grace_day_12_and_watches_it_expire(page, live_server, settings, demo_lab, demo_password):
    settings.CSSM_BASE_URL = live_server.url  # the appliance registers with this server's CSSM
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Lab home > New lab > a scenario from the library (its description is on the page).
    page.get_by_label("Name", exact=True).first.fill("Acme support case")
    page.get_by_label("Short name").first.fill("acme")
    expect(page.locator(".scenario").filter(has_text="Out of compliance, grace day 12")).to_contain_text(
        "Advance 18 days to see the grace period expire"
    )
    page.get_by_label("Out of compliance, grace day 12").check()
    page.get_by_role("button", name="Create lab").click()
    page.wait_for_url(f"{live_server.url}/labs/acme/", timeout=60_000)
    expect(page.get_by_role("heading", name="Acme support case")).to_be_visible()

    # The appliance: Smart Software Licensing and Licenses pages.
    page.locator("#appliances tr", has_text=ESA1).get_by_role("link", name="Smart Software Licensing").click()
    expect(page.locator("#row-authorization-status")).to_contain_text("Out of Compliance (")
    page.goto(f"{live_server.url}/appliance/acme/{ESA1}/licenses/")
    expect(page.locator("tr", has_text=OUTBREAK).locator("td.state")).to_have_text("Out Of Compliance")

    # The portal's view of the shortage.
    page.goto(f"{live_server.url}/labs/acme/")
    page.locator("#appliances tr", has_text=ESA1).get_by_role("link", name="Side by side with the portal").click()
    expect(page.locator("#side-portal")).to_contain_text("Insufficient Licenses")
    page.get_by_role("link", name="Alerts").last.click()
    expect(page.get_by_text("Insufficient Licenses").first).to_be_visible()

    # Back on the lab page: +7, +7, +1 x4 = 18 days.
    page.goto(f"{live_server.url}/labs/acme/")
    for days in (7, 7, 1, 1, 1, 1):
        page.get_by_role("button", name=f"+{days} day{'s' if days > 1 else ''}", exact=True).click()
        expect(page.locator(".messages")).to_contain_text("due item(s) processed")
    expect(page.locator("#timeline")).to_contain_text(
        "grace period for Email Security Appliance Outbreak Filters has expired"
    )

    # The appliance now shows the grace expired ...
    page.goto(f"{live_server.url}/appliance/acme/{ESA1}/licenses/")
    expect(page.locator("tr", has_text=OUTBREAK).locator("td.state")).to_have_text("Out Of Compliance (grace expired)")
    # ... and the Mailbox holds the e-mails that went out.
    page.goto(f"{live_server.url}/labs/acme/")
    page.get_by_role("link", name="Mailbox").first.click()
    expect(
        page.locator(".mail").filter(has_text="grace period for Email Security Appliance Outbreak Filters has expired")
    ).not_to_have_count(0)
    expect(page.locator(".mail").filter(has_text="expires in")).not_to_have_count(0)
