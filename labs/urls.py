from django.urls import path

from labs import agreement_views, manage_views, split_views, views

app_name = "labs"
L = "labs/<slug:slug>/"
urlpatterns = [
    path("", views.home, name="home"),
    path("labs/new/", manage_views.lab_new, name="new"),
    path("labs/import/", manage_views.lab_import_view, name="import"),
    path("labs/reproduce/", manage_views.reproduce, name="reproduce"),
    path(L, views.lab_detail, name="detail"),
    path(L + "advance/", views.lab_advance_view, name="advance"),
    path(L + "freeze/", views.lab_freeze_view, name="freeze"),
    path(L + "faults/", views.lab_fault_view, name="fault"),
    path(L + "faults/clock-skew/", manage_views.fault_skew_view, name="fault_skew"),
    path(L + "faults/revoke-token/", manage_views.fault_revoke_view, name="fault_revoke"),
    path(L + "faults/shortage/", manage_views.fault_shortage_view, name="fault_shortage"),
    path(L + "faults/agreement/", agreement_views.agreement_publish_view, name="agreement_publish"),
    path(L + "mailbox/", views.mailbox, name="mailbox"),
    path(L + "clone/", manage_views.lab_clone_view, name="clone"),
    path(L + "reset/", manage_views.lab_reset_view, name="reset"),
    path(L + "delete/", manage_views.lab_delete_view, name="delete"),
    path(L + "export/", manage_views.lab_export_view, name="export"),
    path(L + "members/add/", manage_views.member_add_view, name="member_add"),
    path(L + "members/remove/", manage_views.member_remove_view, name="member_remove"),
    path(L + "split/<str:hostname>/", split_views.split, name="split"),
]
