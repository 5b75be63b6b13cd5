"""The scenarios. Each build calls only Builder steps (services, time
travel, faults); the docstring says what the engineer will see."""

from cssm_portal.models import AccountAccess, CssmRole, SmartAccount, VirtualAccount
from labs.scenarios.registry import scenario
from labs.world import appliance_add, cluster_join
from licensing_core.faults import Fault

ESA1, ESA2 = "esa1.example.com", "esa2.example.com"


def _registered(b, host=ESA1, **token_kw):
    b.enable(host)
    b.register(host, b.token(**token_kw))
    return b.expect(host, registration_state="registered")


@scenario(
    name="classic",
    title="Classic appliance before enabling",
    shows=[(f"sl:{ESA1}", "Enable Smart Software Licensing")],
)
def classic(b):
    """esa1 still runs classic feature keys: the Smart Software Licensing page offers only
    Enable Smart Software Licensing. Nothing exists in the portal for it yet."""


@scenario(
    name="eval-day-1",
    title="Evaluation, day 1",
    shows=[(f"sl:{ESA1}", "Evaluation Period Remaining"), (f"sl:{ESA1}", "90 days, 0 hr"),
           (f"sl:{ESA1}", "Unregistered"), (f"alerts:{ESA1}", "The evaluation period has begun")],
)  # fmt: skip
def eval_day_1(b):
    """Smart Software Licensing was just enabled and committed on esa1: the 90-day evaluation
    period is In Use, the appliance is Unregistered, and the features held under classic
    licences are in Eval on the Licenses page."""
    b.enable(ESA1)


@scenario(
    name="eval-5-days-left",
    title="Evaluation with 5 days left",
    shows=[(f"sl:{ESA1}", "5 days, 0 hr"), (f"sl:{ESA1}", "Unregistered")],
)
def eval_5_days_left(b):
    """Enabled 85 days ago and never registered: Evaluation Period Remaining shows 5 days,
    and the Alerts page lists the evaluation expiry warnings sent on the way."""
    b.enable(ESA1)
    b.advance(days=85)


@scenario(
    name="eval-expired",
    title="Evaluation expired",
    shows=[(f"sl:{ESA1}", "0 days, 0 hr"), (f"alerts:{ESA1}", "expired")],
)
def eval_expired(b):
    """Enabled 91 days ago and never registered: the evaluation period is used up, the
    features that were in Eval are no longer available, and the expiry alert was sent."""
    b.enable(ESA1)
    b.advance(days=91)


@scenario(
    name="registered",
    title="Registered and authorized",
    shows=[(f"sl:{ESA1}", "Registered ("), (f"sl:{ESA1}", "Authorized ("),
           (f"licenses:{ESA1}", "In Compliance"), ("portal:instances", ESA1)],
)  # fmt: skip
def registered(b):
    """esa1 registered with a token from the ESA virtual account over the real exchange:
    Registration Status Registered, License Authorization Status Authorized, its licences
    In Compliance; the portal lists the product instance in the ESA virtual account."""
    _registered(b)


@scenario(
    name="ooc-grace-day-12",
    title="Out of compliance, grace day 12",
    shows=[(f"sl:{ESA1}", "Out of Compliance ("), (f"licenses:{ESA1}", "Out Of Compliance"),
           ("portal:alerts", "Insufficient Licenses")],
)  # fmt: skip
def ooc_grace_day_12(b):
    """Someone transferred the ESA virtual account's only Outbreak Filters licence to the
    Lab account (a shortage); esa1 then registered and requested it. Twelve days later the
    appliance shows Out of Compliance, Outbreak Filters is Out Of Compliance on the
    Licenses page with 18 days of grace left, and the portal raises Insufficient Licenses.
    Advance 18 days to see the grace period expire and the feature become unavailable."""
    b.shortage(code="VOF", quantity=1)
    _registered(b)
    b.expect(ESA1, authorization_state="out_of_compliance")
    b.advance(days=12)


@scenario(
    name="grace-expired",
    title="Grace expired (feature unavailable)",
    shows=[(f"licenses:{ESA1}", "Outbreak Filters"), (f"alerts:{ESA1}", "grace period")],
)
def grace_expired(b):
    """The out-of-compliance grace period of Outbreak Filters ran out (31 days after the
    shortage): the feature is no longer available and the appliance raised the grace
    expiry alerts."""
    b.shortage(code="VOF", quantity=1)
    _registered(b)
    b.advance(days=31)


@scenario(
    name="auth-expired-gateway-down",
    title="Authorization expired (transport gateway unreachable for 91 days)",
    shows=[(f"sl:{ESA1}", "Transport Gateway"), (f"sl:{ESA1}", "Authorization Expired"),
           (f"alerts:{ESA1}", "The authorization of the product has expired")],
)  # fmt: skip
def auth_expired_gateway_down(b):
    """esa1 registered through a Transport Gateway; the gateway then went down (fault
    Transport gateway down stays on). Every renewal failed for 91 days and the authorization
    expired: the status page shows the failed renewal attempts and the expiry."""
    b.enable(ESA1)
    b.transport_gateway(ESA1)
    b.register(ESA1, b.token())
    b.expect(ESA1, registration_state="registered")
    b.fault(Fault.TRANSPORT_GATEWAY_DOWN)
    b.advance(days=91)


@scenario(
    name="id-cert-expired",
    title="ID certificate expired",
    shows=[(f"sl:{ESA1}", "FAILED"), (f"alerts:{ESA1}", "Id certificate has expired")],
)
def id_cert_expired(b):
    """esa1 registered, then lost its connection to Smart Software Manager (fault CSSM
    unreachable stays on) for more than a year: authorization expired after 90 days and the
    ID certificate after 365; the appliance must be registered again."""
    _registered(b)
    b.fault(Fault.CSSM_UNREACHABLE)
    b.advance(days=366)


@scenario(
    name="clock-out-of-sync",
    title="Registration failed: clock out of sync",
    shows=[(f"sl:{ESA1}", "Registration Failed"), (f"sl:{ESA1}", "clock differs from Smart Software Manager time")],
)
def clock_out_of_sync(b):
    """esa1's clock runs 3 hours ahead of the lab (appliance clock skew); its registration was
    refused by Smart Software Manager because the clock is out of sync."""
    b.skew(ESA1, 180)
    b.enable(ESA1)
    b.register(ESA1, b.token())


@scenario(
    name="token-expired",
    title="Registration failed: expired token",
    shows=[(f"sl:{ESA1}", "expired"), ("portal:general", "(expired)")],
)
def token_expired(b):
    """The token was created with Expire After 1 day and used two days later: registration
    failed with the token expiry message; the portal lists the token as expired."""
    token = b.token(expire_days=1)
    b.advance(days=2)
    b.enable(ESA1)
    b.register(ESA1, token)


@scenario(
    name="token-used-up",
    title="Registration failed: token used up",
    shows=[(f"sl:{ESA1}", "maximum number of uses")],
)
def token_used_up(b):
    """A token with Max. Number of Uses 1 registered esa2 first; esa1 then tried the same
    token and was refused."""
    token = b.token(max_uses=1)
    b.enable(ESA2)
    b.register(ESA2, token)
    b.expect(ESA2, registration_state="registered")
    b.enable(ESA1)
    b.register(ESA1, token)


@scenario(
    name="token-revoked",
    title="Registration failed: revoked token",
    shows=[(f"sl:{ESA1}", "revoked"), ("timeline", "was revoked")],
)
def token_revoked(b):
    """The admin copied a token, then another administrator revoked it in the portal behind
    their back; registering esa1 with it failed with the revocation message."""
    token = b.token()
    b.revoke(token)
    b.enable(ESA1)
    b.register(ESA1, token)


def _reservation_requested(b, host=ESA1):
    b.enable(host)
    b.reservation_mode(host)
    return b.request_code(host)


@scenario(
    name="slr-request-pending",
    title="SLR request code pending (24-hour reminders)",
    shows=[(f"sl:{ESA1}", "Reservation"), (f"alerts:{ESA1}", "request code")],
)
def slr_request_pending(b):
    """esa1 is in license reservation mode and generated a request code two days ago that was
    never taken to the portal: the code is still pending and the appliance repeats its
    reminder alert every 24 hours."""
    _reservation_requested(b)
    b.advance(days=2)


@scenario(
    name="slr-installed",
    title="SLR installed",
    shows=[(f"sl:{ESA1}", "Specific"), (f"licenses:{ESA1}", "Reserved"), ("portal:instances", "(reserved licenses)")],
)
def slr_installed(b):
    """A specific license reservation (Outbreak Filters and Anti-Spam) was authorized in the
    portal from esa1's request code and the authorization code installed on esa1."""
    code = _reservation_requested(b)
    b.install(ESA1, b.reserve(ESA1, code, quantities={"VOF": 1, "case": 1}))


@scenario(
    name="slr-reauth-pending-confirmation",
    title="SLR reauthorization awaiting its confirmation code",
    shows=[(f"sl:{ESA1}", "Specific"), (f"portal:instance:{ESA1}", "onfirmation")],
)
def slr_reauth_pending(b):
    """After an SLR, the reservation was updated in the portal (Sophos added) and the new
    authorization code installed on esa1 with Reauthorize; esa1 shows the confirmation code
    and the portal still waits for it to be entered."""
    code = _reservation_requested(b)
    b.install(ESA1, b.reserve(ESA1, code, quantities={"VOF": 1, "case": 1}))
    b.reauthorize(ESA1, b.reservation_update(ESA1, {"VOF": 1, "case": 1, "sophos": 1}))


@scenario(
    name="plr-installed",
    title="PLR installed",
    shows=[(f"sl:{ESA1}", "Permanent"), (f"licenses:{ESA1}", "Reserved")],
)
def plr_installed(b):
    """A permanent license reservation was authorized for esa1 and installed: every licence is
    reserved, with no renewals."""
    code = _reservation_requested(b)
    b.install(ESA1, b.reserve(ESA1, code, permanent=True))


@scenario(
    name="dlc-failed",
    title="Device Led Conversion failed",
    shows=[(f"sl:{ESA1}", "failed"), (f"alerts:{ESA1}", "Device Led Conversion failed")],
)
def dlc_failed(b):
    """esa1 registered and started converting its classic feature keys; the portal refused the
    conversion because Advanced Malware Protection is held there as a term licence.
    Device Led Conversion Status shows failed with the reason, and Start Conversion is offered."""
    _registered(b)
    b.advance(hours=2)


@scenario(
    name="cluster-one-auth-expired",
    title="Three-node cluster with one member's authorization expired",
    look_at="esa4.example.com",
    shows=[
        ("sl:esa4.example.com", "Authorization Expired"),
        ("sl:esa3.example.com", "Authorized ("),
        (f"sl:{ESA1}", "Registered ("),
    ],
)  # fmt: skip
def cluster_one_auth_expired(b):
    """esa1, esa3 and esa4 form cluster "mailcluster" and were all registered. esa4 reaches the
    portal through a Transport Gateway that then went down: 91 days later esa4's authorization
    has expired while esa1 and esa3 renewed normally (esa1 shows Out of Compliance only because the ESA
    account's term Advanced Malware Protection licences ran out on day 45)."""
    esa3 = appliance_add(lab=b.lab, hostname="esa3.example.com", pid="C395", serial="4C4C4544-ESA3-0004",
                         virtual=False, keys=[])  # fmt: skip
    esa4 = appliance_add(lab=b.lab, hostname="esa4.example.com", pid="C395", serial="4C4C4544-ESA4-0005",
                         virtual=False, keys=[])  # fmt: skip
    cluster_join(lab=b.lab, name="mailcluster", appliances=[b.appliance(ESA1), esa3, esa4])
    b.enable(ESA1, all_in_cluster=True)
    for host in ("esa3.example.com", "esa4.example.com"):
        b.request_licenses(host, {"case", "sophos"})
    b.transport_gateway("esa4.example.com")
    token = b.token()
    for host in (ESA1, "esa3.example.com", "esa4.example.com"):
        b.register(host, token)
        b.expect(host, registration_state="registered")
    b.fault(Fault.TRANSPORT_GATEWAY_DOWN)
    b.advance(days=91)


@scenario(
    name="virtual-no-eval",
    title="New virtual gateway without evaluation",
    look_at=ESA2,
    shows=[(f"sl:{ESA2}", "Not In Use"), (f"sl:{ESA2}", "Unregistered")],
)
def virtual_no_eval(b):
    """esa2 is a new virtual gateway (C100V) that never held classic licences: enabling Smart
    Software Licensing gives it no evaluation period, so nothing works until it registers."""
    b.enable(ESA2)


@scenario(
    name="airgap-virtual-vln",
    title="Air-gapped virtual gateway with its VLN",
    look_at="esa5.example.com",
    shows=[("sl:esa5.example.com", "Reservation"), ("timeline", "client certificate")],
)
def airgap_virtual(b):
    """esa2 (connected) registered and its VLN, certificate and key were copied from vlinfo to
    esa5, a virtual gateway without Internet access in license reservation mode
    (updateconfig VLNID and CLIENTCERTIFICATE). esa5 then reserved its licences with a
    specific license reservation."""
    appliance_add(lab=b.lab, hostname="esa5.example.com", pid="C100V", serial="564D-ESA5-0006", virtual=True, keys=[])
    _registered(b, ESA2)
    b.enable("esa5.example.com")
    b.reservation_mode("esa5.example.com")
    b.airgap("esa5.example.com", source=ESA2)
    code = b.request_code("esa5.example.com")
    b.install("esa5.example.com", b.reserve("esa5.example.com", code, quantities={"VOF": 1, "case": 1}))


UNSUPPORTED_SA_NAME = "Acme+Partner Mail"


@scenario(
    name="sa-name-unsupported",
    title="Smart Account name with unsupported characters",
    shows=[(f"alerts:{ESA1}", "is not supported in a Smart Account name"), (f"sl:{ESA1}", UNSUPPORTED_SA_NAME)],
)
def sa_name_unsupported(b):
    """The customer's Smart Account is called "Acme+Partner Mail" (it predates the name rules
    the portal now enforces, so the lab adds it as existing inventory). esa1 registers with a
    token from it: registration succeeds but the appliance cannot fetch the Cisco Talos
    certificate because "+" is not supported in a Smart Account name."""
    account = SmartAccount.objects.create(lab=b.lab, name=UNSUPPORTED_SA_NAME, domain="acme.example")
    VirtualAccount.objects.create(smart_account=account, name="DEFAULT", is_default=True)
    for user in b.lab.members.filter(username__in=["admin", "sa-admin"]):
        AccountAccess.objects.get_or_create(user=user, smart_account=account, defaults={"role": CssmRole.SA_ADMIN})
    b.enable(ESA1)
    b.register(ESA1, b.token(va="DEFAULT", domain="acme.example"))
    b.expect(ESA1, registration_state="registered")


@scenario(
    name="agreement-pending",
    title="Updated Smart Software Licensing Agreement not yet accepted",
    shows=[("portal:alerts", "Smart Licensing Agreement Pending"), ("portal:alerts", "Updated Smart License Agreement"),
           ("portal:general", "View Agreement"), (f"sl:{ESA1}", "Registered (")],
)  # fmt: skip
def agreement_pending(b):
    """Cisco published an updated Smart Software Licensing Agreement (the lab page's action) and
    nobody has accepted it yet: every portal page shows the Smart Licensing Agreement Pending
    banner, with Accept for a Smart Account Administrator, and the Alerts tab lists Updated
    Smart License Agreement and Smart Licensing Agreement Pending. Nothing is blocked meanwhile:
    esa1 registered with a new token the day after. Accept clears both alerts and writes the
    acceptance to the Smart Account Event Log."""
    b.publish_agreement("Usage data is kept for five years.")
    b.advance(days=1)
    _registered(b)


@scenario(
    name="satellite-file-ready",
    title="Satellite synchronized by file: authorization file ready",
    shows=[("portal:alerts", "Satellite Authorization File Ready"), ("portal:alerts", "Synchronization Overdue")],
)
def satellite_file_ready(b):
    """The on-premises satellite (satellite.example.com, holding the Lab virtual account) has no
    network connection to Smart Software Manager and last synchronized 42 days ago: the portal
    raises Synchronization Overdue. The admin exported its synchronization file and uploaded it
    on the On-Prem Accounts tab: Satellite Authorization File Ready is raised and the
    satellite's row offers Download. Downloading the file synchronizes the satellite and clears
    both alerts."""
    b.advance(days=30)
    b.satellite_file_sync_upload("satellite.example.com")


@scenario(
    name="restricted-license",
    title="Restricted license not available (token without export control)",
    shows=[("portal:alerts", "Restricted License Not Available"), (f"licenses:{ESA1}", "Not Authorized"),
           (f"sl:{ESA1}", "Registered (")],
)  # fmt: skip
def restricted_license(b):
    """esa1 registered with a token created without "Allow export-controlled functionality".
    PXE Encryption is export-controlled: Smart Software Manager does not authorize it for
    esa1, which shows it Not Authorized on the Licenses page (no grace period: buying more
    would not help), and the portal raises
    Restricted License Not Available for the ESA virtual account. Register esa1 again
    (Reregister) with a token that allows export-controlled functionality to clear it."""
    _registered(b, export_controlled=False)
