from django.apps import AppConfig


class CompanyConfig(AppConfig):
    name = "postroom.company"
    label = "company"
    verbose_name = "Company master"
