from django.urls import path

from labs import views

app_name = "labs"
urlpatterns = [
    path("", views.home, name="home"),
    path("labs/<slug:slug>/", views.lab_detail, name="detail"),
    path("labs/<slug:slug>/advance/", views.lab_advance_view, name="advance"),
    path("labs/<slug:slug>/freeze/", views.lab_freeze_view, name="freeze"),
    path("labs/<slug:slug>/faults/", views.lab_fault_view, name="fault"),
    path("labs/<slug:slug>/mailbox/", views.mailbox, name="mailbox"),
]
