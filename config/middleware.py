"""Project-wide middleware: a request id for the audit trail, and a CSP header."""

import uuid

from django.conf import settings

from licensing_core.context import request_id_var


class RequestIdMiddleware:
    """Give every request one id; event rows written while serving it carry it.

    That id links an action on the appliance to what it changed in the portal
    (the exchange, the event rows, the alerts).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        try:
            request_id = uuid.UUID(incoming)
        except ValueError:
            request_id = uuid.uuid4()
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = str(request_id)
        return response


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
