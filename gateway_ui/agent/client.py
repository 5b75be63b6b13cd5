"""The Smart Agent's HTTP client (docs/protocol.md): one envelope, one POST; or, for the
sweep, many appliances' renewals in batch POSTs (`exchange_many`)."""

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


def _lab_faults(lab_id: int) -> Lab | None:
    """The lab with its fault switches (licensing_core.faults) read fresh: a
    lab manager may have flipped one since the appliance row was loaded."""
    return Lab.objects.only("faults").filter(pk=lab_id).first()


def _cut(lab: Lab | None, appliance: Appliance) -> bool:
    """CSSM unreachable cuts Direct transport; transport gateway down cuts the
    Transport Gateway transport. Either fails like a refused connection,
    before anything is sent."""
    if lab is None:
        return False
    if appliance.transport_mode == TransportMode.GATEWAY and appliance.transport_url:
        return fault_active(lab, Fault.TRANSPORT_GATEWAY_DOWN)
    return fault_active(lab, Fault.CSSM_UNREACHABLE)


def _injected_unreachable(appliance: Appliance) -> bool:
    return _cut(_lab_faults(appliance.lab_id), appliance)


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


def _unreachable(url: str) -> AgentError:
    return AgentError("unreachable", f"Unable to reach Smart Software Manager at {url}.")


def _post(url: str, payload: dict, *, shown_url: str, timeout, proxies) -> tuple[int, dict]:
    """POST JSON; the status and JSON object answered, or AgentError for a
    transport failure (reasons name `shown_url`, the URL the agent is set to use)."""
    headers = {"Content-Type": "application/json"}
    request_id = request_id_var.get()
    if request_id is not None:
        headers["X-Request-ID"] = str(request_id)
    try:
        response = requests.post(
            url,
            data=json.dumps(payload),
            headers=headers,
            timeout=timeout,
            proxies=proxies,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise AgentError("unreachable", f"Communication with Smart Software Manager timed out ({shown_url}).") from None
    except requests.RequestException:
        raise _unreachable(shown_url) from None
    if response.status_code >= 500:
        raise AgentError(
            "unreachable", f"Smart Software Manager at {shown_url} is unavailable (HTTP {response.status_code})."
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _not_cssm(shown_url, response.status_code)
    return response.status_code, data


def _not_cssm(url: str, status: int) -> AgentError:
    return AgentError("unreachable", f"{url} did not answer as a Smart Software Manager (HTTP {status}).")


def _answer(status: int, data: dict) -> dict:
    """The answer to one message: the data if accepted, else the refusal raised."""
    if status == 200 and data.get("status") == "ok":
        return data
    code = str(data.get("code") or "bad_request")
    message = data.get("message") if isinstance(data.get("message"), str) else ""
    raise AgentError(code, message or REFUSAL_MESSAGES.get(code, f"Smart Software Manager refused: {code}."))


def exchange(*, appliance: Appliance, kind: str, body: dict, now: datetime) -> dict[str, Any]:
    """Send one message and return the 200 answer, or raise AgentError."""
    envelope = envelope_build(appliance=appliance, kind=kind, body=body, now=now, sign=kind != "register")
    url = transport_url(appliance)
    if _injected_unreachable(appliance):
        raise _unreachable(url)
    status, data = _post(
        url, envelope, shown_url=url, timeout=settings.SMART_AGENT_HTTP_TIMEOUT, proxies=_proxies(appliance)
    )
    return _answer(status, data)


# --- Many appliances' messages in one POST -------------------------------------------------------

BATCH_PATH = "/licservice/license/batch"
BATCH_MAX = 1000
BATCH_KINDS = ("authorize", "renew_id")
# How long the agent waits for a batch: its timeout for one exchange plus
# this much per message (the CSSM handles each in milliseconds; this is the
# margin for a loaded one). A CSSM that does not answer at all costs the
# batch this long, as it would have cost the messages one timeout each.
BATCH_SECONDS_PER_MESSAGE = 0.25


def batchable(appliance: Appliance) -> bool:
    """Direct transport without a proxy: its messages can share a batch POST."""
    direct = not (appliance.transport_mode == TransportMode.GATEWAY and appliance.transport_url)
    return direct and not appliance.proxy_host


def batch_timeout(messages: int) -> tuple[float, float]:
    """(connect, read) timeout of a batch POST of this many messages."""
    timeout = settings.SMART_AGENT_HTTP_TIMEOUT
    return timeout, timeout + messages * BATCH_SECONDS_PER_MESSAGE


def exchange_many(messages: list[tuple[Appliance, str, dict, datetime]]) -> list[dict[str, Any] | AgentError]:
    """Send (appliance, kind, body, now) messages of one lab's `batchable`
    appliances, kinds in BATCH_KINDS, and return for each what `exchange`
    would have returned (the answer) or raised (the AgentError), in order.

    They go in batch POSTs of up to BATCH_MAX messages (docs/protocol.md),
    each envelope signed by its own device key. CSSM unreachable fails every
    message before anything is sent, as it fails a single exchange. CSSM
    slow is the caller's to honour: a batch would wait its delay once, where
    single exchanges each wait it against their own timeout (the sweep sends
    one by one while it is on)."""
    if not messages:
        return []
    labs = {appliance.lab_id for appliance, *_ in messages}
    if len(labs) != 1 or not all(batchable(a) and kind in BATCH_KINDS for a, kind, *_ in messages):
        raise ValueError("exchange_many takes authorize and renew_id messages of one lab, Direct without proxy.")
    lab = _lab_faults(labs.pop())
    envelopes = [
        envelope_build(appliance=a, kind=kind, body=body, now=now, sign=True) for a, kind, body, now in messages
    ]
    url = transport_url(messages[0][0])  # the URL the agents are set to use, for the reasons
    if _cut(lab, messages[0][0]):
        return [_unreachable(url) for _ in messages]
    batch_url = settings.CSSM_BASE_URL.rstrip("/") + BATCH_PATH
    slug = messages[0][0].lab.slug
    results: list[dict[str, Any] | AgentError] = []
    for start in range(0, len(envelopes), BATCH_MAX):
        part = envelopes[start : start + BATCH_MAX]
        payload = {"protocol": PROTOCOL, "lab": slug, "messages": part}
        try:
            status, data = _post(batch_url, payload, shown_url=url, timeout=batch_timeout(len(part)), proxies=None)
            _answer(status, data)  # a refusal of the whole batch is every message's
            answers = data.get("answers")
            if not isinstance(answers, list) or len(answers) != len(part):
                raise _not_cssm(url, status)
        except AgentError as exc:
            results += [AgentError(exc.code, exc.reason) for _ in part]
            continue
        for answer in answers:
            try:
                if not isinstance(answer, dict):
                    raise _not_cssm(url, status)
                results.append(_answer(200, answer))
            except AgentError as exc:
                results.append(exc)
    return results
