"""The Smart Agent batch endpoint (docs/protocol.md, Batches): many signed
messages of one lab in one HTTP request.

Every appliance of a lab lives in this one process, and the lab's sweep renews
hundreds of them at once; one request per appliance would cost a round trip
and ~30 queries each. A batch carries each appliance's own envelope, signed by
its own key and checked alone, and answers each exactly as the single endpoint
would have, with the same side effects — but with bulk reads and writes: the
instances loaded in one query, each distinct certificate checked against the
lab CA once, the renewals authorized together (services.instances_authorize),
the instances' last contact and nonces written in one UPDATE, the refusal
events in one INSERT."""

from __future__ import annotations

import json
import time
from datetime import datetime

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from cssm_portal import agent_api, services
from cssm_portal.models import ProductInstance
from cssm_portal.services import AgentRefusal
from licensing_core.bulk import update_each
from licensing_core.clock import lab_now
from licensing_core.context import request_id_var
from licensing_core.faults import cssm_delay_seconds
from licensing_core.models import Event, EventSide, Lab
from licensing_core.trust import lab_trust

MAX_BATCH_BODY = 16 * 1024 * 1024
MAX_MESSAGES = 1000
TYPES = ("authorize", "renew_id")


def _error(refusal: AgentRefusal) -> dict:
    return {"status": "error", "code": refusal.code, "message": refusal.message}


def _parse_batch(request) -> dict:
    batch = agent_api._parse_json(request, max_body=MAX_BATCH_BODY, too_large="The batch is larger than 16 MiB.")
    if batch.get("protocol") != agent_api.PROTOCOL:
        raise agent_api._bad(f"Unsupported protocol; expected {agent_api.PROTOCOL}.")
    agent_api._str(batch, "lab", max_len=60)
    messages = batch.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise agent_api._bad(f"messages must be a list of 1 to {MAX_MESSAGES} envelopes.")
    return batch


@login_not_required
@csrf_exempt
@require_POST
def smart_agent_batch_endpoint(request):
    try:
        batch = _parse_batch(request)
    except AgentRefusal as refusal:
        return agent_api._refuse(refusal.code, refusal.message, refusal.status)
    lab = Lab.objects.select_related("trust").filter(slug=batch["lab"]).first()  # the CA with the lab (lab_trust)
    if lab is None:
        return agent_api._refuse("lab_not_found", f"There is no lab named {batch['lab']}.", 404)
    # Fault injection (CSSM slow) holds the whole batch back once, before any work.
    delay = cssm_delay_seconds(lab)
    if delay:
        time.sleep(delay)
    now = lab_now(lab)
    return JsonResponse({"status": "ok", "answers": batch_process(lab=lab, messages=batch["messages"], now=now)})


def _envelope(message, lab: Lab) -> dict:
    """The single endpoint's checks of one envelope, plus the batch's own."""
    if not isinstance(message, dict):
        raise agent_api._bad("The message must be a JSON object.")
    if len(json.dumps(message, separators=(",", ":"))) > agent_api.MAX_BODY:
        raise AgentRefusal("bad_request", "The message is larger than 64 KiB.", 413)
    envelope = agent_api.check_envelope(message)
    if envelope["lab"] != lab.slug:
        raise agent_api._bad("Every message of a batch must be for the batch's lab.")
    if envelope["type"] not in TYPES:
        raise agent_api._bad("Only authorize and renew_id messages can be sent in a batch.")
    return envelope


def _renewed_alerts(instances: list[ProductInstance], now: datetime) -> None:
    """The instance alerts of the ID renewals, once their last contact is written."""
    by_account: dict[int, tuple] = {}
    for inst in instances:
        sa = inst.virtual_account.smart_account
        by_account.setdefault(sa.pk, (sa, services.Scope()))[1].piids.add(str(inst.piid))
    for sa, scope in by_account.values():
        services.alerts_refresh_scope(smart_account=sa, scope=scope, now=now)


@transaction.atomic
def batch_process(*, lab: Lab, messages: list, now: datetime) -> list[dict]:
    """One answer per message, in order, each what the single endpoint answers
    for that message alone. Envelope-shape refusals write no event (as on the
    single endpoint); every later refusal writes its `cssm.agent.refused` row."""
    answers: list[dict | None] = [None] * len(messages)
    refused: dict[int, Event] = {}  # by message: written in message order, as one by one

    def refuse(i: int, envelope: dict, refusal: AgentRefusal) -> None:
        answers[i] = _error(refusal)
        fields = agent_api.refused_event(envelope, refusal)
        refused[i] = Event(lab=lab, at=now, side=EventSide.CSSM, request_id=request_id_var.get(), **fields)

    envelopes: dict[int, dict] = {}
    for i, message in enumerate(messages):
        try:
            envelope = _envelope(message, lab)
        except AgentRefusal as refusal:
            answers[i] = _error(refusal)
            continue
        try:
            agent_api.check_clock(envelope, now)
        except AgentRefusal as refusal:
            refuse(i, envelope, refusal)
            continue
        envelopes[i] = envelope
    instances: dict[str, ProductInstance] = {}
    if envelopes:
        for inst in ProductInstance.objects.select_related("virtual_account__smart_account").filter(
            lab=lab, udi__in={e["udi"] for e in envelopes.values()}
        ):
            inst.lab = lab  # the batch's lab row: an ID renewal reads instance.lab, a query each otherwise
            instances[inst.udi] = inst
    ca_cert_pem = bytes(lab_trust(lab=lab, now=now).ca_cert_pem) if envelopes else b""
    checked: dict = {}
    touched: dict[int, ProductInstance] = {}
    id_renewals: list[tuple[int, ProductInstance, str]] = []
    renewals: list[tuple[int, ProductInstance, list[tuple[str, int]]]] = []
    for i, envelope in envelopes.items():
        instance = instances.get(envelope["udi"])
        try:
            agent_api.verify(instance=instance, envelope=envelope, ca_cert_pem=ca_cert_pem, now=now, checked=checked)
            # Last contact and the nonce count from here, as on the single endpoint
            # (a message refused for its body below has still been received).
            instance.recent_nonces = (list(instance.recent_nonces or []) + [envelope["nonce"]])[-50:]
            instance.last_contact = now
            touched[instance.pk] = instance
            if envelope["type"] == "renew_id":
                id_renewals.append((i, instance, agent_api.renew_id_csr(envelope["body"])))
            else:
                renewals.append((i, instance, agent_api.usage_rows(envelope["body"])))
        except AgentRefusal as refusal:
            refuse(i, envelope, refusal)
    renewed_ids: set[int] = set()
    results = services.instances_renew_id(items=[(inst, csr) for _, inst, csr in id_renewals], now=now)
    for (i, instance, _), result in zip(id_renewals, results, strict=True):
        if isinstance(result, AgentRefusal):
            refuse(i, envelopes[i], result)
        else:
            answers[i] = {"status": "ok", **agent_api.renewed_id(*result)}
            renewed_ids.add(instance.pk)
    if touched:
        # One UPDATE ... FROM (VALUES ...) per chunk: bulk_update's CASE per row was most of a batch's cost.
        update_each(ProductInstance, list(touched.values()), ["last_contact", "recent_nonces"])
    _renewed_alerts([touched[pk] for pk in renewed_ids], now)
    licenses = services.instances_authorize(items=[(inst, usage) for _, inst, usage in renewals], now=now)
    for (i, _, _), answer in zip(renewals, licenses, strict=True):
        answers[i] = {"status": "ok", **agent_api.authorized(answer, now)}
    Event.objects.bulk_create([refused[i] for i in sorted(refused)])
    return answers
