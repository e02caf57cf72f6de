"""A CSV import into a list: the contacts import (postroom.contacts.import_runs) writes the
contacts and, in the same transaction, tells `import_written`; here every contact its file
named joins the list the import was made for. All or nothing: a failure here rolls the
import back, and a cancelled or failed import adds nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from postroom.audiences.models import ListImport
from postroom.audiences.services import MEMBER_CHUNK, list_members_insert
from postroom.audit.services import audit_record
from postroom.contacts.import_runs import import_written
from postroom.contacts.models import Contact, ImportJob

_RECEIVER_ID = "postroom.audiences.list_imports"


def connect() -> None:
    import_written.connect(_on_import_written, sender=ImportJob, dispatch_uid=_RECEIVER_ID)


def _on_import_written(sender: Any, *, job: ImportJob, keys: Sequence[str], **_: Any) -> None:
    link = ListImport.objects.filter(import_job=job).select_related("contact_list").first()
    if link is None:
        return
    ids: list[int] = []
    for start in range(0, len(keys), MEMBER_CHUNK):
        chunk = keys[start : start + MEMBER_CHUNK]
        ids.extend(Contact.objects.filter(email_key__in=chunk).values_list("pk", flat=True))
    added = list_members_insert(link.contact_list, ids)
    audit_record(
        actor=job.created_by,
        action="list.members_added",
        subject=f"list {link.contact_list.name}",
        changes={"Added": added, "How": f"CSV import of {job.filename}"},
    )
