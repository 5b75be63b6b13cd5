"""CLI transcripts that need no Smart Software Manager exchange (HTTP ones: test_cli_transcripts.py).

The helpers at the top (frozen lab clock, transcript runner, menu block) are shared with that file."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from gateway_ui import services
from gateway_ui.cli import run_cli
from gateway_ui.cli.interpreter import OPERATIONS
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, Cluster, StagedChange
from licensing_core.clock import clock_freeze, clock_set
from licensing_core.models import LabMembership
from licensing_core.roles import GatewayRole

FROZEN_AT = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)  # a Monday


def freeze(lab) -> None:
    clock_freeze(lab=lab)
    clock_set(lab=lab, to=FROZEN_AT)


def transcript(appliance: Appliance, lines, *, user: str = "admin") -> str:
    membership = LabMembership.objects.select_related("user").get(lab=appliance.lab, user__username=user)
    buf = io.StringIO()
    run_cli(appliance=appliance, user=membership.user, role=membership.gateway_role, lines=lines, write=buf.write)
    return buf.getvalue()


def menu(*operations: str) -> str:
    """The license_smart menu block as the CLI prints it (after the blank line)."""
    lines = ["Choose the operation you want to perform:"]
    lines += [f"- {op} - {OPERATIONS[op][0]}" for op in operations]
    return "\n".join(lines) + "\n[]> "


UNREGISTERED = (
    "REQUESTSMART_LICENSE",
    "RELEASESMART_LICENSE",
    "REGISTER",
    "URL",
    "ENABLE_RESERVATION",
    "STATUS",
    "SUMMARY",
)
REGISTERED = (
    "URL",
    "REQUESTSMART_LICENSE",
    "RELEASESMART_LICENSE",
    "DEREGISTER",
    "REREGISTER",
    "RENEW_AUTH",
    "RENEW_ID",
    "STATUS",
    "SUMMARY",
)


# --- tests ----------------------------------------------------------------------------------------


PROMPT = "esa1.example.com> "


@pytest.fixture
def frozen(demo_lab):
    freeze(demo_lab)
    return demo_lab


@pytest.fixture
def cli_esa1(frozen):
    return Appliance.objects.select_related("lab").get(lab=frozen, hostname="esa1.example.com")


@pytest.fixture
def cli_enabled(cli_esa1):
    now = appliance_now(cli_esa1)
    services.sl_enable(appliance=cli_esa1, user=None, now=now)
    services.changes_commit(appliance=cli_esa1, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    cli_esa1.refresh_from_db()
    return cli_esa1


def sl_page(client, appliance) -> str:
    r = client.get(reverse("gateway:smart_licensing", args=[appliance.lab.slug, appliance.hostname]))
    assert r.status_code == 200
    return r.content.decode()


ENABLE_DIALOG = (
    "After you enable Smart Software Licensing, all the features in the Classic Licensing mode will be "
    "automatically available in the Smart Licensing mode. Existing covered users in Classic Licensing mode have "
    "a 90-days evaluation period to use Smart Software Licensing without registering the appliance with Cisco "
    "Smart Software Manager.\n"
    "After you enable the Smart Licensing feature, you will not be able to roll back from Smart Licensing to "
    "Classic Licensing mode.\n"
    "\n"
    'Type "Y" if you want to continue, or type "N" if you want to use the classic licensing.\n'
    "[]> "
)


def test_enable_commit_status_transcript_and_the_gui_shows_it(cli_esa1, client, login_as):
    out = transcript(
        cli_esa1,
        ["license_smart", "enable", "y", "", "commit", "Enable Smart Licensing", "license_smart", "status", "", "exit"],
    )
    assert out == (
        PROMPT + "license_smart\n"
        "\n"
        "Choose the operation you want to perform:\n"
        "- ENABLE - Enables Smart Licensing on the product.\n"
        "[]> enable\n"
        "\n" + ENABLE_DIALOG + "y\n"
        "Smart Licensing will be enabled after commit\n"
        "\n"
        "Choose the operation you want to perform:\n"
        "- ENABLE - Enables Smart Licensing on the product.\n"
        "[]> \n"
        "\n" + PROMPT + "commit\n"
        "\n"
        "Please enter some comments describing your changes:\n"
        "[]> Enable Smart Licensing\n"
        "\n"
        "Changes committed: Mon Mar 03 09:00:00 2031 GMT\n"
        "\n" + PROMPT + "license_smart\n"
        "\n"
        "Choose the operation you want to perform:\n"
        "- REQUESTSMART_LICENSE - Request licenses for the product.\n"
        "- RELEASESMART_LICENSE - Release licenses of the product.\n"
        "- REGISTER - Register the product for Smart Licensing.\n"
        "- URL - Set the Smart Transport URL.\n"
        "- ENABLE_RESERVATION - Enable Specific/Permanent License Reservation.\n"
        "- STATUS - Show overall Smart Licensing status.\n"
        "- SUMMARY - Show Smart Licensing status summary.\n"
        "[]> status\n"
        "\n"
        "Smart Licensing is: Enabled\n"
        "Evaluation Period: In Use\n"
        "Evaluation Period Remaining: 90 days 0 hours 0 minutes 0 seconds\n"
        "Registration Status: Unregistered\n"
        "License Authorization Status: Evaluation Mode\n"
        "Last Authorization Renewal Attempt: No communication attempted\n"
        "Last Registration Renewal Attempt Status: No communication attempted\n"
        "Transport Settings: Direct\n"
        "(https://smartreceiver.cisco.com/licservice/license)\n"
        "Conversion Status: Not Started\n"
        "\n" + menu(*UNREGISTERED) + "\n"
        "\n" + PROMPT + "exit\n"
    )
    cli_esa1.refresh_from_db()
    assert cli_esa1.licensing_mode == "smart"
    assert cli_esa1.alerts.filter(kind="sl_enabled").exists()
    # The same state on the GUI page.
    login_as("admin")
    page = sl_page(client, cli_esa1)
    assert "Smart Software Licensing Status" in page
    assert '<td id="row-eval">In Use</td>' in page
    assert '<td id="row-eval-remaining">90 days, 0 hr, 0 min, 0 sec</td>' in page
    assert "Evaluation Mode" in page


def test_enable_answered_no_stages_nothing(cli_esa1):
    out = transcript(cli_esa1, ["license_smart", "enable", "maybe", "n", ""])
    assert 'Please answer "Y" or "N".\n' in out
    assert "will be enabled after commit" not in out
    assert not StagedChange.objects.filter(appliance=cli_esa1).exists()


def test_read_only_operator_stages_enable_but_cannot_commit(cli_esa1):
    out = transcript(cli_esa1, ["license_smart", "enable", "Y", "", "commit", "try"], user="readonly")
    assert "Smart Licensing will be enabled after commit\n" in out
    assert out.endswith(
        "Please enter some comments describing your changes:\n"
        "[]> try\n"
        "Your user role (Read-Only Operator) can make and submit changes but cannot commit them.\n"
        "\n" + PROMPT + "\n"
    )
    cli_esa1.refresh_from_db()
    assert cli_esa1.licensing_mode == "classic"
    assert StagedChange.objects.filter(appliance=cli_esa1, kind="enable_sl").exists()


def test_operator_cannot_enable_and_guest_cannot_open_license_smart(cli_enabled):
    out = transcript(cli_enabled, ["license_smart"], user="guest")
    assert out == (
        PROMPT + "license_smart\n"
        "Access denied: the Guest role is not allowed to perform this action.\n\n" + PROMPT + "\n"
    )
    out = transcript(cli_enabled, ["license_smart", "enable_reservation", ""], user="operator")
    assert "Access denied: the Operator role is not allowed to perform this action.\n" in out
    cli_enabled.refresh_from_db()
    assert not cli_enabled.in_reservation_mode


def test_commit_with_nothing_pending(cli_esa1):
    assert transcript(cli_esa1, ["commit"]) == (PROMPT + "commit\nThere are no changes to commit.\n\n" + PROMPT + "\n")


def test_summary_request_and_release_transcript(cli_enabled):
    out = transcript(
        cli_enabled,
        ["license_smart", "summary", "requestsmart_license", "1,3", "releasesmart_license", "1,4", "", "exit"],
    )
    assert out == (
        PROMPT + "license_smart\n"
        "\n" + menu(*UNREGISTERED) + "summary\n"
        "\n"
        "FeatureName                                                        LicenseAuthorisationStatus  "
        "AuthorisationExpiryDate  Count\n" + "-" * 125 + "\n"
        "Mail Handling                                                      In Compliance               "
        "NA                       1\n"
        "Email Security Appliance Bounce Verification                       In Compliance               "
        "NA                       1\n"
        "Email Security Appliance Anti-Spam License                         Eval                        "
        "2031-06-01 09:00:00      1\n"
        "Email Security Appliance Outbreak Filters                          Eval                        "
        "2031-06-01 09:00:00      1\n"
        "Email Security Appliance Advanced Malware Protection Reputation    Eval                        "
        "2031-06-01 09:00:00      1\n"
        "Email Security Appliance Advanced Malware Protection               Eval                        "
        "2031-06-01 09:00:00      1\n"
        "Email Security Appliance Sophos Anti-Malware                       Eval                        "
        "2031-06-01 09:00:00      1\n"
        "Email Security Appliance PXE Encryption                            Eval                        "
        "2031-06-01 09:00:00      1\n"
        "\n" + menu(*UNREGISTERED) + "requestsmart_license\n"
        "\n"
        " Feature Name                                             License Authorization Status\n"
        " -------------------------------------------------------------------------------------\n"
        " 1. Email Security Appliance Data Loss Prevention         Not requested\n"
        " 2. Email Security Appliance McAfee Anti-Malware          Not requested\n"
        " 3. Email Security Appliance Intelligent Multi-Scan       Not requested\n"
        " 4. Email Security Appliance Image Analyzer               Not requested\n"
        " 5. Email Security Appliance External Threat Feeds        Not requested\n"
        " 6. Email Security Appliance Graymail Safe-unsubscribe    Not requested\n"
        "Enter the appropriate license number(s) for activation (for example, 3,5,8)\n"
        "[]> 1,3\n"
        "Email Security Appliance Data Loss Prevention license is Request in progress\n"
        "Email Security Appliance Data Loss Prevention license in eval mode is requested successfully on the "
        "appliance\n"
        "Email Security Appliance Intelligent Multi-Scan license is Request in progress\n"
        "Email Security Appliance Intelligent Multi-Scan license in eval mode is requested successfully on the "
        "appliance\n"
        "\n" + menu(*UNREGISTERED) + "releasesmart_license\n"
        "\n"
        " Feature Name                                                           License Authorization Status\n"
        " ---------------------------------------------------------------------------------------------------\n"
        " 1.  Mail Handling                                                      In Compliance\n"
        " 2.  Email Security Appliance Bounce Verification                       In Compliance\n"
        " 3.  Email Security Appliance Anti-Spam License                         Eval\n"
        " 4.  Email Security Appliance Outbreak Filters                          Eval\n"
        " 5.  Email Security Appliance Data Loss Prevention                      Eval\n"
        " 6.  Email Security Appliance Advanced Malware Protection Reputation    Eval\n"
        " 7.  Email Security Appliance Advanced Malware Protection               Eval\n"
        " 8.  Email Security Appliance Sophos Anti-Malware                       Eval\n"
        " 9.  Email Security Appliance PXE Encryption                            Eval\n"
        " 10. Email Security Appliance Intelligent Multi-Scan                    Eval\n"
        "Enter the appropriate license number(s) for deactivation (for example, 3,5,8)\n"
        "[]> 1,4\n"
        "Product Base License which is requested by default and cannot be released\n"
        "Email Security Appliance Outbreak Filters license is released successfully from the appliance\n"
        "\n" + menu(*UNREGISTERED) + "\n"
        "\n" + PROMPT + "exit\n"
    )
    states = dict(cli_enabled.licenses.values_list("code", "state"))
    assert states["rsadlp"] == states["ims"] == "eval"
    assert states["VOF"] == "not_requested"
    assert states["imh"] == "in_compliance"


def test_bad_license_numbers_are_refused_with_a_message(cli_enabled):
    out = transcript(cli_enabled, ["license_smart", "requestsmart_license", "1,99", ""])
    assert "Enter numbers between 1 and 6, separated by commas (for example, 3,5,8).\n" in out
    assert not cli_enabled.licenses.filter(code="rsadlp").exclude(state="not_requested").exists()


def test_new_virtual_user_without_eval_sees_no_request_release(frozen):
    esa2 = Appliance.objects.get(lab=frozen, hostname="esa2.example.com")
    now = appliance_now(esa2)
    services.sl_enable(appliance=esa2, user=None, now=now)
    services.changes_commit(appliance=esa2, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    out = transcript(esa2, ["license_smart", "requestsmart_license", ""])
    assert "REQUESTSMART_LICENSE" not in out.split("[]>")[0]
    assert '"REQUESTSMART_LICENSE" is not one of the operations listed.' in out
    assert "Evaluation Period: Not In Use" in transcript(esa2, ["license_smart", "status", ""])


def test_url_transport_gateway_needs_commit_and_shows_in_status_and_gui(cli_enabled, client, login_as):
    url = "https://tg.example.com/Transportgateway/services/DeviceRequestHandler"
    out = transcript(cli_enabled, ["license_smart", "url", "2", "not a url", "url", "2", url, "", "commit", ""])
    assert (
        out.count(
            "Choose from the following menu options\n1. DIRECT\n2. TRANSPORT_GATEWAY\n[1]> 2\n\n"
            "Enter the gateway URL to connect\n[]> "
        )
        == 2
    )
    assert "[]> not a url\nEntered Invalid Gateway URL\n" in out
    assert f"[]> {url}\nTransport settings will be updated after commit\n" in out
    cli_enabled.refresh_from_db()
    assert cli_enabled.transport_mode == "gateway"
    assert cli_enabled.transport_url == url
    status = transcript(cli_enabled, ["license_smart", "status", ""])
    assert f"Transport Settings: Transport Gateway / Smart Software Manager Satellite\n({url})\n" in status
    login_as("admin")
    assert f"Transport Gateway / Smart Software Manager Satellite ({url})" in sl_page(client, cli_enabled)


def test_gui_action_shows_in_cli_status(cli_enabled, client, login_as):
    login_as("admin")
    client.post(
        reverse("gateway:sl_mode", args=[cli_enabled.lab.slug, cli_enabled.hostname]),
        {"mode": "license_reservation"},
    )
    out = transcript(cli_enabled, ["license_smart", "status", ""])
    assert (
        "Smart Licensing is: Enabled\n"
        "Registration Mode: Specific/Permanent License Reservation\n"
        "Evaluation Period: In Use\n"
        "Evaluation Period Remaining: 90 days 0 hours 0 minutes 0 seconds\n"
        "Registration Status: Unregistered\n"
        "License Authorization Status: Evaluation Mode\n"
        "\n"
    ) in out
    assert "- REQUEST_CODE - Generate the request code for license reservation.\n" in out


def _authorization_code(va_lab, request_code, quantities, reservation_type="SPECIFIC"):
    from cssm_portal.models import VirtualAccount
    from cssm_portal.services import reservation_authorize
    from licensing_core.catalogue import license_by_code
    from licensing_core.clock import lab_now

    va = VirtualAccount.objects.get(smart_account__lab=va_lab, name="ESA")
    return reservation_authorize(
        va=va,
        request_code=request_code,
        reservation_type=reservation_type,
        quantities={license_by_code("ESA", c).entitlement_tag: n for c, n in quantities.items()},
        actor="admin",
        now=lab_now(va_lab),
    )


RSV_ENABLED = (
    "REQUESTSMART_LICENSE",
    "RELEASESMART_LICENSE",
    "REQUEST_CODE",
    "DISABLE_RESERVATION",
    "STATUS",
    "SUMMARY",
)
RSV_REQUESTED = (
    "REQUESTSMART_LICENSE",
    "RELEASESMART_LICENSE",
    "REQUEST_CODE",
    "INSTALL_AUTHORIZATION_CODE",
    "DISABLE_RESERVATION",
    "STATUS",
    "SUMMARY",
)
RSV_SLR = (
    "REQUESTSMART_LICENSE",
    "RELEASESMART_LICENSE",
    "REAUTHORIZE",
    "RETURN_RESERVATION",
    "DISABLE_RESERVATION",
    "STATUS",
    "SUMMARY",
)


def test_reservation_transcript(cli_enabled, pools, client, login_as):
    from cssm_portal.services import reservation_update
    from licensing_core.catalogue import license_by_code

    lab = cli_enabled.lab
    out = transcript(cli_enabled, ["license_smart", "enable_reservation", "request_code", ""])
    cli_enabled.refresh_from_db()
    request_code = cli_enabled.reservation_request_code
    assert request_code.startswith("CB-ZC395:4C4C4544-ESA1-0001-")
    assert out == (
        PROMPT + "license_smart\n"
        "\n" + menu(*UNREGISTERED) + "enable_reservation\n"
        "\n"
        "Registration mode: Specific/Permanent License Reservation.\n"
        "\n" + menu(*RSV_ENABLED) + "request_code\n"
        "\n"
        f"Request code: {request_code}\n"
        "Use the request code in the Smart Software Manager portal to generate an authorization code.\n"
        "A system alert is sent every 24 hours until you install an authorization code.\n"
        "\n" + menu(*RSV_REQUESTED) + "\n"
        "\n" + PROMPT + "\n"
    )
    # Re-asking returns the same code.
    assert f"Request code: {request_code}\n" in transcript(cli_enabled, ["license_smart", "request_code", ""])

    # A damaged code is refused; the real one installs.
    reservation = _authorization_code(lab, request_code, {"VOF": 1, "case": 2})
    out = transcript(
        cli_enabled,
        [
            "license_smart",
            "install_authorization_code",
            "<specificPLR>broken",
            ".",
            "install_authorization_code",
            reservation.authorization_code,
            ".",
            "status",
            "summary",
            "",
        ],
    )
    assert (
        "[]> install_authorization_code\n\nPaste the authorization code (end with '.'):\n<specificPLR>broken\n.\n"
        in out
    )
    assert out.count("Smart Agent successfully installed the license reservation.\n") == 1
    assert "Registration Status: Registered - Specific License Reservation\n" in out
    cli_enabled.refresh_from_db()
    assert f"License Authorization Status: {cli_enabled.get_authorization_state_display()}\n" in out
    assert (
        "Email Security Appliance Sophos Anti-Malware                       Not Authorized              "
        "NA                       1\n"
    ) in out
    assert (
        "Email Security Appliance Anti-Spam License                         Reserved in Compliance      "
        "Never                    2\n"
    ) in out
    assert "\n" + menu(*RSV_SLR) in out
    login_as("admin")
    assert "Registered - Specific License Reservation" in sl_page(client, cli_enabled)

    # Reauthorize with an updated code: the confirmation code is printed.
    instance = reservation.instance
    updated = reservation_update(
        instance=instance,
        quantities={
            license_by_code("ESA", "VOF").entitlement_tag: 1,
            license_by_code("ESA", "sophos").entitlement_tag: 1,
        },
        actor="admin",
        now=appliance_now(cli_enabled),
    )
    out = transcript(cli_enabled, ["license_smart", "reauthorize", updated.pending_authorization_code, ".", ""])
    cli_enabled.refresh_from_db()
    assert cli_enabled.confirmation_code
    assert (
        f"Confirmation code: {cli_enabled.confirmation_code}\n"
        "Use the confirmation code in the Smart Software Manager portal to update the license reservations.\n"
    ) in out

    # Return the reservation, then leave reservation mode.
    out = transcript(cli_enabled, ["license_smart", "return_reservation", "y", "disable_reservation", "y", ""])
    cli_enabled.refresh_from_db()
    assert (
        "[]> return_reservation\n"
        "\n"
        "The license reservation is removed from this appliance and its licenses return to the pool.\n"
        "Do you want to generate the return code? [N]> y\n"
        f"Return code: {cli_enabled.return_code}\n"
        "Use the return code in the Smart Software Manager portal to remove the license reservation.\n"
        "\n" + menu(*RSV_ENABLED) + "disable_reservation\n"
        "\n"
        "The registration mode changes to Smart License Registration. A pending request code is canceled; an "
        "installed authorization code is maintained.\n"
        "Do you want to continue? [N]> y\n"
        "License reservation is disabled.\n"
        "\n" + menu(*UNREGISTERED)
    ) in out
    assert not cli_enabled.in_reservation_mode
    assert cli_enabled.licenses.get(code="VOF").state == "eval"


def test_cluster_enable_asks_the_cluster_question(cli_esa1, frozen):
    cluster = Cluster.objects.create(lab=frozen, name="Mail")
    sma = Appliance.objects.get(lab=frozen, hostname="esa2.example.com")
    Appliance.objects.filter(pk__in=[cli_esa1.pk, sma.pk]).update(cluster=cluster)
    cli_esa1.refresh_from_db()
    out = transcript(cli_esa1, ["license_smart", "enable", "y", "y", ""])
    assert (
        "[]> y\n"
        "Enable Smart Software Licensing on all machines in the cluster [N]> y\n"
        "esa2.example.com: Smart Licensing will be enabled after commit\n"
        "esa1.example.com: Smart Licensing will be enabled after commit\n"
    ) in out
    assert StagedChange.objects.filter(kind="enable_sl", appliance__cluster=cluster).count() == 2


def test_featurekey_lists_classic_keys_then_is_refused_in_smart_mode(cli_esa1):
    out = transcript(cli_esa1, ["featurekey"])
    assert out.startswith(
        PROMPT + "featurekey\n"
        "Module                                                             Status\n"
        "Email Security Appliance Anti-Spam License                         Active\n"
    )
    now = appliance_now(cli_esa1)
    services.sl_enable(appliance=cli_esa1, user=None, now=now)
    services.changes_commit(appliance=cli_esa1, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    assert transcript(cli_esa1, ["featurekey", "featurekeyconfig"]) == (
        PROMPT + "featurekey\n"
        "Smart License has been enabled. Use license_smart to manage license\n"
        "\n" + PROMPT + "featurekeyconfig\n"
        "Smart License has been enabled. Use license_smart to manage license\n"
        "\n" + PROMPT + "\n"
    )


def test_saveconfig_leaves_out_licensing(cli_enabled, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    services.proxy_stage(
        appliance=cli_enabled,
        host="proxy.example.com",
        port=3128,
        username="svc",
        password="s3cret",
        user=None,
        now=appliance_now(cli_enabled),
    )
    transcript(cli_enabled, ["commit", "proxy"])
    out = transcript(cli_enabled, ["saveconfig", ""])
    name = "C395-4C4C4544-ESA1-0001-20310303T090000.xml"
    assert out == (
        PROMPT + "saveconfig\n"
        "Do you want to mask the password? Files with masked passwords cannot be loaded using loadconfig command. "
        "[Y]> \n"
        "\n"
        f"The file {name} has been saved in the configuration directory.\n"
        "\n" + PROMPT + "\n"
    )
    text = (tmp_path / "configuration" / "demo" / "esa1.example.com" / name).read_text(encoding="iso-8859-1")
    assert "<hostname>esa1.example.com</hostname>" in text
    assert "<host>proxy.example.com</host>" in text
    assert "<password>*****</password>" in text
    assert "s3cret" not in text
    lowered = text.lower()
    for word in ("smart", "licens", "transport", "token", "certificate", "vln", "reservation", "case"):
        assert word not in lowered, word
    transcript(cli_enabled, ["saveconfig", "n"], user="technician")
    assert "s3cret" in (tmp_path / "configuration" / "demo" / "esa1.example.com" / name).read_text(
        encoding="iso-8859-1"
    )
    assert "Access denied" in transcript(cli_enabled, ["saveconfig"], user="readonly")


def test_agentstatus_and_agentupdate(cli_enabled, settings, client, login_as):
    out = transcript(
        cli_enabled, ["license_smart_agentstatus", "license_smart_agentupdate", "license_smart_agentupdate force"]
    )
    assert out == (
        PROMPT + "license_smart_agentstatus\n"
        "Component                 Version    Last Updated\n"
        "Smart License Agent       1.3.7      Never updated\n"
        "\n" + PROMPT + "license_smart_agentupdate\n"
        "Requesting update of Smart License Agent\n"
        "smart license is up to date\n"
        "\n" + PROMPT + "license_smart_agentupdate force\n"
        "Requesting forced update of Smart License Agent\n"
        "smart license is up to date\n"
        "\n" + PROMPT + "\n"
    )
    settings.SMART_AGENT_VERSION = "1.3.9"
    out = transcript(cli_enabled, ["license_smart_agentupdate", "license_smart_agentstatus"])
    assert out == (
        PROMPT + "license_smart_agentupdate\n"
        "Requesting update of Smart License Agent\n"
        "smart_agent update completed\n"
        "\n" + PROMPT + "license_smart_agentstatus\n"
        "Component                 Version    Last Updated\n"
        "Smart License Agent       1.3.9      03 Mar 2031 09:00 (GMT +00:00)\n"
        "\n" + PROMPT + "\n"
    )
    login_as("admin")
    assert '<td id="row-agent-version">1.3.9</td>' in sl_page(client, cli_enabled)
    assert "Access denied" in transcript(cli_enabled, ["license_smart_agentupdate"], user="operator")


def test_vlinfo_refused_on_hardware_and_updateconfig_needs_reservation(cli_enabled):
    out = transcript(cli_enabled, ["vlinfo", "updateconfig", "vlnid", "VLNESA123456", ""])
    assert "vlinfo\nvlinfo is available only on virtual email gateways.\n" in out
    assert (
        "Choose the operation you want to perform:\n"
        "- VLNID - Add or update the VLN (Virtual License Number).\n"
        "- CLIENTCERTIFICATE - Add or update the client certificate and key.\n"
        "[]> vlnid\n"
        "\n"
        "Enter the VLN\n"
        "[]> VLNESA123456\n"
        "The VLN and client certificate apply only to virtual email gateways.\n"
    ) in out


def test_unknown_command_exit_with_pending_changes_and_eof(cli_esa1):
    assert transcript(cli_esa1, ["status"]) == (
        PROMPT + "status\nUnknown command or missing feature key\n\n" + PROMPT + "\n"
    )
    out = transcript(cli_esa1, ["license_smart", "enable", "y", "", "exit", "commit"])
    assert out.endswith(
        PROMPT + "exit\nThere are uncommitted changes. They stay pending until someone commits or abandons them.\n"
    )
    # End of input in the middle of a dialog ends the session without a change.
    StagedChange.objects.all().delete()
    out = transcript(cli_esa1, ["license_smart", "enable"])
    assert out.endswith("[]> \n")
    assert not StagedChange.objects.exists()


def test_management_command_reads_piped_stdin(cli_esa1):
    import io

    stdout = io.StringIO()
    call_command(
        "appliance_cli",
        "esa1.example.com",
        lab="demo",
        stdin=io.StringIO("license_smart\nENABLE\nY\n\ncommit\nfrom the pipe\nexit\n"),
        stdout=stdout,
    )
    text = stdout.getvalue()
    assert text.startswith(PROMPT + "license_smart\n")
    assert "Changes committed: Mon Mar 03 09:00:00 2031 GMT\n" in text
    assert text.endswith(PROMPT + "exit\n")
    cli_esa1.refresh_from_db()
    assert cli_esa1.licensing_mode == "smart"
    from licensing_core.models import Event

    assert Event.objects.filter(appliance_id=cli_esa1.pk, kind="changes.committed", actor="admin").exists()


def test_management_command_runs_as_the_named_user_and_refuses_strangers(cli_esa1):
    import io

    stdout = io.StringIO()
    call_command(
        "appliance_cli",
        "esa1.example.com",
        lab="demo",
        user="guest",
        stdin=io.StringIO("license_smart\n"),
        stdout=stdout,
    )
    assert "Access denied: the Guest role is not allowed to perform this action." in stdout.getvalue()
    with pytest.raises(CommandError, match="not a member"):
        call_command("appliance_cli", "esa1.example.com", lab="demo", user="nobody", stdin=io.StringIO(""))
    with pytest.raises(CommandError, match="No appliance"):
        call_command("appliance_cli", "esa9.example.com", lab="demo", stdin=io.StringIO(""))
    with pytest.raises(CommandError, match="No lab"):
        call_command("appliance_cli", "esa1.example.com", lab="nope", stdin=io.StringIO(""))
