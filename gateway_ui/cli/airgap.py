"""``updateconfig > VLNID`` and ``CLIENTCERTIFICATE`` as two separate steps (domain-notes §1.6, §3.5).

services.airgap_apply takes the VLN, certificate and key together (the GUI form has
all three). The CLI sets them one at a time, VLN first; once both are present every
change goes through services.airgap_apply, so its checks (certificate chains to the
lab CA, key matches) are the only ones. ``vln_set`` covers the one case the service
cannot: the first VLN before any certificate. It belongs in gateway_ui.services.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.db import transaction

from gateway_ui import services
from gateway_ui.models import Appliance
from licensing_core.events import event_record
from licensing_core.machines import TransitionRefused

VLN_RE = re.compile(r"^VLN[A-Z0-9]{4,40}$")  # same rule as services.airgap_apply
VLN_INVALID = "Enter the VLN exactly as vlinfo shows it (it starts with VLN)."
VLN_FIRST = "Add the VLN first (updateconfig > VLNID), then the client certificate and key."


def _check(appliance: Appliance) -> None:
    if not appliance.virtual:
        raise TransitionRefused("The VLN and client certificate apply only to virtual email gateways.")
    if not appliance.smart_enabled:
        raise TransitionRefused("Smart Software Licensing is not enabled. Enable it and commit your changes first.")
    if not appliance.in_reservation_mode:
        raise TransitionRefused(
            "License reservation is not enabled. Select Specific/Permanent License Reservation and click Confirm."
        )


def vln_set(*, appliance: Appliance, vln: str, now: datetime, actor: str = "") -> None:
    _check(appliance)
    vln = vln.strip()
    if not VLN_RE.fullmatch(vln):
        raise services.ServiceError(VLN_INVALID)
    if appliance.client_certificate_pem and appliance.client_key_pem:
        services.airgap_apply(
            appliance=appliance,
            vln=vln,
            certificate=appliance.client_certificate_pem,
            key=appliance.client_key_pem,
            now=now,
            actor=actor,
        )
        return
    with transaction.atomic():
        locked = Appliance.objects.select_for_update().get(pk=appliance.pk)
        locked.vln = vln
        locked.save(update_fields=["vln"])
        event_record(
            lab=appliance.lab,
            at=now,
            side="gateway",
            kind="airgap.vln",
            message=f"VLN {vln} applied",
            actor=actor,
            appliance_id=appliance.pk,
            subject_name=appliance.hostname,
        )


def client_certificate_set(*, appliance: Appliance, certificate: str, key: str, now: datetime, actor: str = "") -> None:
    _check(appliance)
    if not appliance.vln:
        raise TransitionRefused(VLN_FIRST)
    services.airgap_apply(
        appliance=appliance, vln=appliance.vln, certificate=certificate, key=key, now=now, actor=actor
    )
