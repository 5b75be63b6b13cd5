from django.shortcuts import render
from django.views.decorators.http import require_GET

from labs.selectors import labs_for_user, last_heartbeat
from licensing_core.clock import lab_now


@require_GET
def home(request):
    """The lab home: every lab the user belongs to, its time, the CSSM portal
    and each appliance's admin GUI."""
    labs = list(labs_for_user(user=request.user))
    rows = [{"lab": lab, "now": lab_now(lab)} for lab in labs]
    return render(request, "labs/home.html", {"rows": rows, "heartbeat": last_heartbeat()})
