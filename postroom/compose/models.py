"""The saved templates of Contact Email."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class EmailTemplate(models.Model):
    """A saved letter for Contact Email: subject and body with merge fields
    (postroom.compose.merge_fields.MERGE_FIELDS), rendered per recipient in the merge
    language's sandbox (postroom.mail.merge).

    `html` is the rich-text body as the editor wrote it, sanitized when saved; `text` is a
    plain-text body. With only `html`, the text part is generated from it when sending.
    """

    name = models.CharField(max_length=200)
    # The name's lower case (str.lower(), as for contacts): names are unique regardless of
    # case, because the API picks a template by name.
    name_key = models.CharField(max_length=200, unique=True, editable=False)
    subject = models.TextField(blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table kept its name when templates moved out of the contacts app (a rename
        # would rewrite every template on upgrade, for nothing).
        db_table = "contacts_emailtemplate"
        ordering = ["name_key", "id"]

    def __str__(self) -> str:
        return self.name
