"""Writing the append-only event log."""

from datetime import datetime
from typing import Any

from licensing_core.context import request_id_var
from licensing_core.models import Event, EventSide, Lab


def event_build(
    *,
    lab: Lab,
    at: datetime,
    side: EventSide | str,
    kind: str,
    message: str,
    actor: str = "",
    appliance_id: int | None = None,
    smart_account_id: int | None = None,
    virtual_account_id: int | None = None,
    product_instance_id: int | None = None,
    subject_name: str = "",
    old: Any = None,
    new: Any = None,
) -> Event:
    """One event row, not yet saved (bulk writers save many with bulk_create).
    The current request id (if any) links it to the other rows the same
    action wrote, on either side of the exchange."""
    return Event(
        lab=lab,
        at=at,
        side=side,
        kind=kind,
        message=message,
        actor=actor,
        appliance_id=appliance_id,
        smart_account_id=smart_account_id,
        virtual_account_id=virtual_account_id,
        product_instance_id=product_instance_id,
        subject_name=subject_name,
        old=old,
        new=new,
        request_id=request_id_var.get(),
    )


def event_record(**fields: Any) -> Event:
    """Write one event row (the arguments of `event_build`)."""
    event = event_build(**fields)
    event.save(force_insert=True)
    return event
