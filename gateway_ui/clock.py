"""The appliance's clock: the lab clock plus the appliance's own skew."""

from datetime import datetime, timedelta

from gateway_ui.models import Appliance
from licensing_core.clock import lab_now


def appliance_now(appliance: Appliance) -> datetime:
    return lab_now(appliance.lab) + timedelta(minutes=appliance.clock_skew_minutes)
