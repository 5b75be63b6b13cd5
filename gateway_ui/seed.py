"""Demo appliances for the demo lab (idempotent)."""

from gateway_ui.models import Appliance, Product
from licensing_core.models import Lab

DEMO_APPLIANCES = (
    # hostname, product, model, serial, virtual, classic feature keys
    (
        "esa1.example.com",
        Product.ESA,
        "C395",
        "4C4C4544-ESA1-0001",
        False,
        ["case", "VOF", "sophos", "amp_file_rep", "amp_file_analysis", "envelope_encryption"],
    ),
    ("esa2.example.com", Product.ESA, "C100V", "564D-ESA2-0002", True, []),
    ("sma1.example.com", Product.SMA, "M395", "4C4C4544-SMA1-0003", False, ["c_track_processing", "c_rep_processing"]),
)


def seed_demo_appliances(*, lab: Lab) -> list[Appliance]:
    appliances = []
    for hostname, product, pid, serial, virtual, keys in DEMO_APPLIANCES:
        appliance, _ = Appliance.objects.get_or_create(
            lab=lab,
            hostname=hostname,
            defaults={
                "product": product,
                "model_pid": pid,
                "serial": serial,
                "virtual": virtual,
                "classic_feature_keys": keys,
            },
        )
        appliances.append(appliance)
    return appliances
