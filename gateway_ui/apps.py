from django.apps import AppConfig


class GatewayUiConfig(AppConfig):
    name = "gateway_ui"
    verbose_name = "Appliance admin GUI"

    def ready(self) -> None:
        from gateway_ui import sweeps
        from licensing_core.sweeps import sweep_register

        sweep_register(name="gateway", next_due=sweeps.gateway_next_due, process=sweeps.gateway_process)
