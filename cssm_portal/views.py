from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from cssm_portal.models import SmartAccount
from licensing_core.models import Lab


@require_GET
def home(request, lab_slug: str):
    lab = get_object_or_404(Lab.objects.filter(memberships__user=request.user), slug=lab_slug)
    accounts = SmartAccount.objects.filter(lab=lab).prefetch_related("virtual_accounts")
    return render(request, "cssm_portal/home.html", {"lab": lab, "accounts": accounts})
