"""The starting world of a new lab: what exists before anyone touches
licensing. Example Corp's Smart Account, virtual accounts and purchased
licences (the order history), the appliances' hardware, their alert
recipients, and the demo personas as members.

This is inventory, not licensing state: every licensing state a lab reaches
afterwards comes from the services (see labs.scenarios.builder).
"""

from django.contrib.auth import get_user_model
from django.db import transaction

from cssm_portal.models import AccountAccess, CssmRole, SmartAccount
from cssm_portal.seed import seed_demo_portal
from gateway_ui.models import AlertRecipient, Appliance, Cluster, Product
from gateway_ui.seed import seed_demo_appliances
from licensing_core.models import Lab, LabMembership
from licensing_core.roles import GatewayRole

ALERT_RECIPIENT = "mailadmin@example.com"
ALL_SEVERITIES = ["Critical", "Warning", "Information"]


def demo_users_ensure() -> dict:
    """The demo personas (created with the demo password if missing)."""
    from labs.demo import DEMO_PASSWORD, DEMO_USERS

    User = get_user_model()
    users = {}
    for username in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = username == "admin"
            user.save()
        users[username] = user
    return users


def memberships_ensure(*, lab: Lab, users: dict, manager=None) -> None:
    from labs.demo import DEMO_USERS

    for username, user in users.items():
        LabMembership.objects.get_or_create(
            lab=lab, user=user, defaults={"gateway_role": DEMO_USERS[username][0], "is_manager": username == "admin"}
        )
    if manager is not None:
        LabMembership.objects.update_or_create(
            lab=lab, user=manager, defaults={"gateway_role": GatewayRole.ADMINISTRATOR, "is_manager": True}
        )


@transaction.atomic
def world_seed(*, lab: Lab, manager=None) -> None:
    """Example Corp, its purchases, esa1/esa2/sma1 and the demo personas."""
    users = demo_users_ensure()
    memberships_ensure(lab=lab, users=users, manager=manager)
    account = seed_demo_portal(lab=lab, users=users)
    if manager is not None and manager.username not in users:
        AccountAccess.objects.get_or_create(
            user=manager, smart_account=account, virtual_account=None, defaults={"role": CssmRole.SA_ADMIN}
        )
    for appliance in seed_demo_appliances(lab=lab):
        recipient_ensure(appliance)


def recipient_ensure(appliance: Appliance) -> None:
    AlertRecipient.objects.get_or_create(
        appliance=appliance,
        address=ALERT_RECIPIENT,
        defaults={"classes": {"System": ALL_SEVERITIES}},
    )


def appliance_add(
    *, lab: Lab, hostname: str, pid: str, serial: str, virtual: bool, keys: list[str], product: str = Product.ESA
) -> Appliance:
    """Another box (or virtual machine) in the customer's network."""
    appliance, _ = Appliance.objects.get_or_create(
        lab=lab,
        hostname=hostname,
        defaults={"product": product, "model_pid": pid, "serial": serial, "virtual": virtual,
                  "classic_feature_keys": keys},
    )  # fmt: skip
    recipient_ensure(appliance)
    return appliance


def cluster_join(*, lab: Lab, name: str, appliances: list[Appliance]) -> Cluster:
    cluster, _ = Cluster.objects.get_or_create(lab=lab, name=name)
    for appliance in appliances:
        appliance.cluster = cluster
        appliance.save(update_fields=["cluster"])
    return cluster


def smart_account(lab: Lab, domain: str = "example.com") -> SmartAccount:
    return SmartAccount.objects.get(lab=lab, domain=domain)
