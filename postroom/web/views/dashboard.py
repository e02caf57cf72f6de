from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from postroom.company.selectors import company_get


def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "web/dashboard.html", {"company": company_get()})


urlpatterns = [path("", dashboard, name="dashboard")]
