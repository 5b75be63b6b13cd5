from django.apps import AppConfig


class GatewayUiConfig(AppConfig):
    name = "gateway_ui"
    verbose_name = "Appliance admin GUI"
