from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """The Marketing Manager's campaign half: campaign templates, campaigns, unsubscribe."""

    name = "postroom.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        # What the outbox records about campaign mail (auto-pause, finished) and contacts
        # who stop consenting mid-campaign reach the campaigns without the outbox or the
        # contacts knowing them (postroom.campaigns.monitor).
        from postroom.campaigns import monitor

        monitor.connect()
