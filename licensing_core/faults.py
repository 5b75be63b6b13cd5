"""Fault injection, per lab: the network and service failures support
engineers reproduce. Toggles live in Lab.faults; the Smart Agent client and
the CSSM endpoint consult them, so a fault changes what the real exchange
does rather than faking its outcome.

Faults that are actions rather than switches (a token revoked behind the
admin's back, a licence shortage, an appliance clock skew) are done through
the ordinary services and fields; see labs.views.
"""

from django.db import models, transaction

from licensing_core.models import Lab


class Fault(models.TextChoices):
    CSSM_UNREACHABLE = "cssm_unreachable", "CSSM unreachable"
    TRANSPORT_GATEWAY_DOWN = "transport_gateway_down", "Transport gateway down"
    CSSM_SLOW = "cssm_slow", "CSSM slow"


FAULT_HELP = {
    Fault.CSSM_UNREACHABLE: "Appliances using Direct transport cannot connect to the Smart Software Manager.",
    Fault.TRANSPORT_GATEWAY_DOWN: "Appliances using a Transport Gateway cannot connect to it.",
    Fault.CSSM_SLOW: "The Smart Software Manager answers only after the delay below (seconds); "
    "longer than the Smart Agent's timeout, the exchange fails.",
}

CSSM_SLOW_DEFAULT_SECONDS = 15
CSSM_SLOW_MAX_SECONDS = 120


def fault_active(lab: Lab, fault: Fault) -> bool:
    return bool((lab.faults or {}).get(fault.value))


def cssm_delay_seconds(lab: Lab) -> int:
    """How long the CSSM endpoint waits before answering (0 when not slow)."""
    value = (lab.faults or {}).get(Fault.CSSM_SLOW.value)
    if not value:
        return 0
    return max(0, min(int(value), CSSM_SLOW_MAX_SECONDS))


@transaction.atomic
def fault_set(*, lab: Lab, fault: Fault, value: bool | int) -> Lab:
    """Turn a fault on (True, or a delay in seconds for CSSM slow) or off."""
    locked = Lab.objects.select_for_update().get(pk=lab.pk)
    faults = dict(locked.faults or {})
    if fault == Fault.CSSM_SLOW and value is True:
        value = CSSM_SLOW_DEFAULT_SECONDS
    if isinstance(value, int) and not isinstance(value, bool) and fault == Fault.CSSM_SLOW:
        value = max(0, min(value, CSSM_SLOW_MAX_SECONDS))
    if value:
        faults[fault.value] = value
    else:
        faults.pop(fault.value, None)
    locked.faults = faults
    locked.save(update_fields=["faults"])
    lab.faults = faults
    return lab
