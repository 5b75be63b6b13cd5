"""On-Prem Accounts (§5.10): unregistering a Satellite, and its manual (air-gap) file
synchronization.

Manual synchronization, as the portal sees it: the satellite exports a synchronization
file (here: downloaded from the satellite's row, as if exported from it), the user uploads
it, the CSSM prepares the authorization file and raises "Satellite Authorization File
Ready"; downloading that file (to apply it on the satellite) makes the satellite
synchronized, which ends the Synchronization Overdue / Sync Deadline rules.

Both files are JSON signed with the lab's CA key (licensing_core.pki), so a changed file
or one from another lab is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from datetime import datetime

from django.db import transaction
from django.db.models import Sum

from cssm_portal import services
from cssm_portal.alert_rules import satellite_alerts_refresh
from cssm_portal.event_alerts import alert_raise, alerts_clear
from cssm_portal.models import LicensePool, LicenseUsage, SatelliteInstance, SmartAccount
from cssm_portal.services import ServiceError
from licensing_core import formats, pki, schedules
from licensing_core.alerts import CssmAlertType
from licensing_core.trust import certificate_authority, lab_trust

REQUEST_FORMAT = "ssm-onprem-sync-request"
AUTHORIZATION_FORMAT = "ssm-onprem-authorization"
FILE_VERSION = 1
NOT_A_SYNC_FILE = "This is not a Satellite synchronization file. Upload the file exported from the satellite."


def _ready_key(sat: SatelliteInstance) -> str:
    return f"sat_file_ready:{sat.pk}"


def _canonical(document: dict) -> bytes:
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def _signed(document: dict, *, sa: SmartAccount, now: datetime) -> str:
    ca = certificate_authority(lab_trust(lab=sa.lab, now=now))
    signature = pki.sign_with_ca(ca=ca, data=_canonical(document))
    return json.dumps({**document, "signature": base64.b64encode(signature).decode("ascii")}, indent=1, sort_keys=True)


def _header(sat: SatelliteInstance) -> dict:
    return {"id": sat.pk, "name": sat.name, "version": sat.version}


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "satellite"


def _count(value) -> int:
    """A usage count as the satellite reported it (anything else counts 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# --- unregister ---------------------------------------------------------------------------------


@transaction.atomic
def satellite_unregister(*, satellite: SatelliteInstance, actor: str, now: datetime) -> None:
    """Remove the satellite; its Virtual Accounts are managed in the cloud again."""
    sa = satellite.smart_account
    names = sorted(va.name for va in satellite.virtual_accounts.all())
    returned = (
        f"; Virtual Account{'s' if len(names) > 1 else ''} {', '.join(names)} "
        f"{'are' if len(names) > 1 else 'is'} managed in Smart Software Manager again."
        if names
        else "."
    )
    alerts_clear(smart_account=sa, keys=[_ready_key(satellite)], now=now)
    name, key = satellite.name, f"sat_unregistered:{satellite.pk}"
    satellite.delete()
    alert_raise(
        smart_account=sa,
        virtual_account=None,
        alert_type=CssmAlertType.SATELLITE_UNREGISTERED_AND_REMOVED,
        key=key,
        message=f'Satellite "{name}" was unregistered and removed by {actor}{returned}',
        now=now,
    )
    services._event(
        lab=sa.lab,
        now=now,
        kind="cssm.satellite.unregistered",
        message=f'Satellite "{name}" was unregistered and removed{returned}',
        actor=actor,
        sa=sa,
        subject_name=name,
    )
    # Its Synchronization Overdue / Sync Deadline alerts no longer apply.
    satellite_alerts_refresh(smart_account=sa, now=now)


# --- manual synchronization -----------------------------------------------------------------------


def sync_request_file(*, satellite: SatelliteInstance, now: datetime) -> tuple[str, str]:
    """(filename, text): the synchronization file the satellite exports — its Virtual
    Accounts and the licences their product instances use."""
    sa = satellite.smart_account
    vas = sorted(satellite.virtual_accounts.all(), key=lambda va: va.name)
    usage: dict[int, dict[str, int]] = {va.pk: {} for va in vas}
    for row in (
        LicenseUsage.objects.filter(instance__virtual_account__in=vas)
        .values("instance__virtual_account_id", "tag")
        .annotate(total=Sum("count"))
    ):
        usage[row["instance__virtual_account_id"]][row["tag"]] = row["total"]
    document = {
        "format": REQUEST_FORMAT,
        "version": FILE_VERSION,
        "satellite": _header(satellite),
        "smart_account": sa.domain,
        "generated_at": now.isoformat(),
        "nonce": secrets.token_hex(16),
        "virtual_accounts": [{"name": va.name, "usage": usage[va.pk]} for va in vas],
    }
    return f"satellite-sync-{_file_part(satellite.name)}.json", _signed(document, sa=sa, now=now)


def _parse_request(
    *, smart_account: SmartAccount, text: str, now: datetime
) -> tuple[SatelliteInstance, dict, datetime]:
    try:
        document = json.loads(text)
    except ValueError:
        raise ServiceError(NOT_A_SYNC_FILE + " (It is not JSON.)", field="file") from None
    if not isinstance(document, dict) or document.get("format") != REQUEST_FORMAT:
        raise ServiceError(NOT_A_SYNC_FILE, field="file")
    if document.get("version") != FILE_VERSION:
        raise ServiceError(
            f"This synchronization file has format version {document.get('version')!r}; "
            f"Smart Software Manager reads version {FILE_VERSION}.",
            field="file",
        )
    signature = document.get("signature")
    ca_pem = bytes(lab_trust(lab=smart_account.lab, now=now).ca_cert_pem)
    try:
        raw = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if not raw or not pki.verify_with_ca(ca_cert_pem=ca_pem, data=_canonical(document), signature=raw):
        raise ServiceError(
            "The synchronization file was changed after the satellite exported it, or it comes from another "
            "lab: its signature does not match.",
            field="file",
        )
    if document.get("smart_account") != smart_account.domain:
        raise ServiceError(
            f"This synchronization file belongs to Smart Account {document.get('smart_account')}, "
            f"not to {smart_account.domain}.",
            field="file",
        )
    header = document.get("satellite") if isinstance(document.get("satellite"), dict) else {}
    sat_id = header.get("id")
    satellite = (
        SatelliteInstance.objects.select_for_update()
        .filter(smart_account=smart_account, pk=sat_id if isinstance(sat_id, int) else None)
        .first()
    )
    if satellite is None or satellite.name != header.get("name"):
        raise ServiceError(
            f'Satellite "{header.get("name")}" is not registered to this Smart Account (it may have been '
            "unregistered).",
            field="file",
        )
    try:
        made = datetime.fromisoformat(str(document.get("generated_at")))
    except ValueError:
        made = None
    if made is None or made.tzinfo is None:
        raise ServiceError("The synchronization file has no valid creation time.", field="file")
    if made - now > schedules.CLOCK_SKEW_TOLERANCE:
        raise ServiceError(
            "The synchronization file was made in the future: the satellite's clock is ahead of Smart Software "
            "Manager. Correct its time (NTP) and export it again.",
            field="file",
        )
    if satellite.sync_request_at is not None and made <= satellite.sync_request_at:
        raise ServiceError(
            "This synchronization file (or a newer one) was already uploaded. Export a new one from the satellite.",
            field="file",
        )
    return satellite, document, made


@transaction.atomic
def sync_file_upload(*, smart_account: SmartAccount, text: str, actor: str, now: datetime) -> SatelliteInstance:
    """Check the satellite's synchronization file and prepare its authorization file."""
    satellite, request, made = _parse_request(smart_account=smart_account, text=text, now=now)
    vas = sorted(satellite.virtual_accounts.all(), key=lambda va: va.name)
    reported = {va.name: {} for va in vas}
    for item in request.get("virtual_accounts") if isinstance(request.get("virtual_accounts"), list) else []:
        if isinstance(item, dict) and item.get("name") in reported and isinstance(item.get("usage"), dict):
            reported[item["name"]] = item["usage"]
    pools: dict[int, list] = {va.pk: [] for va in vas}
    for pool in LicensePool.objects.filter(virtual_account__in=vas).order_by("tag"):
        pools[pool.virtual_account_id].append(pool)
    document = {
        "format": AUTHORIZATION_FORMAT,
        "version": FILE_VERSION,
        "satellite": _header(satellite),
        "smart_account": smart_account.domain,
        "request_nonce": str(request.get("nonce", "")),
        "generated_at": now.isoformat(),
        "virtual_accounts": [
            {
                "name": va.name,
                "licenses": [
                    {
                        "tag": p.tag,
                        "name": services.license_name(p.tag),
                        "purchased": services.pool_effective(p, now),
                        "reported_in_use": _count(reported[va.name].get(p.tag)),
                        "license_type": p.license_type,
                        "end_date": p.end_date.isoformat() if p.end_date else None,
                    }
                    for p in pools[va.pk]
                ],
            }
            for va in vas
        ],
    }
    satellite.sync_request_at = made
    satellite.authorization_file = _signed(document, sa=smart_account, now=now)
    satellite.authorization_ready_at = now
    satellite.save(update_fields=["sync_request_at", "authorization_file", "authorization_ready_at"])
    services._event(
        lab=smart_account.lab,
        now=now,
        kind="cssm.satellite.sync_uploaded",
        message=f'Synchronization file of Satellite "{satellite.name}" uploaded; its authorization file is ready.',
        actor=actor,
        sa=smart_account,
        subject_name=satellite.name,
    )
    alerts_clear(smart_account=smart_account, keys=[_ready_key(satellite)], now=now)
    alert_raise(
        smart_account=smart_account,
        virtual_account=None,
        alert_type=CssmAlertType.SATELLITE_AUTHORIZATION_FILE_READY,
        key=_ready_key(satellite),
        message=f'The authorization file for Satellite "{satellite.name}" is ready '
        f"({formats.cssm_datetime(now)}). Download it from On-Prem Accounts and apply it on the satellite.",
        now=now,
    )
    return satellite


@transaction.atomic
def authorization_file_download(*, satellite: SatelliteInstance, actor: str, now: datetime) -> tuple[str, str]:
    """(filename, text) of the prepared authorization file. The first download makes the
    satellite synchronized; a repeated download of the same file changes nothing."""
    satellite = (
        SatelliteInstance.objects.select_for_update(of=("self",))
        .select_related("smart_account__lab")
        .get(pk=satellite.pk)
    )
    if not satellite.authorization_file:
        raise ServiceError(
            f'No authorization file is ready for Satellite "{satellite.name}": upload its synchronization file first.'
        )
    sa = satellite.smart_account
    if satellite.last_sync is None or satellite.last_sync < satellite.authorization_ready_at:
        satellite.last_sync = now
        satellite.save(update_fields=["last_sync"])
        alerts_clear(smart_account=sa, keys=[_ready_key(satellite)], now=now)
        services._event(
            lab=sa.lab,
            now=now,
            kind="cssm.satellite.synchronized",
            message=f'Satellite "{satellite.name}" synchronized: its authorization file was downloaded.',
            actor=actor,
            sa=sa,
            subject_name=satellite.name,
        )
        satellite_alerts_refresh(smart_account=sa, now=now)
    return f"satellite-authorization-{_file_part(satellite.name)}.json", satellite.authorization_file
