"""The Smart Agent endpoint (docs/protocol.md): one URL, JSON envelopes."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from cssm_portal import services
from cssm_portal.models import ProductInstance
from cssm_portal.services import AgentRefusal
from licensing_core import catalogue, pki, schedules
from licensing_core.clock import lab_now
from licensing_core.events import event_record
from licensing_core.faults import cssm_delay_seconds
from licensing_core.models import EventSide, Lab
from licensing_core.trust import lab_trust

PROTOCOL = "smart-agent/1"
MAX_BODY = 64 * 1024
TYPES = ("register", "renew_id", "authorize", "deregister", "dlc_deposit")
_NONCE_RE = re.compile(r"[0-9a-f]{32}")


def _refuse(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"status": "error", "code": code, "message": message}, status=status)


def _bad(message: str) -> AgentRefusal:
    return AgentRefusal("bad_request", message, 400)


def _str(data: dict, name: str, *, max_len: int = 4096, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_len:
        raise _bad(f"The field {name} is missing or is not a text.")
    return value


def canonical(envelope: dict) -> bytes:
    """The bytes a signature covers: every field but the signature, canonical JSON."""
    unsigned = {k: v for k, v in envelope.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def _parse_json(request, *, max_body: int, too_large: str):
    # Read the stream, not request.body: a batch may exceed DATA_UPLOAD_MAX_MEMORY_SIZE.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    raw = b"" if declared > max_body else request.read(max_body + 1)
    if declared > max_body or len(raw) > max_body:
        raise AgentRefusal("bad_request", too_large, 413)
    if request.content_type != "application/json":
        raise _bad("The message must be sent as application/json.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _bad("The message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise _bad("The message must be a JSON object.")
    return data


def _parse_envelope(request) -> dict:
    return check_envelope(_parse_json(request, max_body=MAX_BODY, too_large="The message is larger than 64 KiB."))


def check_envelope(envelope: dict) -> dict:
    """Check an envelope's fields (docs/protocol.md); adds the parsed `_sent_at`."""
    if envelope.get("protocol") != PROTOCOL:
        raise _bad(f"Unsupported protocol; expected {PROTOCOL}.")
    _str(envelope, "lab", max_len=60)
    if envelope.get("type") not in TYPES:
        raise _bad("Unknown message type.")
    _str(envelope, "udi", max_len=200)
    if not _NONCE_RE.fullmatch(str(envelope.get("nonce", ""))):
        raise _bad("The nonce must be 32 hexadecimal characters.")
    if not isinstance(envelope.get("body"), dict):
        raise _bad("The body must be a JSON object.")
    try:
        sent_at = datetime.fromisoformat(_str(envelope, "sent_at", max_len=40))
    except ValueError:
        raise _bad("sent_at must be an ISO 8601 date and time.") from None
    if sent_at.tzinfo is None:
        raise _bad("sent_at must include a time zone.")
    envelope["_sent_at"] = sent_at
    return envelope


@login_not_required
@csrf_exempt
@require_POST
def smart_agent_endpoint(request):
    try:
        envelope = _parse_envelope(request)
    except AgentRefusal as refusal:
        return _refuse(refusal.code, refusal.message, refusal.status)
    # The trust material with the lab: every message needs the CA (lab_trust).
    lab = Lab.objects.select_related("trust").filter(slug=envelope["lab"]).first()
    if lab is None:
        return _refuse("lab_not_found", f"There is no lab named {envelope['lab']}.", 404)
    # Fault injection (CSSM slow): hold the answer back, before doing anything,
    # so an agent whose timeout fires first leaves nothing half-done here.
    delay = cssm_delay_seconds(lab)
    if delay:
        time.sleep(delay)
    now = lab_now(lab)
    try:
        return JsonResponse({"status": "ok", **_dispatch(lab=lab, envelope=envelope, now=now)})
    except AgentRefusal as refusal:
        event_record(lab=lab, at=now, side=EventSide.CSSM, **refused_event(envelope, refusal))
        return _refuse(refusal.code, refusal.message, refusal.status)


def refused_event(envelope: dict, refusal: AgentRefusal) -> dict:
    """The fields of the Event Log row of a refused message."""
    return {
        "kind": "cssm.agent.refused",
        "message": f"{envelope['type']} from {envelope['udi']} refused ({refusal.code}): {refusal.message}",
        "subject_name": envelope["udi"][:255],
    }


def check_clock(envelope: dict, now: datetime) -> None:
    skew = abs(envelope["_sent_at"] - now)
    if skew > schedules.CLOCK_SKEW_TOLERANCE:
        minutes = int(skew.total_seconds() // 60)
        raise AgentRefusal(
            "clock_out_of_sync",
            f"The product's clock differs from Smart Software Manager time by {minutes} minutes "
            f"(at most {int(schedules.CLOCK_SKEW_TOLERANCE.total_seconds() // 60)} allowed). Correct the time "
            "settings (NTP) and try again.",
            403,
        )


def _dispatch(*, lab: Lab, envelope: dict, now: datetime) -> dict:
    check_clock(envelope, now)
    kind, body, udi = envelope["type"], envelope["body"], envelope["udi"]
    if kind == "register":
        return _register(lab=lab, envelope=envelope, body=body, udi=udi, now=now)
    instance = _authenticate(lab=lab, envelope=envelope, now=now)
    if kind == "renew_id":
        return renew_id(instance=instance, body=body, now=now)
    if kind == "authorize":
        licenses = services.instance_authorize(instance=instance, usage=usage_rows(body), now=now)
        return authorized(licenses, now)
    if kind == "deregister":
        services.instance_deregister(instance=instance, now=now)
        return {}
    # dlc_deposit
    items = body.get("licenses")
    if not isinstance(items, list) or len(items) > 100:
        raise _bad("licenses must be a list of {tag, count, classic_feature}.")
    clean = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("tag"), str):
            raise _bad("Every license needs a tag, a count and a classic_feature.")
        count = item.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
            raise _bad("Every license count must be a whole number of 1 or more.")
        clean.append({"tag": item["tag"], "count": count, "classic_feature": str(item.get("classic_feature", ""))})
    deposited = services.dlc_deposit(instance=instance, licenses=clean, now=now)
    return {"conversion": "success", "deposited": deposited}


def renew_id(*, instance: ProductInstance, body: dict, now: datetime) -> dict:
    cert, expires = services.instance_renew_id(instance=instance, csr_pem=renew_id_csr(body), now=now)
    return renewed_id(cert, expires)


def renew_id_csr(body: dict) -> str:
    """The CSR of a renew_id body."""
    return _str(body, "csr", max_len=8000)


def renewed_id(cert: str, expires: datetime) -> dict:
    """The answer to an accepted renew_id message."""
    return {"certificate": cert, "registration_expires": expires.isoformat()}


def usage_rows(body: dict) -> list[tuple[str, int]]:
    """The (tag, count) pairs of an authorize body."""
    usage = body.get("usage")
    if not isinstance(usage, list) or len(usage) > 100:
        raise _bad("usage must be a list of {tag, count}.")
    rows = []
    for item in usage:
        if not isinstance(item, dict) or not isinstance(item.get("tag"), str):
            raise _bad("Every usage entry needs a tag and a count.")
        count = item.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
            raise _bad("Every usage count must be a whole number of 0 or more.")
        rows.append((item["tag"], count))
    return rows


def authorized(licenses: list[dict], now: datetime) -> dict:
    """The answer to an accepted authorize message."""
    return {
        "authorized_at": now.isoformat(),
        "expires_at": (now + schedules.AUTH_EXPIRY).isoformat(),
        "next_renewal": (now + schedules.AUTH_RENEW_INTERVAL).isoformat(),
        "licenses": licenses,
    }


def _register(*, lab: Lab, envelope: dict, body: dict, udi: str, now: datetime) -> dict:
    pid, serial = _str(body, "pid", max_len=40), _str(body, "serial", max_len=80)
    try:
        expected = catalogue.make_udi(pid, serial)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    if expected != udi:
        raise _bad("The UDI does not match the product ID and serial number.")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise _bad("force must be true or false.")
    registered = services.instance_register(
        lab=lab,
        token_text=_str(body, "token", max_len=2000),
        csr_pem=_str(body, "csr", max_len=8000),
        udi=udi,
        hostname=_str(body, "hostname", max_len=255),
        product=_str(body, "product", max_len=8),
        pid=pid,
        serial=serial,
        software_version=_str(body, "software_version", max_len=80, required=False),
        agent_version=_str(body, "agent_version", max_len=40, required=False),
        force=force,
        nonce=envelope["nonce"],
        now=now,
    )
    inst = registered.instance
    va = inst.virtual_account
    return {
        "certificate": registered.certificate,
        "ca_certificate": registered.ca_certificate,
        "instance_id": str(inst.piid),
        "smart_account": va.smart_account.name,
        "virtual_account": va.name,
        "export_controlled": inst.export_controlled,
        "registration_expires": inst.cert_expires_at.isoformat(),
    }


def _authenticate(*, lab: Lab, envelope: dict, now: datetime) -> ProductInstance:
    instance = (
        ProductInstance.objects.select_related("virtual_account__smart_account")
        .filter(lab=lab, udi=envelope["udi"])
        .first()
    )
    trust = lab_trust(lab=lab, now=now)
    verify(instance=instance, envelope=envelope, ca_cert_pem=bytes(trust.ca_cert_pem), now=now)
    if envelope["type"] != "deregister":
        services.instance_touch(instance=instance, nonce=envelope["nonce"], now=now)
    return instance


def verify(
    *, instance: ProductInstance | None, envelope: dict, ca_cert_pem: bytes, now: datetime, checked: dict | None = None
) -> None:
    """Refuse a signed message unless it comes from a known instance whose ID
    certificate the lab CA issued and is valid now, is signed by that
    certificate's key, and carries a nonce not seen before. `checked` caches
    the certificate check per certificate text (the batch endpoint)."""
    if instance is None or not instance.certificate_pem:
        raise AgentRefusal(
            "unknown_instance",
            "The product instance is not registered with Smart Software Manager (it may have been removed). "
            "Register it again.",
            404,
        )
    signature = envelope.get("signature")
    if not isinstance(signature, str) or not signature:
        raise AgentRefusal("signature_invalid", "The message is not signed.", 403)
    checked = {} if checked is None else checked
    if instance.certificate_pem not in checked:
        try:
            pki.verify_certificate(ca_cert_pem=ca_cert_pem, cert_pem=instance.certificate_pem.encode(), now=now)
            checked[instance.certificate_pem] = None
        except pki.PkiError as exc:
            if "expired" in exc.reason:
                refusal = AgentRefusal("certificate_expired", exc.reason + " Register the product again.", 403)
            else:
                refusal = AgentRefusal("signature_invalid", exc.reason, 403)
            checked[instance.certificate_pem] = refusal
    if checked[instance.certificate_pem] is not None:
        raise checked[instance.certificate_pem]
    unsigned = {k: v for k, v in envelope.items() if k != "_sent_at"}
    try:
        pki.verify_signature(cert_pem=instance.certificate_pem.encode(), data=canonical(unsigned), signature=signature)
    except pki.PkiError as exc:
        raise AgentRefusal("signature_invalid", exc.reason, 403) from None
    if envelope["nonce"] in (instance.recent_nonces or []):
        raise AgentRefusal("replayed", "This message was already received (repeated nonce).", 409)
