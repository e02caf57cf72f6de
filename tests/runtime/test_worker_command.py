"""`postroom worker` takes its batch size from POSTROOM_WORKER_BATCH unless --batch is given."""

from __future__ import annotations

from pytest_django.fixtures import Settings

from postroom.runtime.management.commands.worker import Command


def test_the_batch_size_comes_from_the_setting(settings: Settings) -> None:
    settings.POSTROOM_WORKER_BATCH = 37
    parser = Command().create_parser("postroom", "worker")
    assert parser.parse_args([]).batch == 37
    assert parser.parse_args(["--batch", "5"]).batch == 5
