"""The Smart Agent's HTTP client (docs/protocol.md): one envelope, one POST."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

import requests
from django.conf import settings

from gateway_ui.models import Appliance, TransportMode
from licensing_core import pki
from licensing_core.context import request_id_var
from licensing_core.faults import Fault, fault_active
from licensing_core.models import Lab

PROTOCOL = "smart-agent/1"
DIRECT_PATH = "/licservice/license"

# Fallback texts when the CSSM answers a refusal without a message.
REFUSAL_MESSAGES = {
    "bad_request": "Smart Software Manager refused the request as malformed.",
    "lab_not_found": "Smart Software Manager does not know this lab.",
    "token_invalid": "The token is not a valid registration token.",
    "token_expired": "The registration token has expired.",
    "token_revoked": "The registration token has been revoked.",
    "token_used_up": "The registration token has reached its maximum number of uses.",
    "already_registered": (
        "A product instance with this UDI is already registered. Check "
        "Reregister this product instance if it is already registered and try again."
    ),
    "clock_out_of_sync": (
        "The appliance clock is out of sync with Smart Software Manager. Synchronize the clock and try again."
    ),
    "unknown_instance": "Smart Software Manager does not know this product instance. Register the product again.",
    "signature_invalid": "Smart Software Manager could not verify the request signature.",
    "certificate_expired": "The ID certificate has expired. Register the product again.",
    "replayed": "Smart Software Manager refused a repeated message.",
    "dlc_failed": "The license conversion failed.",
}


class AgentError(Exception):
    """A failed exchange; ``reason`` is what the page and the alert show."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def transport_url(appliance: Appliance) -> str:
    if appliance.transport_mode == TransportMode.GATEWAY and appliance.transport_url:
        return appliance.transport_url
    return settings.CSSM_BASE_URL.rstrip("/") + DIRECT_PATH


def _proxies(appliance: Appliance) -> dict[str, str] | None:
    if not appliance.proxy_host:
        return None
    auth = ""
    if appliance.proxy_username:
        auth = f"{requests.utils.quote(appliance.proxy_username)}:{requests.utils.quote(appliance.proxy_password)}@"
    url = f"http://{auth}{appliance.proxy_host}:{appliance.proxy_port or 80}"
    return {"http": url, "https": url}


def _injected_unreachable(appliance: Appliance) -> bool:
    """The lab's fault switches (licensing_core.faults), read fresh: a lab
    manager may have flipped one since this appliance row was loaded. CSSM
    unreachable cuts Direct transport; transport gateway down cuts the
    Transport Gateway transport. Either fails like a refused connection, before
    anything is sent."""
    lab = Lab.objects.only("faults").filter(pk=appliance.lab_id).first()
    if lab is None:
        return False
    if appliance.transport_mode == TransportMode.GATEWAY and appliance.transport_url:
        return fault_active(lab, Fault.TRANSPORT_GATEWAY_DOWN)
    return fault_active(lab, Fault.CSSM_UNREACHABLE)


def canonical(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def envelope_build(*, appliance: Appliance, kind: str, body: dict, now: datetime, sign: bool) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "protocol": PROTOCOL,
        "lab": appliance.lab.slug,
        "type": kind,
        "udi": appliance.udi,
        "sent_at": now.isoformat(),
        "nonce": secrets.token_hex(16),
        "body": body,
    }
    if sign:
        envelope["signature"] = pki.sign(key_pem=appliance.device_key_pem.encode(), data=canonical(envelope))
    return envelope


def exchange(*, appliance: Appliance, kind: str, body: dict, now: datetime) -> dict[str, Any]:
    """Send one message and return the 200 answer, or raise AgentError."""
    envelope = envelope_build(appliance=appliance, kind=kind, body=body, now=now, sign=kind != "register")
    url = transport_url(appliance)
    if _injected_unreachable(appliance):
        raise AgentError("unreachable", f"Unable to reach Smart Software Manager at {url}.")
    headers = {"Content-Type": "application/json"}
    request_id = request_id_var.get()
    if request_id is not None:
        headers["X-Request-ID"] = str(request_id)
    try:
        response = requests.post(
            url,
            data=json.dumps(envelope),
            headers=headers,
            timeout=settings.SMART_AGENT_HTTP_TIMEOUT,
            proxies=_proxies(appliance),
            allow_redirects=False,
        )
    except requests.Timeout:
        raise AgentError("unreachable", f"Communication with Smart Software Manager timed out ({url}).") from None
    except requests.RequestException:
        raise AgentError("unreachable", f"Unable to reach Smart Software Manager at {url}.") from None
    if response.status_code >= 500:
        raise AgentError(
            "unreachable", f"Smart Software Manager at {url} is unavailable (HTTP {response.status_code})."
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise AgentError(
            "unreachable", f"{url} did not answer as a Smart Software Manager (HTTP {response.status_code})."
        )
    if response.status_code == 200 and data.get("status") == "ok":
        return data
    code = str(data.get("code") or "bad_request")
    message = data.get("message") if isinstance(data.get("message"), str) else ""
    raise AgentError(code, message or REFUSAL_MESSAGES.get(code, f"Smart Software Manager refused: {code}."))
