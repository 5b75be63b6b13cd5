import pytest

from licensing_core.faults import Fault, cssm_delay_seconds, fault_active, fault_set
from licensing_core.models import Lab

pytestmark = pytest.mark.django_db


def test_faults_switch_on_and_off():
    lab = Lab.objects.create(name="A", slug="a")
    assert not fault_active(lab, Fault.CSSM_UNREACHABLE)
    fault_set(lab=lab, fault=Fault.CSSM_UNREACHABLE, value=True)
    assert fault_active(Lab.objects.get(pk=lab.pk), Fault.CSSM_UNREACHABLE)
    fault_set(lab=lab, fault=Fault.CSSM_UNREACHABLE, value=False)
    assert Lab.objects.get(pk=lab.pk).faults == {}


def test_cssm_slow_carries_a_bounded_delay():
    lab = Lab.objects.create(name="A", slug="a")
    assert cssm_delay_seconds(lab) == 0
    fault_set(lab=lab, fault=Fault.CSSM_SLOW, value=True)
    assert cssm_delay_seconds(lab) == 15
    fault_set(lab=lab, fault=Fault.CSSM_SLOW, value=10_000)
    assert cssm_delay_seconds(Lab.objects.get(pk=lab.pk)) == 120
