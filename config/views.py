"""Project-level views: the health probe and the login page."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection

from labs.throttle import login_blocked_for, login_failure_record, login_failures_clear


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; report it, don't 500
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _broker_status() -> str:
    # A fresh connection each time: a pooled one could hide a broker that died.
    try:
        with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # same: a probe reports, it does not raise
        return f"error: {exc.__class__.__name__}"
    return "ok"


@login_not_required
@require_GET
def healthz(request):
    """Database and broker status for load balancers and the run script."""
    status = {"database": _database_status(), "broker": _broker_status()}
    healthy = all(value == "ok" for value in status.values())
    status["status"] = "ok" if healthy else "degraded"
    status["broker_transport"] = settings.CELERY_BROKER_URL.split("://", 1)[0]
    return JsonResponse(status, status=200 if healthy else 503)


class LabLoginView(auth_views.LoginView):
    """Django's login view with throttling: five failures for a user name or
    from an address in 15 minutes refuse further attempts for a while."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        address = request.META.get("REMOTE_ADDR")
        wait = login_blocked_for(username=username, ip_address=address)
        if wait is not None:
            minutes = max(1, round(wait.total_seconds() / 60))
            form = self.get_form()
            form.errors.clear()
            form.add_error(
                None, f"Too many failed login attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        login_failure_record(
            username=self.request.POST.get("username", ""), ip_address=self.request.META.get("REMOTE_ADDR")
        )
        return super().form_invalid(form)

    def form_valid(self, form):
        login_failures_clear(username=form.get_user().get_username())
        return super().form_valid(form)
