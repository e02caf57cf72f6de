"""Read Postroom's configuration from the environment.

Every variable is documented in docs/configuration.md. Readers fail loudly: a value that
cannot be parsed, or a setting that production needs and does not have, stops the start
with a message that names the variable and says what to put in it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import overload

from django.core.exceptions import ImproperlyConfigured

PREFIX = "POSTROOM_"


@overload
def env_str(name: str) -> str | None: ...
@overload
def env_str(name: str, default: str) -> str: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(PREFIX + name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{PREFIX}{name}={value!r} is not a boolean: use true or false.")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{PREFIX}{name}={value!r} is not a whole number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def is_production() -> bool:
    mode = env_str("ENV", "local")
    if mode not in {"local", "production"}:
        raise ImproperlyConfigured(f"{PREFIX}ENV={mode!r}: use local or production.")
    return mode == "production"


def require_for_production(names: list[str]) -> None:
    missing = [PREFIX + name for name in names if env_str(name) is None]
    if missing:
        raise ImproperlyConfigured(
            "POSTROOM_ENV=production needs " + ", ".join(missing) + ". "
            "See docs/configuration.md for what each one holds."
        )


def master_secret(data_dir: Path, *, may_create: bool) -> str:
    """Return the master secret: POSTROOM_SECRET_KEY, or the key file in the data directory.

    The key file is created (mode 0600) on a local first run only; in production the
    variable is required, so that the key never lives only on one disk by accident.
    """
    from_env = env_str("SECRET_KEY")
    if from_env is not None:
        return from_env
    key_file = data_dir / "secret.key"
    if key_file.exists():
        return key_file.read_text().strip()
    if not may_create:
        raise ImproperlyConfigured(f"No secret key: set {PREFIX}SECRET_KEY or restore {key_file}.")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL so two processes starting at once cannot each write a different key.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
