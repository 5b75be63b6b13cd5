"""Bulk writing for the sweep (gateway_ui.sweeps): claims that say which rows
they won, updates grouped by value, and the deferred writes that let the
services' own rules run over many appliances and write their rows at once.

`writes_deferred(appliances)` makes the services' write helpers
(services._save, _row_save, _event, alert_raise) collect instead of
writing; `flush()` then writes what they collected — the appliance fields
that changed, the licence rows, the events, the alerts and their e-mail —
in a fixed number of queries. The rows are the ones the same calls write
one by one outside the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from gateway_ui.models import Appliance, ApplianceAlert, ApplianceLicense
from licensing_core.bulk import CHUNK, chunks, update_each
from licensing_core.models import Event

# Above this many distinct value sets, one UPDATE from a VALUES list beats
# one UPDATE per set.
MAX_VALUE_GROUPS = 8


def save_changes(model: type[Model], changes: Iterable[tuple[Model, dict[str, Any]]]) -> None:
    """Write `{field: value}` per object. Objects that get the same values
    share one UPDATE (a sweep at one instant gives most appliances the same
    new due times), so the query count follows the distinct outcomes, not
    the row count; past MAX_VALUE_GROUPS, one UPDATE per CHUNK writes every
    field named, each object's other fields as they stand on it (the
    callers' objects hold what is stored, besides these changes)."""
    groups: dict[tuple, tuple[dict[str, Any], list]] = {}
    objects, names = [], set()
    for obj, values in changes:
        if not values:
            continue
        objects.append(obj)
        names.update(values)
        try:
            key = tuple(sorted(values.items()))
            hash(key)
        except TypeError:  # a value that cannot be a group key (a list): a group of its own
            key = ("object", obj.pk)
        groups.setdefault(key, (values, []))[1].append(obj.pk)
    if len(groups) > MAX_VALUE_GROUPS:
        for obj, values in changes:
            for name, value in values.items():
                setattr(obj, name, value)
        update_each(model, objects, sorted(names))
        return
    for values, pks in groups.values():
        for part in chunks(pks):
            model.objects.filter(pk__in=part).update(**values)


def field_values(obj: Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if not f.primary_key}


@dataclass
class DeferredWrites:
    """What the services would have written, kept until `flush()`."""

    loaded: dict[int, dict[str, Any]]  # appliance pk -> its field values as read
    appliances: dict[int, Appliance] = field(default_factory=dict)
    rows: dict[int, tuple[ApplianceLicense, set[str]]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    alerts: list[tuple[Appliance, ApplianceAlert]] = field(default_factory=list)

    def appliance_saved(self, appliance: Appliance) -> None:
        self.appliances[appliance.pk] = appliance

    def row_saved(self, row: ApplianceLicense, fields: Iterable[str]) -> None:
        _, known = self.rows.setdefault(row.pk, (row, set()))
        known.update(fields)

    def flush(self) -> None:
        """Write everything collected; call inside the transaction that holds the appliances."""
        from gateway_ui.alert_mail import alert_mail_many

        changed = []
        for pk, appliance in self.appliances.items():
            before, now = self.loaded[pk], field_values(appliance)
            changed.append((appliance, {k: v for k, v in now.items() if v != before[k]}))
            self.loaded[pk] = now
        save_changes(Appliance, changed)
        save_changes(ApplianceLicense, [(row, {f: getattr(row, f) for f in fs}) for row, fs in self.rows.values()])
        Event.objects.bulk_create(self.events, batch_size=CHUNK)
        raised = self._new_alerts()
        ApplianceAlert.objects.bulk_create([alert for _, alert in raised], batch_size=CHUNK)
        alert_mail_many(raised)
        self.appliances, self.rows, self.events, self.alerts = {}, {}, [], []

    def _new_alerts(self) -> list[tuple[Appliance, ApplianceAlert]]:
        """The alerts to write: one per timer occurrence (dedupe_key), as the
        unique constraint keeps it when they are saved one by one."""
        keyed = [(a.pk, alert.dedupe_key) for a, alert in self.alerts if alert.dedupe_key is not None]
        seen = set()
        if keyed:
            seen = set(
                ApplianceAlert.objects.filter(
                    appliance_id__in={pk for pk, _ in keyed}, dedupe_key__in={k for _, k in keyed}
                ).values_list("appliance_id", "dedupe_key")
            )
        out = []
        for appliance, alert in self.alerts:
            if alert.dedupe_key is not None:
                if (appliance.pk, alert.dedupe_key) in seen:
                    continue
                seen.add((appliance.pk, alert.dedupe_key))
            out.append((appliance, alert))
        return out


_deferred: ContextVar[DeferredWrites | None] = ContextVar("gateway_deferred_writes", default=None)


def deferred() -> DeferredWrites | None:
    """The deferred writes in effect, or None (write at once)."""
    return _deferred.get()


@contextmanager
def writes_deferred(appliances: Iterable[Appliance]):
    """`with writes_deferred(appliances) as writes:` service calls on these
    appliances (read with their licence rows prefetched, so `licenses.all()`
    reads no rows) collect their writes; `writes.flush()` writes them."""
    writes = DeferredWrites(loaded={a.pk: field_values(a) for a in appliances})
    token = _deferred.set(writes)
    try:
        yield writes
    finally:
        _deferred.reset(token)
