"""CLI transcripts whose exchanges go over HTTP to the real CSSM endpoint (live server)."""

import pytest

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from gateway_ui.tests.test_cli import PROMPT, REGISTERED, UNREGISTERED, freeze, menu, sl_page, transcript
from licensing_core.roles import GatewayRole

pytestmark = pytest.mark.django_db(transaction=True)


def _enabled(lab, hostname="esa1.example.com") -> Appliance:
    freeze(lab)
    appliance = Appliance.objects.select_related("lab").get(lab=lab, hostname=hostname)
    now = appliance_now(appliance)
    services.sl_enable(appliance=appliance, user=None, now=now)
    services.changes_commit(appliance=appliance, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    appliance.refresh_from_db()
    return appliance


def test_register_status_summary_renew_url_reregister_deregister(cssm, demo_lab, make_token, pools, client, login_as):
    esa1 = _enabled(demo_lab)
    token = make_token()
    out = transcript(esa1, ["license_smart", "register", "", "", "register", "", token, "status", "summary", ""])
    assert out.startswith(
        PROMPT + "license_smart\n"
        "\n" + menu(*UNREGISTERED) + "register\n"
        "\n"
        "Reregister this product instance if it is already registered [N]> \n"
        "\n"
        "Enter token to register the product:\n"
        "[]> \n"
        "Token cannot be empty\n"
        "\n" + menu(*UNREGISTERED) + "register\n"
        "\n"
        "Reregister this product instance if it is already registered [N]> \n"
        "\n"
        "Enter token to register the product:\n"
        f"[]> {token}\n"
        "Registration of the product with Smart Software Manager is in progress\n"
        "The product is registered successfully\n"
        "Cisco Cloud Services portal is enabled and registered\n"
        "Email Security Appliance Anti-Spam License license has been moved to In Compliance successfully\n"
    )
    assert (
        "Renew authorization of the product with Smart Software Manager is successful\n"
        "Device Led Conversion started\n"
        "\n" + menu(*REGISTERED) + "status\n"
        "\n"
        "Smart Licensing is: Enabled\n"
        "Evaluation Period: Not In Use\n"
        "Evaluation Period Remaining: 90 days 0 hours 0 minutes 0 seconds\n"
        "Registration Status: Registered ( 03 Mar 2031 09:00 )\n"
        "Registration Expires On: 02 Mar 2032 09:00\n"
        f"License Authorization Status: {esa1.__class__.objects.get(pk=esa1.pk).get_authorization_state_display()}"
        " ( 03 Mar 2031 09:00 )\n"
        "Expires On: 01 Jun 2031 09:00\n"
        "Last Authorization Renewal Attempt: Succeeded on 03 Mar 2031 09:00\n"
        "Last Registration Renewal Attempt Status: Succeeded on 03 Mar 2031 09:00\n"
        "Transport Settings: Direct\n"
        "(https://smartreceiver.cisco.com/licservice/license)\n"
        "Conversion Status: In Progress\n"
    ) in out
    assert (
        "Email Security Appliance Outbreak Filters                          In Compliance               "
        "2031-06-01 09:00:00      1\n"
    ) in out
    esa1.refresh_from_db()
    assert esa1.registration_state == "registered"
    # The GUI page shows the registration the CLI made.
    login_as("admin")
    page = sl_page(client, esa1)
    assert "Registered ( 03 Mar 2031 09:00)" in page
    assert "Example Corp" in page

    out = transcript(
        esa1,
        [
            "license_smart",
            "renew_auth",
            "renew_id",
            "url",
            "requestsmart_license",
            "1",
            "reregister",
            "no",
            "reregister",
            "yes",
            token,
            "deregister",
            "yes",
            "status",
            "",
        ],
    )
    assert (
        "[]> renew_auth\n"
        "Renew authorization of the product with Smart Software Manager is successful\n"
        "\n" + menu(*REGISTERED) + "renew_id\n"
        "Renew registration of the product with Smart Software Manager is successful\n"
        "\n" + menu(*REGISTERED) + "url\n"
        "Please deregister product to edit transport settings\n"
    ) in out
    assert (
        "[]> 1\n"
        "Email Security Appliance Data Loss Prevention license is Request in progress\n"
        "Email Security Appliance Data Loss Prevention license has been moved to In Compliance successfully\n"
        "Renew authorization of the product with Smart Software Manager is successful\n"
    ) in out
    reregister_prompt = (
        "[]> reregister\n"
        "\n"
        "A product instance has already been registered to Smart Software Manager.\n"
        "Do you want to remove the existing product instance from Smart Software Manager and register this one "
        "in its place? Press Yes or No []> "
    )
    assert reregister_prompt + "no\n\n" + menu(*REGISTERED) in out
    assert (
        reregister_prompt + "yes\n"
        "\n"
        "Enter token to register the product:\n"
        f"[]> {token}\n"
        "Registration of the product with Smart Software Manager is in progress\n"
        "The product is registered successfully\n"
    ) in out
    assert (
        "[]> deregister\n"
        "\n"
        "Do you want to deregister the product instance from the CSSM? Licenses are released back to the virtual "
        "account and requested licenses return to the evaluation period if any is left.\n"
        "Press Yes or No []> yes\n"
    ) in out
    assert "The product is deregistered successfully from Smart Software Manager\n\n" + menu(*UNREGISTERED) in out
    assert out.endswith(
        "Registration Status: Unregistered\n"
        "License Authorization Status: Evaluation Mode\n"
        "Last Authorization Renewal Attempt: Succeeded on 03 Mar 2031 09:00\n"
        "Last Registration Renewal Attempt Status: Succeeded on 03 Mar 2031 09:00\n"
        "Transport Settings: Direct\n"
        "(https://smartreceiver.cisco.com/licservice/license)\n"
        "Conversion Status: In Progress\n"
        "\n" + menu(*UNREGISTERED) + "\n"
        "\n" + PROMPT + "\n"
    )
    esa1.refresh_from_db()
    assert esa1.registration_state == "unregistered"
    assert esa1.licenses.get(code="rsadlp").state == "eval"


def test_bad_token_shows_the_failure(cssm, demo_lab):
    esa1 = _enabled(demo_lab)
    out = transcript(esa1, ["license_smart", "register", "n", "bm90IGEgdG9rZW4=", "status", ""])
    esa1.refresh_from_db()
    assert esa1.registration_state == "reg_failed"
    assert (
        "[]> bm90IGEgdG9rZW4=\n"
        "Registration of the product with Smart Software Manager is in progress\n"
        f"registration of the product with Smart Software Manager failed: {esa1.registration_error}\n"
    ) in out
    assert "Registration Status: Unregistered - Registration Failed\n" in out


def test_conversion_start_after_a_failed_conversion(cssm, demo_lab, make_token, pools, settings):
    from licensing_core.clock import clock_advance
    from licensing_core.schedules import DLC_DURATION

    esa1 = _enabled(demo_lab)
    transcript(esa1, ["license_smart", "register", "", make_token(), ""])
    settings.CSSM_BASE_URL = "http://127.0.0.1:9"
    clock_advance(lab=demo_lab, by=DLC_DURATION)
    esa1.refresh_from_db()
    assert services.dlc_complete(appliance=esa1, now=appliance_now(esa1)) is False
    esa1.refresh_from_db()
    out = transcript(esa1, ["license_smart", "conversion_start", "status", ""])
    assert "\n" + menu(*REGISTERED[:-2], "CONVERSION_START", "STATUS", "SUMMARY") + "conversion_start\n" in out
    assert "[]> conversion_start\nDevice Led Conversion started\n" in out
    assert "Conversion Status: In Progress\n" in out


def test_vlinfo_then_updateconfig_on_an_air_gapped_virtual_gateway(cssm, demo_lab, make_token):
    esa2 = _enabled(demo_lab, "esa2.example.com")
    transcript(esa2, ["license_smart", "register", "", make_token(), ""])
    esa2.refresh_from_db()
    out = transcript(esa2, ["vlinfo"])
    assert out.startswith(PROMPT.replace("esa1", "esa2") + f"vlinfo\nVLN: {esa2.vln}\n\nCertificate:\n-----BEGIN")
    assert esa2.id_cert_pem.strip() in out
    assert esa2.device_key_pem.strip() in out

    Appliance.objects.create(
        lab=demo_lab,
        hostname="esa3.example.com",
        product="ESA",
        model_pid="C100V",
        serial="564D-ESA3-0003",
        virtual=True,
        classic_feature_keys=["VOF"],
    )
    airgapped = _enabled(demo_lab, "esa3.example.com")
    services.registration_mode_set(appliance=airgapped, mode="license_reservation", now=appliance_now(airgapped))
    lines = [
        "updateconfig",
        "clientcertificate",
        "x",
        ".",
        "x",
        ".",
        "vlnid",
        "nope",
        "vlnid",
        esa2.vln,
        "clientcertificate",
        *esa2.id_cert_pem.strip().splitlines(),
        ".",
        *esa2.device_key_pem.strip().splitlines(),
        ".",
        "",
    ]
    out = transcript(airgapped, lines)
    assert "Add the VLN first (updateconfig > VLNID), then the client certificate and key.\n" in out
    assert "[]> nope\nEnter the VLN exactly as vlinfo shows it (it starts with VLN).\n" in out
    assert f"[]> {esa2.vln}\nThe VLN is updated.\n" in out
    assert out.count("The client certificate and key are updated.\n") == 1
    airgapped.refresh_from_db()
    assert airgapped.vln == esa2.vln
    assert airgapped.client_certificate_pem == esa2.id_cert_pem.strip()


def test_cluster_register_registers_every_member(cssm, demo_lab, make_token, pools):
    from gateway_ui.models import Cluster

    esa1 = _enabled(demo_lab)
    esa2 = _enabled(demo_lab, "esa2.example.com")
    cluster = Cluster.objects.create(lab=demo_lab, name="Mail")
    Appliance.objects.filter(pk__in=[esa1.pk, esa2.pk]).update(cluster=cluster)
    esa1.refresh_from_db()
    out = transcript(esa1, ["license_smart", "register", "", "y", make_token(), ""])
    assert "Register Smart Software Licensing across machines in cluster [N]> y\n" in out
    assert "\nesa1.example.com:\nRegistration of the product" in out
    assert "\nesa2.example.com:\nRegistration of the product" in out
    assert set(Appliance.objects.filter(cluster=cluster).values_list("registration_state", flat=True)) == {"registered"}
