from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config import views
from cssm_portal.agent_api import smart_agent_endpoint
from cssm_portal.agent_batch import smart_agent_batch_endpoint

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", views.LabLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("cssm/", include("cssm_portal.urls")),
    path("appliance/", include("gateway_ui.urls")),
    path("licservice/license", smart_agent_endpoint, name="smart_agent_direct"),
    path("Transportgateway/services/DeviceRequestHandler", smart_agent_endpoint, name="smart_agent_gateway"),
    path("licservice/license/batch", smart_agent_batch_endpoint, name="smart_agent_direct_batch"),
    path(
        "Transportgateway/services/DeviceRequestHandler/batch",
        smart_agent_batch_endpoint,
        name="smart_agent_gateway_batch",
    ),
    path("", include("labs.urls")),
]
