"""Root URLs: the admin, the REST API with its OpenAPI schema and docs, and health."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from triage.health import healthz
from triage.landing import admin_login, home

urlpatterns = [
    # Staff land on the review queue (pending proposals), after logging in too.
    path("", home, name="home"),
    path("admin/login/", admin_login),  # before the admin's own: the same page, another landing
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/", include("agent.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from a URL of its own (?script), not
    # inline: the Content-Security-Policy runs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # ReDoc was served here; its bundle loads an image from a CDN. The docs are Swagger UI.
    path("api/redoc/", RedirectView.as_view(pattern_name="swagger-ui"), name="redoc"),
]
