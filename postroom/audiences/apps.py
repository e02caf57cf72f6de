from django.apps import AppConfig


class AudiencesConfig(AppConfig):
    name = "postroom.audiences"
    label = "audiences"
    verbose_name = "Audiences"

    def ready(self) -> None:
        # A CSV import into a list: the contacts import says, inside its transaction, which
        # contacts it wrote, and the list takes them in (postroom.audiences.list_imports).
        from postroom.audiences import list_imports

        list_imports.connect()
