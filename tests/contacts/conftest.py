from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.fixtures import Settings


@pytest.fixture(autouse=True)
def own_data_dir(settings: Settings, tmp_path: Path) -> Path:
    """Each test keeps its uploads in its own directory (the database rolls back; files
    would not)."""
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR
