"""Uploads capped while they arrive: stop reading a form's files past their limit, instead of
storing them first and refusing them afterwards.

The whole request is bounded before it is read (postroom.core.middleware, with the limit
postroom.core.limits derives from the two caps below); this bounds one form's files by that
form's own cap, so the page can say which limit the file broke: a contact import's
POSTROOM_IMPORT_MAX_BYTES, or a message's attachments' POSTROOM_MAX_MESSAGE_BYTES.
"""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest


class UploadSizeCap(FileUploadHandler):
    """Counts the bytes of every file in the request; past `limit`, stops the upload."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.is_exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.is_exceeded = True
            # connection_reset=False: read the rest and drop it, so the page can answer.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handlers (Django's) store the file


def upload_cap_install(request: HttpRequest, *, limit: int) -> UploadSizeCap:
    """Put a cap of `limit` bytes in front of the request's upload handlers. Call it before
    anything reads request.POST or request.FILES (then check the view with csrf_protect: the
    CSRF middleware reads the body first otherwise)."""
    cap = UploadSizeCap(request, limit)
    # A list until request.POST is read, which nothing before these views does.
    request.upload_handlers = [cap, *request.upload_handlers]
    return cap
