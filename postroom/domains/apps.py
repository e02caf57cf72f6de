from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "postroom.domains"
    label = "domains"
    verbose_name = "Domain check"
