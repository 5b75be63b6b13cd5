"""The Smart Software Licensing Agreement as versioned legal text (§5.8 agreement alerts,
§5.9 "legal agreement acceptance" in the Smart Account Event Log, §5.12 who accepts).

Cisco (the lab manager) publishes a version; every Smart Account of the lab then holds it
as `pending_agreement` with "Updated Smart License Agreement" and "Smart Licensing
Agreement Pending" open, until a Smart Account Administrator accepts it. A new Smart
Account starts with the current version pending.

While an agreement is pending every function keeps working: the sources say nothing of
CSSM blocking anything before acceptance, so the portal only shows the banner.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max

from cssm_portal import services
from cssm_portal.event_alerts import alert_raise, alerts_clear
from cssm_portal.models import AgreementAcceptance, LicenseAgreement, SmartAccount
from cssm_portal.services import ServiceError
from licensing_core import formats
from licensing_core.alerts import CssmAlertType
from licensing_core.events import event_record
from licensing_core.models import EventSide, Lab

AGREEMENT_TYPES = (CssmAlertType.UPDATED_SMART_LICENSE_AGREEMENT, CssmAlertType.SMART_LICENSING_AGREEMENT_PENDING)
SUMMARY_MAX = 200
TEXT_MAX = 20_000
# The lab's own wording (not Cisco's legal text): enough to read what is being accepted.
BASE_TEXT = """SMART SOFTWARE LICENSING AGREEMENT (lab replica)

1. Smart Software Licensing. The Smart Account holder manages the licences it owns in
Cisco Smart Software Manager and its Virtual Accounts, and registers product instances
with Product Instance Registration Tokens.

2. Usage reporting. Registered product instances report the licences they use; the
reports are kept in the Smart Account and may be used to reconcile purchases.

3. Export control. Export-controlled functionality is enabled only for product instances
registered with a token that allows it; the Smart Account holder is responsible for
complying with the applicable export regulations.

4. Changes. Cisco may update this agreement; an updated version applies once a Smart
Account Administrator has accepted it.
"""


def agreement_current(*, lab: Lab) -> LicenseAgreement | None:
    return LicenseAgreement.objects.filter(lab=lab).order_by("-version").first()


def _raise_pending(sa: SmartAccount, agreement: LicenseAgreement, now: datetime) -> None:
    alert_raise(
        smart_account=sa,
        virtual_account=None,
        alert_type=CssmAlertType.SMART_LICENSING_AGREEMENT_PENDING,
        key=f"agreement_pending:v{agreement.version}",
        message=f'Smart Account "{sa.name}" has not accepted version {agreement.version} of the Smart Software '
        "Licensing Agreement. A Smart Account Administrator must review and accept it.",
        now=now,
    )


@transaction.atomic
def agreement_publish(*, lab: Lab, summary: str, text: str, actor: str, now: datetime) -> LicenseAgreement:
    """Publish the next version; every Smart Account of the lab must accept it."""
    summary = summary.strip()
    if not summary:
        raise ServiceError("Say briefly what changed in this version.", field="summary")
    if len(summary) > SUMMARY_MAX:
        raise ServiceError(f"The summary may be at most {SUMMARY_MAX} characters.", field="summary")
    if len(text) > TEXT_MAX:
        raise ServiceError(f"The agreement text may be at most {TEXT_MAX:,} characters.", field="text")
    # Lock the lab row: two publishes at once would otherwise pick the same version.
    Lab.objects.select_for_update().filter(pk=lab.pk).first()
    previous = agreement_current(lab=lab)
    agreement = LicenseAgreement.objects.create(
        lab=lab,
        version=(LicenseAgreement.objects.filter(lab=lab).aggregate(v=Max("version"))["v"] or 0) + 1,
        summary=summary,
        text=text.strip() or (previous.text if previous else BASE_TEXT),
        published_at=now,
        published_by=actor,
    )
    event_record(
        lab=lab,
        at=now,
        side=EventSide.LAB,
        kind="lab.agreement.published",
        message=f"Smart Software Licensing Agreement version {agreement.version} published: {summary}",
        actor=actor,
        subject_name=str(agreement),
    )
    accounts = list(SmartAccount.objects.filter(lab=lab))
    SmartAccount.objects.filter(lab=lab).update(pending_agreement=agreement)
    for sa in accounts:
        sa.lab = lab
        # The alerts about an older version are superseded by this one.
        alerts_clear(smart_account=sa, types=AGREEMENT_TYPES, now=now)
        alert_raise(
            smart_account=sa,
            virtual_account=None,
            alert_type=CssmAlertType.UPDATED_SMART_LICENSE_AGREEMENT,
            key=f"agreement_updated:v{agreement.version}",
            message=f"The Smart Software Licensing Agreement was updated to version {agreement.version} on "
            f"{formats.cssm_date(now)}: {summary}",
            now=now,
        )
        _raise_pending(sa, agreement, now)
    return agreement


def agreement_require(*, smart_account: SmartAccount, now: datetime) -> LicenseAgreement:
    """A new Smart Account must accept the current version (the first one if the lab has none yet)."""
    lab = smart_account.lab
    agreement = agreement_current(lab=lab)
    if agreement is None:
        agreement = LicenseAgreement.objects.create(
            lab=lab,
            version=1,
            summary="First version.",
            text=BASE_TEXT,
            published_at=now,
            published_by="Cisco",
        )
    SmartAccount.objects.filter(pk=smart_account.pk).update(pending_agreement=agreement)
    smart_account.pending_agreement = agreement
    _raise_pending(smart_account, agreement, now)
    return agreement


@transaction.atomic
def agreement_accept(
    *, smart_account: SmartAccount, agreement_id: int | None, actor: str, now: datetime
) -> AgreementAcceptance:
    """Accept the pending version `agreement_id` (the one the user read)."""
    sa = (
        SmartAccount.objects.select_for_update(of=("self",))
        .select_related("pending_agreement", "lab")
        .get(pk=smart_account.pk)
    )
    agreement = sa.pending_agreement
    if agreement is None:
        raise ServiceError("This Smart Account has already accepted the current Smart Software Licensing Agreement.")
    if agreement.pk != agreement_id:
        raise ServiceError(
            f"Version {agreement.version} of the Smart Software Licensing Agreement has been published since; "
            "review it and accept that version."
        )
    acceptance = AgreementAcceptance.objects.create(
        smart_account=sa, agreement=agreement, accepted_by=actor, accepted_at=now
    )
    sa.pending_agreement = None
    sa.save(update_fields=["pending_agreement"])
    smart_account.pending_agreement = None
    alerts_clear(smart_account=sa, types=AGREEMENT_TYPES, now=now)
    services._event(
        lab=sa.lab,
        now=now,
        kind="cssm.agreement.accepted",
        message=f"Smart Software Licensing Agreement version {agreement.version} was accepted for Smart Account "
        f'"{sa.name}".',
        actor=actor,
        sa=sa,
        subject_name=str(agreement),
    )
    return acceptance
