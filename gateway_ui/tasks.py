"""Smart Agent exchanges in Celery: thin wrappers that fetch by id and call the service."""

import uuid
from contextlib import contextmanager

from celery import shared_task
from django.conf import settings

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from licensing_core.context import request_id_var


@contextmanager
def _request(request_id: str | None):
    token = request_id_var.set(uuid.UUID(request_id) if request_id else None)
    try:
        yield
    finally:
        request_id_var.reset(token)


def _get(appliance_id: int) -> Appliance | None:
    return Appliance.objects.select_related("lab").filter(pk=appliance_id).first()


@shared_task
def agent_register_task(appliance_id: int, request_id: str | None = None) -> None:
    with _request(request_id):
        if appliance := _get(appliance_id):
            services.agent_register_exchange(appliance=appliance, now=appliance_now(appliance))


@shared_task
def authorize_task(appliance_id: int, request_id: str | None = None) -> None:
    with _request(request_id):
        if appliance := _get(appliance_id):
            services.authorize_exchange(appliance=appliance, now=appliance_now(appliance))


@shared_task
def renew_id_task(appliance_id: int, request_id: str | None = None) -> None:
    with _request(request_id):
        if appliance := _get(appliance_id):
            services.renew_id_exchange(appliance=appliance, now=appliance_now(appliance))


@shared_task
def deregister_task(appliance_id: int, request_id: str | None = None) -> None:
    with _request(request_id):
        if appliance := _get(appliance_id):
            services.deregister_exchange(appliance=appliance, now=appliance_now(appliance))


@shared_task
def dlc_complete_task(appliance_id: int, request_id: str | None = None) -> None:
    with _request(request_id):
        if appliance := _get(appliance_id):
            services.dlc_complete(appliance=appliance, now=appliance_now(appliance))


@shared_task
def agent_update_task(appliance_id: int, request_id: str | None = None) -> None:
    with _request(request_id):
        if appliance := _get(appliance_id):
            services.agent_update_run(
                appliance=appliance, now=appliance_now(appliance), latest=settings.SMART_AGENT_VERSION
            )
