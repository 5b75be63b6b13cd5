from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from gateway_ui.models import Appliance


@require_GET
def home(request, lab_slug: str, hostname: str):
    appliance = get_object_or_404(
        Appliance.objects.filter(lab__memberships__user=request.user), lab__slug=lab_slug, hostname=hostname
    )
    return render(request, "gateway_ui/home.html", {"appliance": appliance})
