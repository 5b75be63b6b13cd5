"""Demo data for the portal side of the demo lab (idempotent)."""

from datetime import timedelta

from cssm_portal.models import (
    AccountAccess,
    CssmRole,
    LicensePool,
    LicenseTransaction,
    LicenseType,
    SatelliteInstance,
    SmartAccount,
    TransactionSource,
    VirtualAccount,
)
from licensing_core import catalogue
from licensing_core.clock import lab_now
from licensing_core.models import Lab

DEMO_VIRTUAL_ACCOUNTS = (
    ("ESA", "Secure Email Gateways", True),
    ("SMA", "Secure Email and Web Managers", False),
    ("Lab", "Test and evaluation", False),
)

# Purchased quantities. Outbreak Filters is deliberately short: both demo
# gateways request it, so Insufficient Licenses shows once they authorize.
DEFAULT_QUANTITY = 10
SHORT = {("ESA", "VOF"): 1}
# A term licence that expires within 90 days of seeding (Licenses Expiring).
TERM_DAYS = {("ESA", "amp_file_analysis"): 45}
LAB_LICENSES = (("ESA", "imh", 2), ("ESA", "case", 2), ("SMA", "imh", 1))


def _pools(*, account: SmartAccount, vas: dict, now) -> None:
    rows = []
    for lic in catalogue.ESA_LICENSES:
        rows.append((vas["ESA"], lic, SHORT.get(("ESA", lic.code), DEFAULT_QUANTITY), TERM_DAYS.get(("ESA", lic.code))))
    for lic in catalogue.SMA_LICENSES:
        rows.append((vas["SMA"], lic, 4, None))
    for product, code, qty in LAB_LICENSES:
        lic = next(x for x in catalogue.licenses_for(product) if x.code == code)
        rows.append((vas["Lab"], lic, qty, None))
    for i, (va, lic, qty, term_days) in enumerate(rows):
        end = (now + timedelta(days=term_days)).date() if term_days else None
        pool, created = LicensePool.objects.get_or_create(
            virtual_account=va,
            tag=lic.entitlement_tag,
            defaults={
                "purchased": qty,
                "license_type": LicenseType.TERM if end else LicenseType.PERPETUAL,
                "end_date": end,
            },
        )
        if created:
            LicenseTransaction.objects.create(
                smart_account=account,
                virtual_account=va,
                at=now - timedelta(days=120 - i),
                tag=lic.entitlement_tag,
                sku=lic.sku,
                license_name=lic.name,
                quantity=qty,
                license_type=pool.license_type,
                end_date=pool.end_date,
                source=TransactionSource.ORDER if i % 3 else TransactionSource.MANUAL,
                reference=f"SO-{104200 + i}" if i % 3 else "",
            )


def seed_demo_portal(*, lab: Lab, users: dict) -> SmartAccount:
    now = lab_now(lab)
    account, _ = SmartAccount.objects.get_or_create(lab=lab, domain="example.com", defaults={"name": "Example Corp"})
    vas = {}
    for name, description, is_default in DEMO_VIRTUAL_ACCOUNTS:
        vas[name], _ = VirtualAccount.objects.get_or_create(
            smart_account=account, name=name, defaults={"description": description, "is_default": is_default}
        )
    roles = {
        "admin": (CssmRole.SA_ADMIN, None),
        "sa-admin": (CssmRole.SA_ADMIN, None),
        "sa-user": (CssmRole.SA_USER, None),
        "sa-viewer": (CssmRole.SA_VIEWER, None),
        "va-admin": (CssmRole.VA_ADMIN, vas["ESA"]),
        "va-user": (CssmRole.VA_USER, vas["ESA"]),
        "va-viewer": (CssmRole.VA_VIEWER, vas["ESA"]),
    }
    for username, (role, va) in roles.items():
        AccountAccess.objects.get_or_create(
            user=users[username], smart_account=account, virtual_account=va, defaults={"role": role}
        )
    _pools(account=account, vas=vas, now=now)
    satellite, created = SatelliteInstance.objects.get_or_create(
        smart_account=account,
        name="satellite.example.com",
        defaults={"version": "8-202304", "mode": "Connected", "last_sync": now - timedelta(days=12)},
    )
    if created:
        satellite.virtual_accounts.set([vas["Lab"]])
    # The seeded pools are facts the alert rules act on (a term licence expiring
    # soon, a short pool): raise their alerts now rather than at the first sweep.
    from cssm_portal.services import alerts_refresh

    alerts_refresh(smart_account=account, now=now)
    return account
