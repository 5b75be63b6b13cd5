"""Export a lab as one versioned JSON document, and import one into a new lab.

The document holds the lab (clock, faults) and every row of every model that
belongs to it — accounts, tokens, licences, instances, reservations, appliance
state, alerts, events, job runs, the mailbox, the lab's trust material —
found by following foreign keys to the Lab model, so a model added later is
exported without changes here. Rows keep their values; ids are remapped on
import. Values that are unique across the whole database (product instance
ids, token ids and the token text that embeds them, mail dedupe keys) get new
values in the imported lab, replaced consistently wherever they appear.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import deque
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils.duration import duration_iso_string

from licensing_core import codes
from licensing_core.models import Lab

FORMAT = "smart-licensing-lab"
VERSION = 1
APPS = ("licensing_core", "cssm_portal", "gateway_ui")
LAB_FIELDS = ("name", "description", "clock_offset", "clock_frozen_at", "clock_floor", "faults")
# Plain integer columns that hold another row's id (no foreign key on purpose).
ID_COLUMNS = {
    "licensing_core.Event": {
        "appliance_id": "gateway_ui.Appliance",
        "smart_account_id": "cssm_portal.SmartAccount",
        "virtual_account_id": "cssm_portal.VirtualAccount",
        "product_instance_id": "cssm_portal.ProductInstance",
    },
}

# Dedupe keys that embed a row id as their second ":"-separated part
# (cssm_portal.services.alerts_desired: "expiring:<virtual account id>:<tag>:...").
KEYS_WITH_IDS = {("cssm_portal.CssmAlert", "dedupe_key"): "cssm_portal.VirtualAccount"}


def _remap_key(key: str, id_map: dict[int, int]) -> str:
    parts = key.split(":")
    if len(parts) > 2 and parts[1].isdigit() and int(parts[1]) in id_map:
        parts[1] = str(id_map[int(parts[1])])
    return ":".join(parts)


class TransferError(ValueError):
    """A file that cannot be imported, with a sentence for the user."""


# --- which models, in which order ----------------------------------------------------------------


def _lab_paths() -> dict[type[models.Model], str]:
    """For every model that belongs to a lab, the lookup from it to the Lab."""
    candidates = [m for label in APPS for m in apps.get_app_config(label).get_models() if m is not Lab]
    paths: dict[type[models.Model], str] = {}
    queue = deque()
    for model in candidates:
        for f in model._meta.concrete_fields:
            if f.is_relation and f.related_model is Lab:
                paths[model] = f.name
                queue.append(model)
                break
    while queue:
        parent = queue.popleft()
        for model in candidates:
            if model in paths:
                continue
            for f in model._meta.concrete_fields:
                if f.is_relation and f.related_model is parent and not f.null:
                    paths[model] = f"{f.name}__{paths[parent]}"
                    queue.append(model)
                    break
    return paths


def _ordered(paths: dict) -> list[type[models.Model]]:
    """Models with every model they point to first."""
    ordered: list = []
    remaining = set(paths)
    while remaining:
        ready = sorted(
            (
                m
                for m in remaining
                if all(
                    f.related_model not in remaining or f.related_model is m
                    for f in m._meta.concrete_fields
                    if f.is_relation
                )
            ),
            key=lambda m: m._meta.label,
        )
        if not ready:
            raise RuntimeError("Circular references between lab models: " + ", ".join(m._meta.label for m in remaining))
        ordered += ready
        remaining -= set(ready)
    return ordered


# --- export ----------------------------------------------------------------------------------------


def _dump(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_iso_string(value)
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    return value


def lab_export(*, lab: Lab) -> dict:
    User = get_user_model()
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "lab": {"slug": lab.slug, **{name: _dump(getattr(lab, name)) for name in LAB_FIELDS}},
        "models": {},
    }
    users = dict(User.objects.values_list("pk", User.USERNAME_FIELD))
    paths = _lab_paths()
    for model in _ordered(paths):
        rows = []
        m2m = list(model._meta.many_to_many)
        queryset = model._default_manager.filter(**{paths[model]: lab}).order_by("pk")
        if m2m:
            queryset = queryset.prefetch_related(*(f.name for f in m2m))
        for obj in queryset:
            row: dict[str, Any] = {"id": obj.pk}
            for f in model._meta.concrete_fields:
                if f.primary_key:
                    continue
                value = getattr(obj, f.attname)
                if f.is_relation and f.related_model is User:
                    row[f.name] = {"user": users.get(value)} if value is not None else None
                else:
                    row[f.name] = _dump(value)
            for f in m2m:
                row[f.name] = sorted(o.pk for o in getattr(obj, f.name).all())
            rows.append(row)
        document["models"][model._meta.label] = rows
    return document


def lab_export_json(*, lab: Lab) -> str:
    return json.dumps(lab_export(lab=lab), indent=1, sort_keys=True, ensure_ascii=False)


# --- import ----------------------------------------------------------------------------------------


def document_parse(text: str | bytes) -> dict:
    """Read and check an export file; TransferError says what is wrong with it."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise TransferError("This file is not JSON, so it is not a lab export.") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TransferError(f'This file is not a Smart Licensing Lab export (it has no "format": "{FORMAT}").')
    version = document.get("version")
    if version != VERSION:
        raise TransferError(f"This file was written by format version {version}; this lab reads version {VERSION}.")
    if not isinstance(document.get("lab"), dict) or not isinstance(document.get("models"), dict):
        raise TransferError("This lab export is incomplete: it has no lab or no models section.")
    return document


def _load(field: models.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    if isinstance(field, models.JSONField):
        return value
    return field.to_python(value)


@transaction.atomic
def lab_import(*, document: dict, slug: str, name: str | None = None, manager=None) -> Lab:
    """Create lab `slug` from an export document (see document_parse)."""
    if Lab.objects.filter(slug=slug).exists():
        raise TransferError(f"A lab with the slug {slug!r} already exists; choose another.")
    User = get_user_model()
    source = document["lab"]
    lab = Lab(slug=slug)
    for field_name in LAB_FIELDS:
        if field_name in source:
            setattr(lab, field_name, _load(Lab._meta.get_field(field_name), source[field_name]))
    if name:
        lab.name = name
    lab.save()
    users = {u.get_username(): u.pk for u in User.objects.all()}
    paths = _lab_paths()
    by_label = {m._meta.label: m for m in paths}
    unknown = sorted(set(document["models"]) - set(by_label))
    if unknown:
        raise TransferError("This file holds data this lab does not know: " + ", ".join(unknown) + ".")
    ids: dict[str, dict[int, int]] = {"licensing_core.Lab": {}}
    replace: dict[str, str] = {}
    rows_by_label = {label: list(rows) for label, rows in document["models"].items()}
    _fresh_unique_values(rows_by_label, replace, lab=lab)
    for model in _ordered(paths):
        label = model._meta.label
        ids[label] = {}
        m2m_values = []
        objs = []
        old_ids = []
        for row in rows_by_label.get(label, []):
            obj = model()
            skip = False
            for f in model._meta.concrete_fields:
                if f.primary_key or f.name not in row:
                    continue
                value = row[f.name]
                if f.is_relation:
                    if f.related_model is Lab:
                        value = lab.pk
                    elif f.related_model is User:
                        value = users.get((value or {}).get("user")) if value else None
                        if value is None and not f.null:
                            skip = True  # a member the target database does not have
                            break
                    elif value is not None:
                        value = ids.get(f.related_model._meta.label, {}).get(value)
                        if value is None and not f.null:
                            skip = True
                            break
                    setattr(obj, f.attname, value)
                    continue
                value = _load(f, value)
                if isinstance(value, str) and replace:
                    value = _replace(value, replace)
                if (label, f.name) in KEYS_WITH_IDS and isinstance(value, str):
                    value = _remap_key(value, ids.get(KEYS_WITH_IDS[(label, f.name)], {}))
                column_targets = ID_COLUMNS.get(label, {})
                if f.name in column_targets and value is not None:
                    value = ids.get(column_targets[f.name], {}).get(value, value)
                setattr(obj, f.attname, value)
            if skip:
                continue
            objs.append(obj)
            old_ids.append(row["id"])
            m2m_values.append({f.name: row.get(f.name, []) for f in model._meta.many_to_many})
        for obj, old in zip(objs, old_ids, strict=True):
            _save_new(obj)
            ids[label][old] = obj.pk
        for obj, values in zip(objs, m2m_values, strict=True):
            for field_name, targets in values.items():
                target = model._meta.get_field(field_name).related_model._meta.label
                getattr(obj, field_name).set([ids[target][t] for t in targets if t in ids.get(target, {})])
        _restore_auto_dates(model, objs, rows_by_label.get(label, []), old_ids)
    from cssm_portal.models import VirtualAccount
    from cssm_portal.services import pools_recount

    # Licences in use are counted from the imported usage rows (documents written
    # before LicensePool.in_use existed carry none).
    pools_recount(virtual_accounts=VirtualAccount.objects.filter(smart_account__lab=lab))
    if manager is not None:
        from licensing_core.models import LabMembership
        from licensing_core.roles import GatewayRole

        LabMembership.objects.update_or_create(
            lab=lab, user=manager, defaults={"is_manager": True, "gateway_role": GatewayRole.ADMINISTRATOR}
        )
    return lab


def _save_new(obj: models.Model) -> None:
    # Event.save refuses updates; a new row has no pk, so this is an insert.
    obj.save(force_insert=True)


def _restore_auto_dates(model, objs, rows, old_ids) -> None:
    auto = [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.DateTimeField | models.DateField) and (f.auto_now or f.auto_now_add)
    ]
    if not auto:
        return
    by_old = {row["id"]: row for row in rows}
    for obj, old in zip(objs, old_ids, strict=True):
        values = {f.attname: _load(f, by_old[old].get(f.name)) for f in auto if by_old[old].get(f.name)}
        if values:
            model._default_manager.filter(pk=obj.pk).update(**values)


def _replace(text: str, replace: dict[str, str]) -> str:
    for old, new in replace.items():
        if old in text:
            text = text.replace(old, new)
    return text


def _fresh_unique_values(rows_by_label: dict, replace: dict[str, str], *, lab: Lab) -> None:
    """New product instance ids, token ids (and token texts) and mail dedupe
    keys: they are unique across the database, and the original lab keeps its own."""
    for row in rows_by_label.get("cssm_portal.ProductInstance", []):
        new = str(uuid.uuid4())
        replace[str(row["piid"])] = new
        row["piid"] = new
    trust_rows = rows_by_label.get("licensing_core.LabTrust", [])
    secret = base64.b64decode(trust_rows[0]["token_secret"]["base64"]) if trust_rows else None
    for row in rows_by_label.get("cssm_portal.RegistrationToken", []):
        new_id = str(uuid.uuid4())
        if secret is not None:
            try:
                issued = datetime.fromisoformat(row["created_at"])
                new_value = codes.token_generate(secret_key=secret, now=issued, token_id=new_id)
                replace[row["value"]] = new_value
                row["value"] = new_value
            except (KeyError, ValueError):
                pass
        row["token_id"] = new_id
    for row in rows_by_label.get("licensing_core.MailMessage", []):
        if row.get("dedupe_key"):
            row["dedupe_key"] = f"{row['dedupe_key']}|lab:{lab.slug}"
