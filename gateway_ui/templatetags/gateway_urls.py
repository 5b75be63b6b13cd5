"""{% appliance_url 'not_simulated' 'monitor' %}: a link to one of this appliance's pages that takes
arguments besides the appliance, from the page's `urls` (gateway_ui.views.ApplianceUrls) without a
reverse() of its own. Names without arguments read as {{ urls.licenses }}."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def appliance_url(context, name: str, *args: str) -> str:
    return context["urls"].page(name, *args)
