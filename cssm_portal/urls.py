from django.urls import path

from cssm_portal import account_views, views

app_name = "cssm"
SA = "<slug:lab_slug>/<int:sa_id>/"
VA = SA + "inventory/<int:va_id>/"
PI = VA + "instances/<uuid:piid>/"
urlpatterns = [
    path("<slug:lab_slug>/", views.home, name="home"),
    path("<slug:lab_slug>/request-account/", views.sa_request, name="sa_request"),
    path("<slug:lab_slug>/account-requests/", views.sa_requests, name="sa_requests"),
    path("<slug:lab_slug>/account-requests/<int:req_id>/decide/", views.sa_request_decide, name="sa_request_decide"),
    path(
        "<slug:lab_slug>/account-requests/<int:req_id>/complete/",
        views.sa_request_complete,
        name="sa_request_complete",
    ),
    path(SA, views.sa_home, name="sa_home"),
    path(VA, views.general, name="general"),
    path(VA + "tokens/new/", views.token_new, name="token_new"),
    path(VA + "tokens/<int:token_id>/download/", views.token_download, name="token_download"),
    path(VA + "tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path(VA + "licenses/", views.licenses, name="licenses"),
    path(VA + "licenses.csv", views.licenses_csv, name="licenses_csv"),
    path(VA + "licenses/<int:pool_id>/transfer/", views.license_transfer, name="license_transfer"),
    path(VA + "reserve/", views.reserve, name="reserve"),
    path(VA + "instances/", views.instances, name="instances"),
    path(PI, views.instance_detail, name="instance"),
    path(PI + "transfer/", views.instance_transfer, name="instance_transfer"),
    path(PI + "remove/", views.instance_remove, name="instance_remove"),
    path(PI + "update/", views.instance_update, name="instance_update"),
    path(PI + "confirm/", views.instance_confirm, name="instance_confirm"),
    path(PI + "cancel-update/", views.instance_cancel_update, name="instance_cancel_update"),
    path(PI + "authorization-code.txt", views.authorization_code_download, name="authorization_code"),
    path(VA + "events/", views.va_events, name="va_events"),
    path(VA + "events.csv", views.va_events_csv, name="va_events_csv"),
    path(SA + "virtual-accounts/", views.virtual_accounts, name="virtual_accounts"),
    path(SA + "virtual-accounts/<int:va_id>/edit/", views.virtual_account_edit, name="virtual_account_edit"),
    path(SA + "virtual-accounts/<int:va_id>/default/", views.virtual_account_default, name="virtual_account_default"),
    path(SA + "alerts/", views.alerts, name="alerts"),
    path(SA + "alerts/action/", views.alerts_action, name="alerts_action"),
    path(SA + "reports/", views.reports, name="reports"),
    path(SA + "preferences/", views.preferences, name="preferences"),
    path(SA + "activity/", views.activity, name="activity"),
    path(SA + "activity/events/", views.activity_events, name="activity_events"),
    path(SA + "convert/", views.convert, name="convert"),
    path(SA + "on-prem/", views.on_prem, name="on_prem"),
    path(SA + "on-prem/sync-upload/", account_views.satellite_sync_upload, name="satellite_sync_upload"),
    path(
        SA + "on-prem/<int:sat_id>/sync-file.json", account_views.satellite_sync_request, name="satellite_sync_request"
    ),
    path(
        SA + "on-prem/<int:sat_id>/authorization-file/",
        account_views.satellite_authorization,
        name="satellite_authorization",
    ),
    path(SA + "on-prem/<int:sat_id>/unregister/", account_views.satellite_unregister, name="satellite_unregister"),
    path(SA + "agreement/", account_views.agreement, name="agreement"),
    path(SA + "agreement/accept/", account_views.agreement_accept, name="agreement_accept"),
]
