"""Demo data for the portal side of the demo lab (idempotent)."""

from cssm_portal.models import AccountAccess, CssmRole, SmartAccount, VirtualAccount
from licensing_core.models import Lab

DEMO_VIRTUAL_ACCOUNTS = (
    ("ESA", "Secure Email Gateways", True),
    ("SMA", "Secure Email and Web Managers", False),
    ("Lab", "Test and evaluation", False),
)


def seed_demo_portal(*, lab: Lab, users: dict) -> SmartAccount:
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
    return account
