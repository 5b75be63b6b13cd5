from django.apps import AppConfig


class CssmPortalConfig(AppConfig):
    name = "cssm_portal"
    verbose_name = "Cisco Smart Software Manager"

    def ready(self) -> None:
        from cssm_portal import sweeps
        from licensing_core.sweeps import sweep_register

        sweep_register(name="cssm", next_due=sweeps.cssm_next_due, process=sweeps.cssm_process)
