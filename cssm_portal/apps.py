from django.apps import AppConfig


class CssmPortalConfig(AppConfig):
    name = "cssm_portal"
    verbose_name = "Cisco Smart Software Manager"
