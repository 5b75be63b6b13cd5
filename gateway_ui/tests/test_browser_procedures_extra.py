"""The rest of the guide's procedures in Chromium against a live server (the Smart Agent reaches the real
CSSM over HTTP): Device Led Conversion, cluster-wide license reservation, installing an authorization code
from a file, and Transport Settings refusals."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from gateway_ui.models import Appliance, Cluster
from gateway_ui.tests.test_browser_procedures import ESA1, _authorization_code, enable_and_commit, register
from licensing_core.codes import AUTH_FORGED, AUTH_WRONG_REQUEST

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ESA2 = "esa2.example.com"


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


def _advance(lab, **kwargs):
    from licensing_core.sweeps import lab_advance_by

    lab_advance_by(lab=lab, by=timedelta(**kwargs))


def _enable_by_service(hostname):
    from gateway_ui import services
    from gateway_ui.clock import appliance_now
    from licensing_core.roles import GatewayRole

    appliance = Appliance.objects.get(hostname=hostname)
    services.sl_enable(appliance=appliance, user=None, now=appliance_now(appliance))
    services.changes_commit(
        appliance=appliance, user=None, role=GatewayRole.ADMINISTRATOR, now=appliance_now(appliance)
    )


# --- Device Led Conversion -------------------------------------------------------------------------------


def test_device_led_conversion_fails_alerts_and_restarts_to_success(gui, page, demo_lab, make_token, pools):
    from cssm_portal.models import LicensePool, LicenseTransaction, LicenseType, TransactionSource
    from licensing_core.catalogue import license_by_code

    amp = license_by_code("ESA", "amp_file_analysis")
    # The demo account holds File Analysis as a term licence: classic keys convert only to perpetual.
    assert LicensePool.objects.get(virtual_account=pools, tag=amp.entitlement_tag).license_type == LicenseType.TERM
    enable_and_commit(page, gui)
    register(page, gui, make_token())
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    expect(page.locator("#row-dlc")).to_have_text("In Progress")
    expect(page.get_by_role("status").filter(has_text="Device Led Conversion in progress")).to_be_visible()
    _advance(demo_lab, minutes=61)
    gui()
    expect(page.locator("#row-dlc")).to_contain_text("failed")
    reason = f"{amp.name} is held as a term license; classic licenses convert to perpetual."
    expect(page.locator("#row-dlc .aos-error")).to_have_text(reason)
    assert not LicenseTransaction.objects.filter(
        source=TransactionSource.DLC
    ).exists()  # the refused deposit rolled back
    gui("alerts/")
    expect(page.locator("#alert-list")).to_contain_text(f"Device Led Conversion failed: {reason}")
    # Fix the issue in the portal (the licence is now perpetual), then restart from the GUI.
    LicensePool.objects.filter(virtual_account=pools, tag=amp.entitlement_tag).update(
        license_type=LicenseType.PERPETUAL, end_date=None
    )
    gui()
    page.get_by_role("button", name="Start Conversion").click()
    expect(page.get_by_role("status").filter(has_text="Device Led Conversion restarted.")).to_be_visible()
    expect(page.locator("#row-dlc")).to_have_text("In Progress")
    expect(page.get_by_role("button", name="Start Conversion")).to_have_count(0)
    _advance(demo_lab, minutes=61)
    gui()
    expect(page.locator("#row-dlc")).to_have_text("success")
    classic = Appliance.objects.get(hostname=ESA1).classic_feature_keys
    assert LicenseTransaction.objects.filter(source=TransactionSource.DLC).count() == len(classic)
    gui("logs/smartlicense/")
    expect(page.locator("#smartlicense-log")).to_contain_text("Device Led Conversion completed: success")


def test_start_conversion_refused_when_not_registered(gui, page, demo_lab):
    """A stale Start Conversion form posted after deregistering shows the reason, never a 500."""
    Appliance.objects.filter(hostname=ESA1).update(dlc_state="failed", dlc_reason="earlier failure")
    enable_and_commit(page, gui)
    # The button is only offered to a registered product; post the form the page would have had.
    page.evaluate(
        """() => {
        const f = document.createElement('form');
        f.method = 'post';
        f.action = location.pathname + 'conversion/';
        const t = document.createElement('input');
        t.type = 'hidden'; t.name = 'csrfmiddlewaretoken';
        t.value = document.querySelector('input[name=csrfmiddlewaretoken]').value;
        f.appendChild(t); document.body.appendChild(f); f.submit();
    }"""
    )
    expect(page.get_by_role("alert")).to_have_text("Device Led Conversion runs only after the product is registered.")


# --- Cluster: license reservation for all machines -------------------------------------------------------


def test_cluster_enable_and_disable_license_reservation_for_all_machines(gui, page, demo_lab):
    cluster = Cluster.objects.create(lab=demo_lab, name="Example cluster")
    Appliance.objects.create(
        lab=demo_lab,
        hostname="esa3.example.com",
        product="ESA",
        model_pid="C395",
        serial="4C4C4544-ESA3-0009",
        virtual=False,
        cluster=cluster,
    )
    Appliance.objects.filter(hostname__in=[ESA1, ESA2]).update(cluster=cluster)
    for host in (ESA1, ESA2):
        _enable_by_service(host)  # esa3 never enabled Smart Software Licensing
    gui()
    page.select_option("#cluster-mode", "machine")
    page.select_option("#cluster-machine", ESA1)
    page.get_by_role("button", name="Change Mode...").click()
    page.get_by_label("Specific/Permanent License Reservation").check()
    page.get_by_label("Enable license reservation for all machines in the cluster").check()
    page.get_by_role("button", name="Confirm").click()
    status = page.get_by_role("status")
    expect(status.filter(has_text=f"{ESA1}: OK")).to_be_visible()
    expect(status.filter(has_text=f"{ESA2}: OK")).to_be_visible()
    expect(
        page.get_by_role("status").filter(has_text="esa3.example.com: Smart Software Licensing is not enabled")
    ).to_be_visible()
    expect(page.locator("#row-registration-mode")).to_contain_text("Specific/Permanent License Reservation")
    gui(host=ESA2)
    expect(page.locator("#row-registration-mode")).to_contain_text("Specific/Permanent License Reservation")
    # Disabling for all machines: Change Type, tick the box, Submit.
    page.get_by_role("link", name="Change Type").click()
    page.get_by_label("Disable license reservation for all machines in the cluster").check()
    page.get_by_role("button", name="Submit").click()
    expect(status.filter(has_text=f"{ESA2}: OK")).to_be_visible()
    expect(status.filter(has_text=f"{ESA1}: OK")).to_be_visible()
    expect(page.locator("#row-registration-mode")).to_have_text("Smart License Registration")
    expect(page.locator("#row-registration-status")).to_have_text("Unregistered")
    gui(host=ESA1)
    expect(page.locator("#row-registration-mode")).to_have_text("Smart License Registration")
    modes = dict(Appliance.objects.filter(cluster=cluster).values_list("hostname", "registration_mode"))
    assert modes == {
        ESA1: "smart_license_registration",
        ESA2: "smart_license_registration",
        "esa3.example.com": "smart_license_registration",
    }


# --- Install an authorization code from a file ----------------------------------------------------------


def _reserve_and_request(page, gui):
    enable_and_commit(page, gui)
    page.get_by_label("Specific/Permanent License Reservation").check()
    page.get_by_role("button", name="Confirm").click()
    page.click("#register")
    request_code = page.locator("#request-code").inner_text().strip()
    page.get_by_role("link", name="Next").click()
    return request_code


def _upload(page, code: str):
    page.get_by_label("Upload authorization code from the system").check()
    page.get_by_label("Choose File").set_input_files(
        files=[{"name": "authorization_code.txt", "mimeType": "text/plain", "buffer": code.encode()}]
    )
    page.get_by_role("button", name="Install Authorization Code").click()


def test_install_authorization_code_uploaded_from_a_file(gui, page, pools):
    request_code = _reserve_and_request(page, gui)
    _upload(page, _authorization_code(request_code, {"VOF": 1, "case": 1}))
    expect(
        page.get_by_role("status").filter(has_text="Smart Agent successfully installed the license reservation")
    ).to_be_visible()
    expect(page.locator("#row-registration-status")).to_have_text("Registered - Specific License Reservation")
    gui("licenses/")
    expect(page.locator("tr[data-code=VOF] .state")).to_have_text("Reserved in Compliance")
    expect(page.locator("tr[data-code=case] .state")).to_have_text("Reserved in Compliance")


def test_wrong_or_tampered_authorization_code_file_shows_its_message(gui, page, pools):
    from gateway_ui import services
    from gateway_ui.clock import appliance_now

    # Another appliance's code: esa2 asks for a reservation and the portal authorizes it.
    _enable_by_service(ESA2)
    esa2 = Appliance.objects.get(hostname=ESA2)
    services.registration_mode_set(appliance=esa2, mode="license_reservation", now=appliance_now(esa2))
    other = _authorization_code(services.reservation_request_code(appliance=esa2, now=appliance_now(esa2)), {"case": 1})
    request_code = _reserve_and_request(page, gui)
    _upload(page, other)
    expect(page.get_by_role("alert")).to_have_text(AUTH_WRONG_REQUEST)
    expect(page.locator("h2")).to_have_text("Install Authorization Code")
    # esa1's own code with its count edited by hand: the signature no longer matches.
    genuine = _authorization_code(request_code, {"case": 1})
    tampered = genuine.replace("<count>1</count>", "<count>9</count>", 1)
    assert tampered != genuine
    _upload(page, tampered)
    expect(page.get_by_role("alert")).to_have_text(AUTH_FORGED)
    # A binary file is refused with its own message.
    page.get_by_label("Upload authorization code from the system").check()
    page.get_by_label("Choose File").set_input_files(
        files=[{"name": "code.bin", "mimeType": "application/octet-stream", "buffer": b"\xff\xfe\x00\x81"}]
    )
    page.get_by_role("button", name="Install Authorization Code").click()
    expect(page.get_by_role("alert")).to_contain_text("The uploaded file is not an authorization code")
    assert Appliance.objects.get(hostname=ESA1).reservation_state == "requested"
    gui()
    expect(page.locator("#row-registration-status")).not_to_have_text("Registered - Specific License Reservation")


# --- Transport Settings ------------------------------------------------------------------------------------


def test_transport_gateway_invalid_url_then_valid(gui, page, cssm):
    enable_and_commit(page, gui)
    page.get_by_role("link", name="(Edit)").click()
    page.check("#transport_gateway_tb")
    page.fill("#transport_gateway_url", "ftp://tg.example.com/Transportgateway")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("alert")).to_have_text("Entered Invalid Gateway URL")
    expect(page.locator("#transport_gateway_tb")).to_be_checked()  # the dialog keeps what was typed
    page.fill("#transport_gateway_url", "not a url")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("alert")).to_have_text("Entered Invalid Gateway URL")
    url = f"{cssm.url}/Transportgateway/services/DeviceRequestHandler"
    page.fill("#transport_gateway_url", url)
    page.get_by_role("button", name="OK").click()
    expect(
        page.get_by_role("status").filter(has_text="Transport settings will be updated after commit")
    ).to_be_visible()
    # Not applied until committed.
    expect(page.locator("#row-transport")).to_contain_text("Direct (")
    page.get_by_role("link", name="Commit Changes").click()
    page.get_by_role("button", name="Commit Changes").click()
    gui()
    expect(page.locator("#row-transport")).to_contain_text(
        f"Transport Gateway / Smart Software Manager Satellite ({url})"
    )


def test_transport_settings_refused_once_registered(gui, page, make_token, pools):
    enable_and_commit(page, gui)
    register(page, gui, make_token())
    expect(page.locator("#row-registration-status")).to_contain_text("Registered (")
    expect(page.get_by_role("link", name="(Edit)")).to_have_count(0)
    # The dialog reached by its address still refuses the change, with the reason.
    gui("smart-licensing/transport/")
    page.check("#transport_gateway_tb")
    page.fill("#transport_gateway_url", "https://tg.example.com/Transportgateway/services/DeviceRequestHandler")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("alert")).to_have_text("Please deregister product to edit transport settings")
    assert not Appliance.objects.get(hostname=ESA1).staged_changes.exists()
    gui()
    expect(page.locator("#row-transport")).to_contain_text("Direct (")
