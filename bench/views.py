"""The floors the benchmarks compare with, served by the same server.

- `floor`: a bare authenticated view (session + user lookup through the same
  middleware stack, a tiny template), the least a logged-in page can cost;
- `bare_json`: a bare JSON endpoint taking a POSTed JSON body like the Smart
  Agent endpoint (no login, no CSRF), the least an agent message can cost.
"""

import json

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.template import engines
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

_FLOOR = engines["django"].from_string("<!doctype html><title>floor</title><p>{{ user.get_username }}</p>")


@require_GET
def floor(request):
    from django.http import HttpResponse

    return HttpResponse(_FLOOR.render({"user": request.user}, request))


@login_not_required
@csrf_exempt
@require_POST
def bare_json(request):
    try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"status": "error", "code": "bad_request"}, status=400)
    return JsonResponse({"status": "ok", "type": data.get("type") if isinstance(data, dict) else None})
