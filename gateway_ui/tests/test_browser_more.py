"""More of the guide's procedures in Chromium: transport gateway, reregister, renewals, reauthorize,
change type, agent update, proxy, cluster fan-out, air-gap."""

import re

import pytest
from playwright.sync_api import expect

from gateway_ui.models import Appliance, Cluster
from gateway_ui.tests.test_browser_procedures import ESA1, _authorization_code, enable_and_commit, register

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gui(page, cssm, demo_lab, demo_password):
    page.goto(f"{cssm.url}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{cssm.url}/")

    def open_(path="smart-licensing/", host=ESA1):
        page.goto(f"{cssm.url}/appliance/demo/{host}/{path}")
        return page

    return open_


def test_register_through_a_transport_gateway_url(gui, page, cssm, make_token, pools):
    enable_and_commit(page, gui)
    page.get_by_role("link", name="(Edit)").click()
    page.check("#transport_gateway_tb")
    url = f"{cssm.url}/Transportgateway/services/DeviceRequestHandler"
    page.fill("#transport_gateway_url", url)
    page.get_by_role("button", name="OK").click()
    expect(
        page.get_by_role("status").filter(has_text="Transport settings will be updated after commit")
    ).to_be_visible()
    page.get_by_role("link", name="Commit Changes").click()
    page.get_by_role("button", name="Commit Changes").click()
    expect(page.locator("#row-transport")).to_contain_text(
        f"Transport Gateway / Smart Software Manager Satellite ({url})"
    )
    register(page, gui, make_token())
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    # Transport Settings cannot change once registered: no Edit link.
    expect(page.get_by_role("link", name="(Edit)")).to_have_count(0)
    gui("logs/smartlicense/")
    expect(page.locator("#smartlicense-log")).to_contain_text(
        "transport settings is successful to transport_gateway option"
    )


def test_reregister_and_renew_now(gui, page, make_token, pools):
    enable_and_commit(page, gui)
    register(page, gui, make_token())
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    page.select_option("#config_action", "Renew Authorization Now")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("#row-last-auth")).to_contain_text("SUCCEEDED on")
    page.select_option("#config_action", "Renew Certificates Now")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("#row-last-id")).to_contain_text("SUCCEEDED on")
    page.select_option("#config_action", "Reregister")
    page.get_by_role("button", name="Go").click()
    page.fill("#register_token", make_token())
    page.get_by_role("button", name="Remove and Register").click()
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    gui("alerts/")
    expect(page.locator("#alert-list")).to_contain_text("The Id certificate is renewed successfully")


def test_reauthorize_shows_a_confirmation_code_then_change_type(gui, page, context, cssm, pools):
    from cssm_portal.models import ProductInstance
    from cssm_portal.services import reservation_update
    from licensing_core.catalogue import license_by_code
    from licensing_core.clock import lab_now

    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=cssm.url)
    enable_and_commit(page, gui)
    page.get_by_label("Specific/Permanent License Reservation").check()
    page.get_by_role("button", name="Confirm").click()
    page.click("#register")
    request_code = page.locator("#request-code").inner_text().strip()
    page.get_by_role("link", name="Next").click()
    page.fill("#auth-code", _authorization_code(request_code, {"VOF": 1}))
    page.get_by_role("button", name="Install Authorization Code").click()
    expect(page.locator("#row-registration-status")).to_have_text("Registered - Specific License Reservation")
    # Updating License Reservation: new code from the portal, Reauthorize, Re-authorize, Copy Code, OK.
    instance = ProductInstance.objects.get(udi=Appliance.objects.get(hostname=ESA1).udi)
    tag = license_by_code("ESA", "sophos").entitlement_tag
    updated = reservation_update(
        instance=instance,
        quantities={tag: 1, license_by_code("ESA", "VOF").entitlement_tag: 1},
        actor="admin",
        now=lab_now(instance.lab),
    )
    page.select_option("#config_action", "Reauthorize")
    page.get_by_role("button", name="Go").click()
    page.fill("#auth-code", updated.pending_authorization_code)
    page.get_by_role("button", name="Re-authorize").click()
    expect(page.locator("h2")).to_have_text("Confirmation code")
    confirmation = page.locator("#shown-code").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{8}", confirmation)
    page.get_by_role("button", name="Copy Code").click()
    assert page.evaluate("navigator.clipboard.readText()") == confirmation
    page.get_by_role("link", name="OK").click()
    # The portal accepts the confirmation code (copied by hand, never by a hidden call).
    from cssm_portal.services import reservation_confirm

    reservation_confirm(instance=instance, confirmation_code=confirmation, actor="admin", now=lab_now(instance.lab))
    gui("licenses/")
    expect(page.locator("tr[data-code=sophos] .state")).to_have_text("Reserved in Compliance")
    # Disabling License Reservation: Change Type, Submit -> Unidentified with the reservation kept.
    gui()
    page.get_by_role("link", name="Change Type").click()
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#row-registration-mode")).to_have_text("Smart License Registration")
    expect(page.locator("#row-registration-status")).to_have_text("Unidentified")


def test_cancel_request_code_explains_the_consequence(gui, page):
    enable_and_commit(page, gui)
    page.get_by_label("Specific/Permanent License Reservation").check()
    page.get_by_role("button", name="Confirm").click()
    page.click("#register")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status").filter(has_text="contact Cisco TAC")).to_be_visible()
    expect(page.locator("#row-registration-status")).to_have_text("Unregistered")


def test_update_smart_agent(gui, page, settings):
    Appliance.objects.filter(hostname=ESA1).update(agent_version="1.3.5")
    settings.SMART_AGENT_VERSION = "1.3.7"
    enable_and_commit(page, gui)
    expect(page.locator("#row-agent-version")).to_have_text("1.3.5")
    page.get_by_role("button", name="Update Now").click()
    expect(page.locator("#row-agent-version")).to_have_text("1.3.7")
    gui("logs/smartlicense/")
    expect(page.locator("#smartlicense-log")).to_contain_text("smart_agent update completed")


def test_service_updates_proxy(gui, page):
    gui("service-updates/")
    page.fill("#id_host", "proxy.example.com")
    page.fill("#id_port", "3128")
    page.fill("#id_username", "CORP\\alice")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("alert")).to_contain_text("DOMAIN\\user is not supported")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "secret")
    page.get_by_role("button", name="Submit").click()
    page.get_by_role("link", name="Commit Changes").click()
    page.get_by_role("button", name="Commit Changes").click()
    gui("service-updates/")
    expect(page.locator("#current-proxy")).to_have_text("proxy.example.com:3128 (user alice)")


def test_read_only_operator_stages_but_cannot_commit(page, cssm, demo_lab, demo_password):
    page.goto(f"{cssm.url}/accounts/login/")
    page.fill("#id_username", "readonly")
    page.fill("#id_password", demo_password)
    page.click("button[type=submit]")
    page.goto(f"{cssm.url}/appliance/demo/{ESA1}/smart-licensing/")
    page.click("#enable_sl")
    page.click("#sl_ok")
    page.get_by_role("link", name="Commit Changes").click()
    page.get_by_role("button", name="Commit Changes").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Your user role (Read-Only Operator) can make and submit changes but cannot commit them."
    )


def test_cluster_enable_and_register_across_machines(gui, page, demo_lab, make_token, pools):
    cluster = Cluster.objects.create(lab=demo_lab, name="Example cluster")
    Appliance.objects.filter(hostname__in=[ESA1, "esa2.example.com"]).update(cluster=cluster)
    gui()
    expect(page.get_by_role("alert")).to_contain_text("available only in machine mode")
    page.select_option("#cluster-mode", "machine")
    page.select_option("#cluster-machine", ESA1)
    page.get_by_role("button", name="Change Mode...").click()
    page.click("#enable_sl")
    page.get_by_label("Enable Smart Software Licensing on all machines in the cluster").check()
    page.click("#sl_ok")
    for host in (ESA1, "esa2.example.com"):
        gui("changes/", host=host)
        page.get_by_role("button", name="Commit Changes").click()
    gui()
    page.click("#register")
    page.fill("#register_token", make_token())
    page.get_by_label("Register Smart Software Licensing across machines in cluster").check()
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status").filter(has_text="esa2.example.com: registration started")).to_be_visible()
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    # Switch machine mode to the other member from the same login.
    page.select_option("#cluster-machine", "esa2.example.com")
    page.get_by_role("button", name="Change Mode...").click()
    expect(page.locator(".aos-mode-current")).to_have_text("Current mode: Machine (esa2.example.com)")
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")


def test_air_gap_vln_certificate_and_key(gui, page, make_token, pools):
    esa2 = "esa2.example.com"
    Appliance.objects.filter(hostname=esa2).update(classic_feature_keys=["case"])
    # A registered virtual gateway shows its VLN, certificate and key ...
    gui(host=esa2)
    page.click("#enable_sl")
    page.click("#sl_ok")
    gui("changes/", host=esa2)
    page.get_by_role("button", name="Commit Changes").click()
    register(page, lambda: gui(host=esa2), make_token())
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    page.get_by_role("link", name="vlinfo: VLN, certificate and key").click()
    vln = page.locator("#vlinfo-vln").inner_text().strip()
    cert = page.locator("#vlinfo-cert").inner_text().strip()
    key = page.locator("#vlinfo-key").inner_text().strip()
    assert vln.startswith("VLN")
    # ... which an air-gapped virtual gateway in reservation mode applies.
    lab = Appliance.objects.get(hostname=esa2).lab
    Appliance.objects.create(
        lab=lab,
        hostname="esa3.example.com",
        product="ESA",
        model_pid="C300V",
        serial="564D-ESA3",
        virtual=True,
        classic_feature_keys=["case"],
    )
    gui(host="esa3.example.com")
    page.click("#enable_sl")
    page.click("#sl_ok")
    gui("changes/", host="esa3.example.com")
    page.get_by_role("button", name="Commit Changes").click()
    page.get_by_label("Specific/Permanent License Reservation").check()
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name="VLN and client certificate (air-gap)").click()
    page.fill("#id_vln", "not-a-vln")
    page.fill("#id_certificate", cert)
    page.fill("#id_key", key)
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the VLN exactly as vlinfo shows it")
    page.fill("#id_vln", vln)
    page.fill("#id_certificate", cert)
    page.fill("#id_key", key)
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#current-vln")).to_have_text(vln)
