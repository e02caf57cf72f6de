from django.urls import include, path

urlpatterns = [
    path("", include("postroom.web.urls")),
]
