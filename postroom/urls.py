from django.urls import include, path

urlpatterns = [
    path("api/", include("postroom.api.urls")),
    # /healthz, /readyz, /metrics: for load balancers and Prometheus, without a login.
    path("", include("postroom.ops.urls")),
    path("", include("postroom.web.urls")),
]
