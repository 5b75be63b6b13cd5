from django.urls import path

from cssm_portal import views

app_name = "cssm"
urlpatterns = [
    path("<slug:lab_slug>/", views.home, name="home"),
]
