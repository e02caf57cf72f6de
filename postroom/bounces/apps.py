from django.apps import AppConfig


class BouncesConfig(AppConfig):
    name = "postroom.bounces"
    label = "bounces"
    verbose_name = "Bounces and complaints"
