"""The demo lab that `manage.py seed_demo` builds (idempotent)."""

from django.contrib.auth import get_user_model
from django.db import transaction

from cssm_portal.seed import seed_demo_portal
from gateway_ui.seed import seed_demo_appliances
from licensing_core.models import Lab, LabMembership
from licensing_core.roles import GatewayRole

DEMO_PASSWORD = "smartlab-demo"

# user name -> (gateway role on the demo appliances, what the README says)
DEMO_USERS = {
    "admin": (GatewayRole.ADMINISTRATOR, "Lab owner: appliance Administrator, Smart Account Administrator"),
    "operator": (GatewayRole.OPERATOR, "Appliance Operator"),
    "technician": (GatewayRole.TECHNICIAN, "Appliance Technician"),
    "readonly": (GatewayRole.READ_ONLY_OPERATOR, "Appliance Read-Only Operator"),
    "guest": (GatewayRole.GUEST, "Appliance Guest"),
    "sa-admin": (GatewayRole.GUEST, "Smart Account Administrator"),
    "sa-user": (GatewayRole.GUEST, "Smart Account User"),
    "sa-viewer": (GatewayRole.GUEST, "Smart Account Viewer"),
    "va-admin": (GatewayRole.GUEST, "Virtual Account Administrator (ESA)"),
    "va-user": (GatewayRole.GUEST, "Virtual Account User (ESA)"),
    "va-viewer": (GatewayRole.GUEST, "Virtual Account Viewer (ESA)"),
}


@transaction.atomic
def demo_lab_build() -> Lab:
    lab, _ = Lab.objects.get_or_create(
        slug="demo",
        defaults={"name": "Demo lab", "description": "Example Corp with two Secure Email Gateways and a manager."},
    )
    User = get_user_model()
    users = {}
    for username, (gateway_role, _) in DEMO_USERS.items():
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = username == "admin"
            user.save()
        LabMembership.objects.get_or_create(
            lab=lab, user=user, defaults={"gateway_role": gateway_role, "is_manager": username == "admin"}
        )
        users[username] = user
    seed_demo_portal(lab=lab, users=users)
    seed_demo_appliances(lab=lab)
    return lab
