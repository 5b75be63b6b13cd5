from django.urls import path

from gateway_ui import views

app_name = "gateway"
urlpatterns = [
    path("<slug:lab_slug>/<str:hostname>/", views.home, name="home"),
]
