"""The AsyncOS-style command interpreter (domain-notes §3).

``ApplianceCLI`` reads commands from any iterator of lines and writes the
transcript through a ``write`` callable, so tests feed a list and read a string
and the management command feeds standard input. Every change goes through
gateway_ui.services with the appliance's clock (gateway_ui.clock.appliance_now),
under the user's lab role checked by gateway_ui.permissions, as the GUI does.

Exchanges with Smart Software Manager run in Celery when the GUI starts them.
The CLI waits for them instead: the management command runs tasks eagerly (in
this process, right after the service's transaction commits), and when the task
has not run by the time the service returns (the caller's own transaction is
still open, as in a test), ``_settle`` calls the same exchange service the task
would. Each command therefore ends with the state settled, and the transcript
shows the outcome as the smartlicense log lines the action wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from django.conf import settings

from gateway_ui import services
from gateway_ui.cli import airgap, configfile, present
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, Exchange, TransportMode
from gateway_ui.permissions import RoleRefused, role_require
from gateway_ui.views import CONFIRMATION_NOTE, RETURN_NOTE
from licensing_core.catalogue import licenses_for
from licensing_core.context import request_id_var
from licensing_core.machines import (
    BASE_LICENSE_RELEASE_REFUSAL,
    AgentUpdateState,
    ConversionState,
    RegistrationMode,
    RegistrationState,
    ReservationState,
    TransitionRefused,
)
from licensing_core.models import Event
from licensing_core.roles import GatewayRole

RS = RegistrationState
RV = ReservationState

CHOOSE = "Choose the operation you want to perform:"
UNKNOWN_COMMAND = "Unknown command or missing feature key"
SMART_ENABLED_REFUSAL = "Smart License has been enabled. Use license_smart to manage license"
NOT_ENABLED = "Smart Software Licensing is not enabled. Enable it and commit your changes first."
DEREGISTER_FIRST = "Please deregister product to edit transport settings"
ENABLE_TEXT = (
    "After you enable Smart Software Licensing, all the features in the Classic Licensing mode will be "
    "automatically available in the Smart Licensing mode. Existing covered users in Classic Licensing mode "
    "have a 90-days evaluation period to use Smart Software Licensing without registering the appliance "
    "with Cisco Smart Software Manager.",
    "After you enable the Smart Licensing feature, you will not be able to roll back from Smart Licensing "
    "to Classic Licensing mode.",
)

# license_smart operations: name -> (description, method name). Descriptions of the
# first group are sourced [SARF-clikw]; the reservation-era ones are INFERRED (§3.1).
OPERATIONS: dict[str, tuple[str, str]] = {
    "ENABLE": ("Enables Smart Licensing on the product.", "op_enable"),
    "REQUESTSMART_LICENSE": ("Request licenses for the product.", "op_request"),
    "RELEASESMART_LICENSE": ("Release licenses of the product.", "op_release"),
    "REGISTER": ("Register the product for Smart Licensing.", "op_register"),
    "URL": ("Set the Smart Transport URL.", "op_url"),
    "DEREGISTER": ("Deregister the product from Smart Licensing.", "op_deregister"),
    "REREGISTER": ("Reregister the product for Smart Licensing.", "op_reregister"),
    "RENEW_AUTH": ("Renew authorization of Smart Licenses in use.", "op_renew_auth"),
    "RENEW_ID": ("Renew registration with Smart Licensing.", "op_renew_id"),
    "ENABLE_RESERVATION": ("Enable Specific/Permanent License Reservation.", "op_enable_reservation"),
    "DISABLE_RESERVATION": ("Disable Specific/Permanent License Reservation.", "op_disable_reservation"),
    "REQUEST_CODE": ("Generate the request code for license reservation.", "op_request_code"),
    "INSTALL_AUTHORIZATION_CODE": (
        "Install the authorization code for license reservation.",
        "op_install",
    ),
    "REAUTHORIZE": ("Install a new authorization code to update the license reservation.", "op_reauthorize"),
    "RETURN_RESERVATION": ("Generate the return code to remove the license reservation.", "op_return"),
    "CONVERSION_START": ("Start the conversion of classic licenses to Smart Licenses.", "op_conversion_start"),
    "STATUS": ("Show overall Smart Licensing status.", "op_status"),
    "SUMMARY": ("Show Smart Licensing status summary.", "op_summary"),
}

UPDATECONFIG_OPERATIONS: dict[str, tuple[str, str]] = {
    "VLNID": ("Add or update the VLN (Virtual License Number).", "op_vlnid"),
    "CLIENTCERTIFICATE": ("Add or update the client certificate and key.", "op_client_certificate"),
}

HELP = (
    ("commit", "Commit changes."),
    ("exit", "Exit the command line."),
    ("featurekey", "Administer system feature keys."),
    ("license_smart", "Configure Smart Software Licensing."),
    ("license_smart_agentstatus", "Show the Smart License Agent version."),
    ("license_smart_agentupdate", "Update the Smart License Agent (license_smart_agentupdate force)."),
    ("saveconfig", "Save a copy of the current configuration settings to a file."),
    ("updateconfig", "Configure the VLN and client certificate (air-gap virtual gateways)."),
    ("vlinfo", "Show the VLN, certificate and key of a registered virtual gateway."),
)


class EndOfInput(Exception):
    """Standard input ended: the session ends wherever it was."""


def menu_operations(appliance: Appliance) -> list[str]:
    """The license_smart menu for the current state: only what the state offers (§3.1)."""
    if not appliance.smart_enabled:
        return ["ENABLE"]
    registered = appliance.registration_state == RS.REGISTERED
    # A new virtual user without an evaluation period does not see REQUEST/RELEASE until
    # registered (§1.5); in reservation mode licences are requested before the code is installed.
    licences = ["REQUESTSMART_LICENSE", "RELEASESMART_LICENSE"]
    if not (appliance.in_reservation_mode or registered or appliance.eval_eligible):
        licences = []
    ops: list[str] = []
    if appliance.in_reservation_mode:
        rv = appliance.reservation_state
        ops += licences
        if rv in (RV.ENABLED, RV.RETURNED, RV.REQUESTED):
            ops.append("REQUEST_CODE")
        if rv == RV.REQUESTED:
            ops.append("INSTALL_AUTHORIZATION_CODE")
        if rv == RV.SLR_INSTALLED:
            ops.append("REAUTHORIZE")
        if rv in (RV.SLR_INSTALLED, RV.PLR_INSTALLED):
            ops.append("RETURN_RESERVATION")
        ops.append("DISABLE_RESERVATION")
    elif registered:
        ops += ["URL", *licences, "DEREGISTER", "REREGISTER", "RENEW_AUTH", "RENEW_ID"]
        if appliance.dlc_state == ConversionState.FAILED or (
            appliance.dlc_state == ConversionState.NOT_STARTED and appliance.classic_feature_keys
        ):
            ops.append("CONVERSION_START")
    elif appliance.registration_state != RS.REGISTERING and not appliance.exchange:
        ops += [*licences, "REGISTER", "URL", "ENABLE_RESERVATION"]
    return [*ops, "STATUS", "SUMMARY"]


class ApplianceCLI:
    def __init__(
        self,
        *,
        appliance: Appliance,
        user,
        role: str,
        lines: Iterable[str],
        write: Callable[[str], None],
        echo: bool = True,
    ) -> None:
        self.appliance_id = appliance.pk
        self.hostname = appliance.hostname
        self.user = user
        self.actor = user.get_username() if user is not None else ""
        self.role = role
        self._lines = iter(lines)
        self._write = write
        self.echo = echo

    # --- input / output ------------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        self._write(text + "\n")

    def ask(self, prompt: str) -> str:
        """Write the prompt, read one line (stripped). End of input ends the session."""
        self._write(prompt)
        try:
            line = next(self._lines)
        except StopIteration:
            self._write("\n")
            raise EndOfInput from None
        line = line.rstrip("\r\n")
        if self.echo:
            self._write(line + "\n")
        return line.strip()

    def ask_yes_no(self, prompt: str, default: bool | None) -> bool:
        while True:
            answer = self.ask(prompt).lower()
            if not answer and default is not None:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            self.out('Please answer "Y" or "N".')

    def read_block(self, prompt: str) -> str:
        """Pasted text, ended by a line holding only '.' (as AsyncOS reads certificates)."""
        self.out(prompt)
        lines = []
        while True:
            try:
                line = next(self._lines)
            except StopIteration:
                raise EndOfInput from None
            line = line.rstrip("\r\n")
            if self.echo:
                self._write(line + "\n")
            if line.strip() == ".":
                return "\n".join(lines)
            lines.append(line)

    def ask_numbers(self, prompt: str, count: int) -> list[int] | None:
        """``3,5,8`` -> [3, 5, 8]; blank -> None; anything else is refused with a message."""
        answer = self.ask(prompt)
        if not answer:
            return None
        picked = []
        for part in answer.replace(" ", "").split(","):
            if not part.isdigit() or not 1 <= int(part) <= count:
                self.out(f"Enter numbers between 1 and {count}, separated by commas (for example, 3,5,8).")
                return None
            if int(part) not in picked:
                picked.append(int(part))
        return picked

    # --- state, roles, services ----------------------------------------------------------------

    def appliance(self) -> Appliance:
        return Appliance.objects.select_related("lab", "cluster").get(pk=self.appliance_id)

    @staticmethod
    def now(appliance: Appliance) -> datetime:
        return appliance_now(appliance)

    def allowed(self, action: str) -> bool:
        try:
            role_require(self.role, action)
        except RoleRefused as exc:
            self.out(exc.reason)
            return False
        return True

    def call(self, fn, *, appliance: Appliance | None = None, **kwargs):
        """Call a service with the appliance and its time; print its refusal. Returns (ok, result)."""
        appliance = appliance or self.appliance()
        token = request_id_var.set(request_id_var.get() or uuid.uuid4())
        try:
            return True, fn(appliance=appliance, now=self.now(appliance), **kwargs)
        except (TransitionRefused, RoleRefused) as exc:
            self.out(exc.reason)
            return False, None
        finally:
            request_id_var.reset(token)

    def act(self, fn, *, appliance: Appliance | None = None, skip_kinds: tuple[str, ...] = (), **kwargs) -> bool:
        """A service that may start an exchange: call it, wait for the outcome, print the log lines it wrote."""
        appliance = appliance or self.appliance()
        mark = Event.objects.filter(appliance_id=appliance.pk).order_by("-id").values_list("id", flat=True).first() or 0
        token = request_id_var.set(uuid.uuid4())
        try:
            ok, _ = self.call(fn, appliance=appliance, **kwargs)
            if ok:
                self._settle(appliance.pk)
        finally:
            request_id_var.reset(token)
        if ok:
            events = Event.objects.filter(appliance_id=appliance.pk, side="gateway", id__gt=mark).order_by("id")
            for event in events:
                if event.kind not in skip_kinds:
                    self.out(event.message)
        return ok

    def _settle(self, appliance_id: int) -> None:
        """Run the exchange the service started if its task has not run yet (as the task would)."""
        appliance = Appliance.objects.select_related("lab").get(pk=appliance_id)
        now = self.now(appliance)
        if appliance.registration_state == RS.REGISTERING:
            services.agent_register_exchange(appliance=appliance, now=now)
        elif appliance.exchange == Exchange.AUTHORIZE:
            services.authorize_exchange(appliance=appliance, now=now)
        elif appliance.exchange == Exchange.RENEW_ID:
            services.renew_id_exchange(appliance=appliance, now=now)
        elif appliance.exchange == Exchange.DEREGISTER:
            services.deregister_exchange(appliance=appliance, now=now)
        appliance.refresh_from_db()
        if appliance.agent_update_state == AgentUpdateState.UPDATING:
            services.agent_update_run(appliance=appliance, now=now, latest=settings.SMART_AGENT_VERSION)

    def _cluster_targets(self, appliance: Appliance, question: str) -> bool:
        """Ask the cluster question the GUI offers as a check box (only on a clustered machine)."""
        if not appliance.cluster_id:
            return False
        return self.ask_yes_no(f"{question} [N]> ", default=False)

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        commands = {
            "license_smart": self.cmd_license_smart,
            "license_smart_agentstatus": self.cmd_agentstatus,
            "license_smart_agentupdate": self.cmd_agentupdate,
            "vlinfo": self.cmd_vlinfo,
            "updateconfig": self.cmd_updateconfig,
            "featurekey": self.cmd_featurekey,
            "featurekeyconfig": self.cmd_featurekeyconfig,
            "saveconfig": self.cmd_saveconfig,
            "commit": self.cmd_commit,
            "help": self.cmd_help,
        }
        while True:
            try:
                line = self.ask(f"{self.hostname}> ")
            except EndOfInput:
                return
            if not line:
                continue
            name, *args = line.split()
            name = name.lower()
            if name in ("exit", "quit"):
                self.cmd_exit()
                return
            handler = commands.get(name)
            try:
                if handler is None:
                    self.out(UNKNOWN_COMMAND)
                else:
                    handler(args)
            except EndOfInput:
                return
            self.out()

    def _menu(self, operations: list[str], table: dict[str, tuple[str, str]]) -> str | None:
        self.out()
        self.out(CHOOSE)
        for op in operations:
            self.out(f"- {op} - {table[op][0]}")
        while True:
            choice = self.ask("[]> ").upper()
            if not choice:
                return None
            if choice in operations:
                return choice
            self.out(f'"{choice}" is not one of the operations listed. Enter an operation, or press Enter to return.')

    # --- top-level commands ----------------------------------------------------------------------

    def cmd_help(self, args) -> None:
        width = max(len(n) for n, _ in HELP) + 2
        for name, text in HELP:
            self.out(f"{name.ljust(width)}{text}")

    def cmd_exit(self) -> None:
        if self.appliance().staged_changes.exists():
            self.out("There are uncommitted changes. They stay pending until someone commits or abandons them.")

    def cmd_license_smart(self, args) -> None:
        if not self.allowed("view"):
            return
        while True:
            choice = self._menu(menu_operations(self.appliance()), OPERATIONS)
            if choice is None:
                return
            getattr(self, OPERATIONS[choice][1])()

    def cmd_agentstatus(self, args) -> None:
        appliance = self.appliance()
        if not self.allowed("view"):
            return
        if not appliance.smart_enabled:
            self.out(NOT_ENABLED)
            return
        for line in present.agent_status_lines(appliance):
            self.out(line)

    def cmd_agentupdate(self, args) -> None:
        force = bool(args) and args[0].lower() == "force"
        if args and not force:
            self.out("Usage: license_smart_agentupdate [force]")
            return
        if not self.allowed("agent_update"):
            return
        appliance = self.appliance()
        if not appliance.smart_enabled:
            self.out(NOT_ENABLED)
            return
        self.out(f"Requesting {'forced ' if force else ''}update of Smart License Agent")
        self.act(services.agent_update, appliance=appliance, actor=self.actor, skip_kinds=("agent.update_requested",))

    def cmd_vlinfo(self, args) -> None:
        if not self.allowed("airgap"):
            return
        try:
            info = services.vlinfo(appliance=self.appliance())
        except TransitionRefused as exc:
            self.out(exc.reason)
            return
        self.out(f"VLN: {info['vln']}")
        self.out()
        self.out("Certificate:")
        self.out(info["certificate"].strip())
        self.out()
        self.out("Key:")
        self.out(info["key"].strip())

    def cmd_updateconfig(self, args) -> None:
        if not self.allowed("airgap"):
            return
        while True:
            choice = self._menu(list(UPDATECONFIG_OPERATIONS), UPDATECONFIG_OPERATIONS)
            if choice is None:
                return
            getattr(self, UPDATECONFIG_OPERATIONS[choice][1])()

    def cmd_featurekey(self, args) -> None:
        appliance = self.appliance()
        if appliance.smart_enabled:
            self.out(SMART_ENABLED_REFUSAL)
            return
        if not self.allowed("view"):
            return
        names = {lic.code: lic.name for lic in licenses_for(appliance.product)}
        keys = [names.get(code, code) for code in appliance.classic_feature_keys or []]
        if not keys:
            self.out("No feature keys are installed.")
            return
        width = max(len(k) for k in keys) + 4
        self.out(f"{'Module'.ljust(width)}Status")
        for key in keys:
            self.out(f"{key.ljust(width)}Active")

    def cmd_featurekeyconfig(self, args) -> None:
        if self.appliance().smart_enabled:
            self.out(SMART_ENABLED_REFUSAL)
        else:
            self.out(UNKNOWN_COMMAND)

    def cmd_saveconfig(self, args) -> None:
        # Saving writes a file: Read-Only Operators and Guests have no file system access (§8.1).
        if self.role not in (GatewayRole.ADMINISTRATOR, GatewayRole.OPERATOR, GatewayRole.TECHNICIAN):
            self.out(f"Access denied: the {GatewayRole(self.role).label} role is not allowed to perform this action.")
            return
        mask = self.ask_yes_no(
            "Do you want to mask the password? Files with masked passwords cannot be loaded using loadconfig "
            "command. [Y]> ",
            default=True,
        )
        appliance = self.appliance()
        path = configfile.config_save(appliance=appliance, now=self.now(appliance), mask_passwords=mask)
        self.out()
        self.out(f"The file {path.name} has been saved in the configuration directory.")

    def cmd_commit(self, args) -> None:
        appliance = self.appliance()
        if not appliance.staged_changes.exists():
            self.out("There are no changes to commit.")
            return
        self.out()
        self.out("Please enter some comments describing your changes:")
        comment = self.ask("[]> ")
        ok, _ = self.call(
            services.changes_commit, appliance=appliance, user=self.user, role=self.role, comment=comment[:500]
        )
        if ok:
            self.out()
            self.out(f"Changes committed: {present.commit_time(self.now(appliance))}")

    # --- license_smart operations --------------------------------------------------------------

    def op_enable(self) -> None:
        if not self.allowed("stage_enable"):
            return
        appliance = self.appliance()
        self.out()
        for paragraph in ENABLE_TEXT:
            self.out(paragraph)
        self.out()
        if not self.ask_yes_no(
            'Type "Y" if you want to continue, or type "N" if you want to use the classic licensing.\n[]> ',
            default=None,
        ):
            return
        everywhere = self._cluster_targets(appliance, "Enable Smart Software Licensing on all machines in the cluster")
        ok, targets = self.call(services.sl_enable, appliance=appliance, user=self.user, all_in_cluster=everywhere)
        if ok:
            for target in targets:
                prefix = f"{target.hostname}: " if len(targets) > 1 else ""
                self.out(f"{prefix}Smart Licensing will be enabled after commit")

    def _token(self) -> str:
        self.out()
        self.out("Enter token to register the product:")
        return self.ask("[]> ")

    def op_register(self) -> None:
        if not self.allowed("register"):
            return
        appliance = self.appliance()
        self.out()
        force = self.ask_yes_no("Reregister this product instance if it is already registered [N]> ", default=False)
        everywhere = self._cluster_targets(appliance, "Register Smart Software Licensing across machines in cluster")
        token = self._token()
        targets = [appliance]
        if everywhere:
            targets += list(appliance.cluster.members.exclude(pk=appliance.pk).select_related("lab"))
        for target in targets:
            if len(targets) > 1:
                self.out(f"{target.hostname}:")
            self.act(services.agent_register, appliance=target, token=token, force=force, actor=self.actor)

    def op_reregister(self) -> None:
        if not self.allowed("register"):
            return
        self.out()
        self.out("A product instance has already been registered to Smart Software Manager.")
        if not self.ask_yes_no(
            "Do you want to remove the existing product instance from Smart Software Manager and register "
            "this one in its place? Press Yes or No []> ",
            default=None,
        ):
            return
        token = self._token()
        self.act(services.agent_register, token=token, force=True, reregister=True, actor=self.actor)

    def op_deregister(self) -> None:
        if not self.allowed("register"):
            return
        self.out()
        self.out(
            "Do you want to deregister the product instance from the CSSM? Licenses are released back to the "
            "virtual account and requested licenses return to the evaluation period if any is left."
        )
        if self.ask_yes_no("Press Yes or No []> ", default=None):
            self.act(services.agent_deregister, actor=self.actor)

    def op_renew_auth(self) -> None:
        if self.allowed("register"):
            self.act(services.renew_authorization, actor=self.actor)

    def op_renew_id(self) -> None:
        if self.allowed("register"):
            self.act(services.renew_id_certificate, actor=self.actor)

    def op_url(self) -> None:
        if not self.allowed("stage_transport"):
            return
        appliance = self.appliance()
        if appliance.registration_state == RS.REGISTERED:
            self.out(DEREGISTER_FIRST)
            return
        self.out()
        self.out("Choose from the following menu options")
        self.out("1. DIRECT")
        self.out("2. TRANSPORT_GATEWAY")
        default = 2 if appliance.transport_mode == TransportMode.GATEWAY else 1
        while True:
            answer = self.ask(f"[{default}]> ") or str(default)
            if answer in ("1", "2"):
                break
            self.out("Enter 1 or 2.")
        url = ""
        if answer == "2":
            self.out()
            self.out("Enter the gateway URL to connect")
            url = self.ask("[]> ")
        mode = TransportMode.GATEWAY if answer == "2" else TransportMode.DIRECT
        ok, _ = self.call(services.transport_stage, appliance=appliance, mode=mode, url=url, user=self.user)
        if ok:
            self.out("Transport settings will be updated after commit")

    def _requested_codes(self, appliance: Appliance) -> set[str]:
        return {row.code for row in appliance.licenses.all() if row.requested}

    def op_request(self) -> None:
        if not self.allowed("licenses"):
            return
        appliance = self.appliance()
        offered = present.requestable(appliance)
        if not offered:
            self.out("There are no licenses for activation")
            return
        self.out()
        for line in present.pick_list([(lic.name, "Not requested") for lic in offered]):
            self.out(line)
        self.out("Enter the appropriate license number(s) for activation (for example, 3,5,8)")
        picked = self.ask_numbers("[]> ", len(offered))
        if not picked:
            return
        wanted = self._requested_codes(appliance) | {offered[i - 1].code for i in picked}
        self.act(services.licenses_submit, appliance=appliance, requested=wanted, actor=self.actor)

    def op_release(self) -> None:
        if not self.allowed("licenses"):
            return
        appliance = self.appliance()
        offered = present.releasable(appliance)
        if not offered:
            self.out("There are no licenses for deactivation")
            return
        self.out()
        for line in present.pick_list([(lic.name, label) for lic, label in offered]):
            self.out(line)
        self.out("Enter the appropriate license number(s) for deactivation (for example, 3,5,8)")
        picked = self.ask_numbers("[]> ", len(offered))
        if not picked:
            return
        chosen = [offered[i - 1][0] for i in picked]
        if any(lic.is_base for lic in chosen):
            self.out(BASE_LICENSE_RELEASE_REFUSAL)
        release = {lic.code for lic in chosen if not lic.is_base}
        if release:
            wanted = self._requested_codes(appliance) - release
            self.act(services.licenses_submit, appliance=appliance, requested=wanted, actor=self.actor)

    def op_status(self) -> None:
        appliance = self.appliance()
        self.out()
        for line in present.status_lines(appliance, self.now(appliance)):
            self.out(line)

    def op_summary(self) -> None:
        appliance = self.appliance()
        self.out()
        for line in present.summary_lines(appliance, self.now(appliance)):
            self.out(line)

    def _mode_set(self, mode: str, question: str, done: str) -> None:
        appliance = self.appliance()
        everywhere = self._cluster_targets(appliance, question)
        ok, results = self.call(
            services.registration_mode_set, appliance=appliance, mode=mode, actor=self.actor, all_in_cluster=everywhere
        )
        if ok:
            for member, result in results:
                self.out(f"{member.hostname}: {result}" if len(results) > 1 else done)

    def op_enable_reservation(self) -> None:
        if not self.allowed("reservation"):
            return
        self.out()
        self._mode_set(
            RegistrationMode.LICENSE_RESERVATION,
            "Enable license reservation for all machines in the cluster",
            f"Registration mode: {RegistrationMode.LICENSE_RESERVATION.label}.",
        )

    def op_disable_reservation(self) -> None:
        if not self.allowed("reservation"):
            return
        self.out()
        self.out(
            "The registration mode changes to Smart License Registration. A pending request code is canceled; "
            "an installed authorization code is maintained."
        )
        if not self.ask_yes_no("Do you want to continue? [N]> ", default=False):
            return
        self._mode_set(
            RegistrationMode.SMART_LICENSE_REGISTRATION,
            "Disable license reservation for all machines in the cluster",
            "License reservation is disabled.",
        )

    def op_request_code(self) -> None:
        if not self.allowed("reservation"):
            return
        ok, code = self.call(services.reservation_request_code, actor=self.actor)
        if ok:
            self.out()
            self.out(f"Request code: {code}")
            self.out("Use the request code in the Smart Software Manager portal to generate an authorization code.")
            self.out("A system alert is sent every 24 hours until you install an authorization code.")

    def op_install(self) -> None:
        if not self.allowed("reservation"):
            return
        self.out()
        code = self.read_block("Paste the authorization code (end with '.'):")
        ok, _ = self.call(services.reservation_install, code=code, actor=self.actor)
        if ok:
            self.out("Smart Agent successfully installed the license reservation.")

    def op_reauthorize(self) -> None:
        if not self.allowed("reservation"):
            return
        self.out()
        code = self.read_block("Paste the new authorization code (end with '.'):")
        ok, confirmation = self.call(services.reservation_reauthorize, code=code, actor=self.actor)
        if ok:
            self.out(f"Confirmation code: {confirmation}")
            self.out(CONFIRMATION_NOTE)

    def op_return(self) -> None:
        if not self.allowed("reservation"):
            return
        self.out()
        self.out("The license reservation is removed from this appliance and its licenses return to the pool.")
        if not self.ask_yes_no("Do you want to generate the return code? [N]> ", default=False):
            return
        ok, code = self.call(services.reservation_return, actor=self.actor)
        if ok:
            self.out(f"Return code: {code}")
            self.out(RETURN_NOTE)

    def op_conversion_start(self) -> None:
        if self.allowed("register"):
            self.act(services.dlc_start, actor=self.actor)

    # --- updateconfig operations --------------------------------------------------------------

    def op_vlnid(self) -> None:
        self.out()
        self.out("Enter the VLN")
        vln = self.ask("[]> ")
        ok, _ = self.call(airgap.vln_set, vln=vln, actor=self.actor)
        if ok:
            self.out("The VLN is updated.")

    def op_client_certificate(self) -> None:
        self.out()
        certificate = self.read_block("Paste the client certificate in PEM format (end with '.'):")
        key = self.read_block("Paste the client key in PEM format (end with '.'):")
        ok, _ = self.call(airgap.client_certificate_set, certificate=certificate, key=key, actor=self.actor)
        if ok:
            self.out("The client certificate and key are updated.")


def run_cli(*, appliance: Appliance, user, role: str, lines: Iterable[str], write, echo: bool = True) -> None:
    ApplianceCLI(appliance=appliance, user=user, role=role, lines=lines, write=write, echo=echo).run()
