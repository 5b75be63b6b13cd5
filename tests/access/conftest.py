import pytest

from tests.access import world


@pytest.fixture
def two_labs(demo_lab):
    """The demo lab (esa1 enabled, one change staged) and a second lab; URL kwargs for each."""
    from django.contrib.auth import get_user_model

    from gateway_ui.models import Appliance
    from licensing_core.clock import clock_freeze

    clock_freeze(lab=demo_lab)
    guest = get_user_model().objects.get(username="guest")
    esa1 = world.enable(Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com"))
    world.stage_transport(esa1)
    demo = world.values_for(demo_lab, va_name="ESA", hostname="esa1.example.com", requester=guest)
    other, outsider = world.other_lab()
    clock_freeze(lab=other)
    world.enable(Appliance.objects.get(lab=other, hostname="esa9.other.org"))
    theirs = world.values_for(other, va_name="Main", hostname="esa9.other.org", requester=outsider)
    return demo, theirs
