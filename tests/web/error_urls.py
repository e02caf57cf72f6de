"""Postroom's pages plus one that fails, to see the 500 page as a person would."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from postroom.urls import urlpatterns as postroom_urlpatterns


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug, for the test")


urlpatterns = [path("fail/", fail), *postroom_urlpatterns]
