"""Export-restricted licences (licensing_core.catalogue `export_restricted`): a product
instance registered with a token that does not allow export-controlled functionality is
not authorized for them, and the account gets "Restricted License Not Available" (§5.8).

The authorize exchange (cssm_portal.services.instance_authorize) calls
`restricted_split` once, before it records usage: the refused licences are answered
"not_authorized" and are not counted as in use.
"""

from __future__ import annotations

from datetime import datetime

from cssm_portal.event_alerts import alert_raise, alerts_clear
from cssm_portal.models import ProductInstance
from licensing_core import catalogue
from licensing_core.alerts import CssmAlertType

NOT_AUTHORIZED = "not_authorized"


def restricted_licenses(instance: ProductInstance) -> dict[str, catalogue.License]:
    """tag -> licence of the export-restricted licences this instance may not use
    (none when its token allowed export-controlled functionality)."""
    if instance.export_controlled:
        return {}
    return {lic.entitlement_tag: lic for lic in catalogue.licenses_for(instance.product) if lic.export_restricted}


def restricted_alert_key(instance: ProductInstance, tag: str) -> str:
    return f"restricted:{instance.piid}:{tag}"


def restricted_split(
    *, instance: ProductInstance, usage: list[tuple[str, int]], now: datetime
) -> tuple[list[tuple[str, int]], list[dict]]:
    """(usage the exchange may authorize, answer entries for the refused licences).

    Raises the alert for each refused licence (once while open) and clears it for the
    restricted licences the instance stopped requesting. No query at all for an instance
    that may use them (its token allowed it: that never changes for an instance) or a
    product without restricted licences."""
    restricted = restricted_licenses(instance)
    if not restricted:
        return usage, []
    allowed: list[tuple[str, int]] = []
    refused: dict[str, catalogue.License] = {}
    for tag, count in usage:
        if tag in restricted and count > 0:
            refused[tag] = restricted[tag]
        else:
            allowed.append((tag, count))
    va = instance.virtual_account
    sa = va.smart_account
    resolved = [restricted_alert_key(instance, tag) for tag in restricted if tag not in refused]
    if resolved:
        alerts_clear(smart_account=sa, keys=resolved, now=now)
    answer = []
    for tag, lic in refused.items():
        alert_raise(
            smart_account=sa,
            virtual_account=va,
            alert_type=CssmAlertType.RESTRICTED_LICENSE_NOT_AVAILABLE,
            key=restricted_alert_key(instance, tag),
            message=f'Product instance "{instance.name}" requested {lic.name}, an export-controlled license, but '
            "it was registered with a token that does not allow export-controlled functionality. Register it "
            "again with a token that allows it.",
            now=now,
        )
        answer.append({"tag": tag, "status": NOT_AUTHORIZED, "display_name": lic.name})
    return allowed, answer


def restricted_alerts_clear(*, instance: ProductInstance, now: datetime) -> None:
    """A removed (or replaced) instance requests nothing any more: its alerts go too."""
    tags = list(restricted_licenses(instance))
    if tags:
        alerts_clear(
            smart_account=instance.virtual_account.smart_account,
            keys=[restricted_alert_key(instance, t) for t in tags],
            now=now,
        )
