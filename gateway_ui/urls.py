from django.urls import path

from gateway_ui import views

app_name = "gateway"
P = "<slug:lab_slug>/<str:hostname>/"
urlpatterns = [
    path(P, views.home, name="home"),
    path(P + "not-simulated/<slug:page>/", views.not_simulated, name="not_simulated"),
    path(P + "mode/", views.cluster_mode_set, name="cluster_mode"),
    path(P + "smart-licensing/", views.smart_licensing, name="smart_licensing"),
    path(P + "smart-licensing/status/", views.sl_status, name="sl_status"),
    path(P + "smart-licensing/enable/", views.sl_enable, name="sl_enable"),
    path(P + "smart-licensing/mode/", views.sl_mode, name="sl_mode"),
    path(P + "smart-licensing/change-type/", views.sl_change_type, name="sl_change_type"),
    path(P + "smart-licensing/transport/", views.sl_transport, name="sl_transport"),
    path(P + "smart-licensing/register/", views.sl_register, name="sl_register"),
    path(P + "smart-licensing/action/", views.sl_action, name="sl_action"),
    path(P + "smart-licensing/deregister/", views.sl_deregister, name="sl_deregister"),
    path(P + "smart-licensing/agent-update/", views.sl_agent_update, name="sl_agent_update"),
    path(P + "smart-licensing/conversion/", views.sl_dlc_restart, name="sl_dlc_restart"),
    path(P + "smart-licensing/reservation/request-code/", views.sl_request_code, name="sl_request_code"),
    path(P + "smart-licensing/reservation/install/", views.sl_install, name="sl_install"),
    path(P + "smart-licensing/reservation/reauthorize/", views.sl_reauthorize, name="sl_reauthorize"),
    path(P + "smart-licensing/air-gap/", views.sl_airgap, name="sl_airgap"),
    path(P + "licenses/", views.licenses, name="licenses"),
    path(P + "changes/", views.changes, name="changes"),
    path(P + "alerts/", views.alerts, name="alerts"),
    path(P + "logs/smartlicense/", views.smartlicense_log_view, name="smartlicense_log"),
    path(P + "service-updates/", views.service_updates, name="service_updates"),
]
