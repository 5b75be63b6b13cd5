"""Driving a lab into a state through the real services.

A scenario never writes a state field: it enables Smart Software Licensing,
creates tokens in the portal, registers over HTTP through the Smart Agent
client to the CSSM endpoint, moves the lab clock with the time-travel
service and toggles faults. What the engineer then sees is what the code
produced.

Two pieces of plumbing make that work outside a web request:

- `celery_inline()`: the appliance services hand their exchanges to Celery
  (on commit). While a scenario builds, tasks run in the building thread so
  each step has finished before the next one starts.
- `cssm_served()`: the Smart Agent client (gateway_ui.agent.client) posts with
  `requests` and has no pluggable transport, so when no server is running
  (management commands) a small WSGI server serving this project is started
  on 127.0.0.1 with a free port for the duration of the build, and
  CSSM_BASE_URL points at it. Inside a web request (or a test with
  live_server) the running server at CSSM_BASE_URL is used as it is.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings

from cssm_portal import agreements, satellites
from cssm_portal import services as cssm
from cssm_portal.models import ProductInstance, RegistrationToken, SatelliteInstance, VirtualAccount
from gateway_ui import services as gw
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, RegistrationMode, TransportMode
from labs import faults as lab_faults
from licensing_core.catalogue import licenses_for
from licensing_core.clock import clock_freeze, lab_now
from licensing_core.faults import Fault, fault_set
from licensing_core.models import Lab
from licensing_core.roles import GatewayRole
from licensing_core.sweeps import lab_advance

ACTOR = "scenario"
GATEWAY_PATH = "/Transportgateway/services/DeviceRequestHandler"

_EAGER_LOCK = threading.RLock()


class BuildError(RuntimeError):
    """A scenario step did not reach the state it needs; the message says which."""


@contextmanager
def celery_inline():
    from config.celery import app

    with _EAGER_LOCK:
        before = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            yield
        finally:
            app.conf.task_always_eager = before


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def _host_fixing(app):
    """Serve as the project's own host and scheme, so production settings
    (ALLOWED_HOSTS, SSL redirect) answer the builder's loopback calls."""
    allowed = [h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")]

    def wrapped(environ, start_response):
        if allowed and "127.0.0.1" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
            environ["HTTP_HOST"] = allowed[0]
        if getattr(settings, "SECURE_SSL_REDIRECT", False):
            environ["wsgi.url_scheme"] = "https"
        return app(environ, start_response)

    return wrapped


@contextmanager
def cssm_served():
    """A CSSM endpoint on 127.0.0.1:<free port> for the duration of the block."""
    from django.core.wsgi import get_wsgi_application

    server = make_server(
        "127.0.0.1", 0, _host_fixing(get_wsgi_application()), server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, name="scenario-cssm", daemon=True)
    thread.start()
    before = settings.CSSM_BASE_URL
    settings.CSSM_BASE_URL = f"http://127.0.0.1:{server.server_port}"
    try:
        yield settings.CSSM_BASE_URL
    finally:
        settings.CSSM_BASE_URL = before
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Builder:
    """The steps scenarios are written in; each calls one service."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    # --- reading -------------------------------------------------------------------------------
    def appliance(self, hostname: str) -> Appliance:
        return Appliance.objects.select_related("lab").get(lab=self.lab, hostname=hostname)

    def va(self, name: str = "ESA", domain: str = "example.com") -> VirtualAccount:
        return VirtualAccount.objects.select_related("smart_account").get(
            smart_account__lab=self.lab, smart_account__domain=domain, name=name
        )

    def instance(self, hostname: str) -> ProductInstance:
        return ProductInstance.objects.get(lab=self.lab, udi=self.appliance(hostname).udi)

    def now(self) -> datetime:
        self.lab.refresh_from_db()
        return lab_now(self.lab)

    def expect(self, hostname: str, **fields) -> Appliance:
        appliance = self.appliance(hostname)
        for name, wanted in fields.items():
            got = getattr(appliance, name)
            if got != wanted:
                reason = appliance.registration_error or appliance.last_auth_reason
                raise BuildError(f"{hostname}: {name} is {got!r}, expected {wanted!r}. {reason}".strip())
        return appliance

    # --- time and faults -----------------------------------------------------------------------
    def freeze(self) -> None:
        clock_freeze(lab=self.lab)

    def advance(self, *, days: float = 0, hours: float = 0) -> None:
        self.lab.refresh_from_db()
        lab_advance(lab=self.lab, to=lab_now(self.lab) + timedelta(days=days, hours=hours))
        self.lab.refresh_from_db()

    def fault(self, fault: Fault, value: bool | int = True) -> None:
        fault_set(lab=self.lab, fault=fault, value=value)

    def skew(self, hostname: str, minutes: int) -> None:
        lab_faults.clock_skew_set(appliance=self.appliance(hostname), minutes=minutes, actor=ACTOR)

    def shortage(self, *, code: str, quantity: int, va: str = "ESA", to: str = "Lab", product: str = "ESA") -> None:
        lab_faults.license_shortage(
            source=self.va(va), target=self.va(to), tag=_tag(product, code), quantity=quantity, actor=ACTOR,
            now=self.now(),
        )  # fmt: skip

    # --- appliance -----------------------------------------------------------------------------
    def enable(self, hostname: str, *, all_in_cluster: bool = False) -> None:
        appliance = self.appliance(hostname)
        now = appliance_now(appliance)
        targets = gw.sl_enable(appliance=appliance, user=None, now=now, all_in_cluster=all_in_cluster)
        for target in targets:
            gw.changes_commit(appliance=target, user=None, role=GatewayRole.ADMINISTRATOR, now=now)

    def transport_gateway(self, hostname: str, url: str | None = None) -> str:
        url = url or settings.CSSM_BASE_URL.rstrip("/") + GATEWAY_PATH
        appliance = self.appliance(hostname)
        now = appliance_now(appliance)
        gw.transport_stage(appliance=appliance, mode=TransportMode.GATEWAY, url=url, user=None, now=now)
        gw.changes_commit(appliance=appliance, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
        return url

    def register(self, hostname: str, token: str, *, force: bool = False) -> Appliance:
        appliance = self.appliance(hostname)
        with celery_inline():
            gw.agent_register(appliance=appliance, token=token, force=force, now=appliance_now(appliance), actor=ACTOR)
        return self.appliance(hostname)

    def request_licenses(self, hostname: str, codes: set[str]) -> None:
        appliance = self.appliance(hostname)
        with celery_inline():
            gw.licenses_submit(appliance=appliance, requested=codes, now=appliance_now(appliance), actor=ACTOR)

    def remove_from_portal(self, hostname: str) -> None:
        cssm.instance_remove(instance=self.instance(hostname), actor="sa-admin", now=self.now())

    def reservation_mode(self, hostname: str) -> None:
        appliance = self.appliance(hostname)
        gw.registration_mode_set(
            appliance=appliance, mode=RegistrationMode.LICENSE_RESERVATION, now=appliance_now(appliance), actor=ACTOR
        )

    def request_code(self, hostname: str) -> str:
        appliance = self.appliance(hostname)
        return gw.reservation_request_code(appliance=appliance, now=appliance_now(appliance), actor=ACTOR)

    def install(self, hostname: str, code: str) -> str:
        appliance = self.appliance(hostname)
        return gw.reservation_install(appliance=appliance, code=code, now=appliance_now(appliance), actor=ACTOR)

    def reauthorize(self, hostname: str, code: str) -> str:
        appliance = self.appliance(hostname)
        return gw.reservation_reauthorize(appliance=appliance, code=code, now=appliance_now(appliance), actor=ACTOR)

    def airgap(self, hostname: str, *, source: str) -> None:
        info = gw.vlinfo(appliance=self.appliance(source))
        appliance = self.appliance(hostname)
        gw.airgap_apply(
            appliance=appliance, vln=info["vln"], certificate=info["certificate"], key=info["key"],
            now=appliance_now(appliance), actor=ACTOR,
        )  # fmt: skip

    # --- portal --------------------------------------------------------------------------------
    def token(self, *, va: str = "ESA", expire_days: int = 30, max_uses: int | None = None,
              description: str = "Scenario", domain: str = "example.com",
              export_controlled: bool = True) -> str:  # fmt: skip
        # The guide's step 2 checks "Allow export-controlled functionality" (esa1's PXE Encryption needs it).
        token = cssm.token_create(
            va=self.va(va, domain), actor="sa-admin", description=description, expire_days=expire_days,
            max_uses=max_uses, export_controlled=export_controlled, now=self.now(),
        )  # fmt: skip
        return token.value

    def revoke(self, value: str) -> None:
        lab_faults.token_revoke_behind_back(
            token=RegistrationToken.objects.get(value=value, virtual_account__smart_account__lab=self.lab),
            now=self.now(),
        )

    def reserve(self, hostname: str, request_code: str, *, permanent: bool = False,
                quantities: dict[str, int] | None = None, va: str = "ESA") -> str:  # fmt: skip
        product = self.appliance(hostname).product
        tags = {_tag(product, code): n for code, n in (quantities or {}).items()}
        reservation = cssm.reservation_authorize(
            va=self.va(va), request_code=request_code, reservation_type="PERMANENT" if permanent else "SPECIFIC",
            quantities=tags, actor="sa-admin", now=self.now(),
        )  # fmt: skip
        return reservation.authorization_code

    def publish_agreement(self, summary: str) -> None:
        """Cisco publishes an updated Smart Software Licensing Agreement (the lab page's action)."""
        agreements.agreement_publish(lab=self.lab, summary=summary, text="", actor="admin", now=self.now())

    def satellite_file_sync_upload(self, name: str) -> None:
        """The admin uploads the synchronization file the satellite exported (On-Prem Accounts)."""
        satellite = SatelliteInstance.objects.select_related("smart_account__lab").get(
            smart_account__lab=self.lab, name=name
        )
        _, text = satellites.sync_request_file(satellite=satellite, now=self.now())
        satellites.sync_file_upload(smart_account=satellite.smart_account, text=text, actor="sa-admin", now=self.now())

    def reservation_update(self, hostname: str, quantities: dict[str, int]) -> str:
        product = self.appliance(hostname).product
        reservation = cssm.reservation_update(
            instance=self.instance(hostname), quantities={_tag(product, c): n for c, n in quantities.items()},
            actor="sa-admin", now=self.now(),
        )  # fmt: skip
        return reservation.pending_authorization_code


def _tag(product: str, code: str) -> str:
    for lic in licenses_for(product):
        if lic.code == code:
            return lic.entitlement_tag
    raise BuildError(f"No {product} licence with code {code!r}.")
