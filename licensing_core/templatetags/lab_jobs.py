"""{% lab_sweep_status lab as status %}: last and next background work of a lab
(licensing_core.sweeps.sweep_status), for the lab page."""

from django import template

from licensing_core.sweeps import sweep_status

register = template.Library()


@register.simple_tag
def lab_sweep_status(lab):
    return sweep_status(lab=lab)
