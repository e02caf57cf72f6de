"""The one error tree of Postroom.

Every error a user can meet is a `PostroomError` with a stable `code` (for the API and
logs) and a message that says what to do about it. Views map it to a message next to the
form; the API maps it to JSON; commands print it and exit non-zero.
"""

from __future__ import annotations


class PostroomError(Exception):
    code = "postroom_error"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(PostroomError, ValueError):
    code = "invalid"


class NotFoundError(PostroomError, LookupError):
    code = "not_found"
    http_status = 404


class PermissionDeniedError(PostroomError, PermissionError):
    code = "forbidden"
    http_status = 403


class UnsafeMessageError(PostroomError):
    """A built message does not read back as built (postroom.mail.structure): a bug, not bad
    input. It is refused with this error, never sent, rather than answered with a crash."""

    code = "unsafe_message"
    http_status = 422


class ConfigurationError(PostroomError):
    code = "configuration"
    http_status = 409


class SecretKeyError(ConfigurationError):
    """The stored secrets cannot be decrypted with the key this process has."""

    code = "secret_key"
