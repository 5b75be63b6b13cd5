from django.apps import AppConfig


class LicensingCoreConfig(AppConfig):
    name = "licensing_core"
    verbose_name = "Licensing core"
