from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.cache import cache_control, never_cache
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and the benchmark baseline: no database, no templates."""
    return HttpResponse("ok", content_type="text/plain")


@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """No icon: pages say so with an empty data: URL; pages that don't (the admin's) get an empty answer
    here instead of a 404 on every visit."""
    return HttpResponse(status=204)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("calculator.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline script.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path("", include("calculator.urls")),
]

handler400 = "lorasite.errors.bad_request"
handler403 = "lorasite.errors.permission_denied"
handler404 = "lorasite.errors.page_not_found"
handler500 = "lorasite.errors.server_error"
