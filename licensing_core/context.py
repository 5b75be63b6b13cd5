"""Per-request context carried without passing it through every call."""

import contextvars
import uuid

# Set by config.middleware.RequestIdMiddleware (and by tasks that continue a
# request's work) so each event row can name the request that caused it.
request_id_var: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar("request_id", default=None)
