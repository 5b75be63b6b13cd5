from django import template

register = template.Library()

RESERVE_STEPS = (
    ("request", "Enter Request Code"),
    ("select", "Select Licenses"),
    ("review", "Review and Confirm"),
    ("code", "Authorization Code"),
)
UPDATE_STEPS = (("select", "Select Licenses"), ("review", "Review and Confirm"), ("code", "Authorization Code"))


@register.simple_tag
def reservation_steps(step):
    return RESERVE_STEPS


@register.simple_tag
def update_steps(step):
    return UPDATE_STEPS


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)
