"""Saved email templates for Contact Email: read, create, edit, delete, and who may.

Everyone may use every template and create their own; a template's creator and the
administrators may edit or delete it. A template is checked when it is saved (syntax, the
constructs allowed, the fields of contact, user and company), so that a broken one is
refused at once rather than when someone sends with it. Other merge fields
({{ order.number }}) are allowed: the HTTP API fills them from its `data`.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.compose.html import html_is_blank, html_sanitize
from postroom.compose.merge_fields import MERGE_FIELDS
from postroom.compose.models import EmailTemplate
from postroom.compose.templating import letter_compile
from postroom.core.errors import NotFoundError, PermissionDeniedError, ValidationError
from postroom.mail.header_text import check_header_text, reject_control_characters
from postroom.mail.merge_rules import TemplateError

# The model field's length.
NAME_MAX_LENGTH = 200
# A subject is one header line of at most 998 characters (RFC 5322 §2.1.1) before folding;
# a template's subject, merge fields included, stays within it.
SUBJECT_MAX_LENGTH = 998


class UnknownTemplateError(ValidationError):
    code = "unknown_template"


def email_template_list() -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.select_related("created_by").order_by("name_key", "id")


def email_template_get(*, pk: int) -> EmailTemplate:
    try:
        return EmailTemplate.objects.select_related("created_by").get(pk=pk)
    except EmailTemplate.DoesNotExist:
        raise NotFoundError(
            f"There is no email template #{pk}; it may have been deleted."
        ) from None


def email_template_get_by_ref(*, ref: str, field: str = "template") -> EmailTemplate:
    """A template by its id (digits) or its name (any case), for the API's `template`."""
    ref = ref.strip()
    found = None
    # An id is at most a 64-bit integer (the database's BigAutoField); longer digits are a name.
    if ref.isdigit() and len(ref) <= 18:
        found = EmailTemplate.objects.filter(pk=int(ref)).first()
    if found is None:
        found = EmailTemplate.objects.filter(name_key=ref.lower()).first()
    if found is None:
        raise UnknownTemplateError(
            f"There is no email template {ref!r}: give a template's id or name, as listed on "
            "the Templates page.",
            field=field,
        )
    return found


def email_template_can_edit(*, user: User, template: EmailTemplate) -> bool:
    return user.is_administrator or template.created_by_id == user.pk


def _require_can_edit(user: User, template: EmailTemplate) -> None:
    if not email_template_can_edit(user=user, template=template):
        raise PermissionDeniedError(
            "Only the person who created this template and administrators can change it. "
            "Use it as it is, or save a copy under a new name."
        )


def _name_clean(name: str, *, exclude_pk: int | None = None) -> tuple[str, str]:
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Give the template a name.", field="name")
    reject_control_characters(name, label="Name", what="the name", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            f"The name is {len(name)} characters long; keep it under {NAME_MAX_LENGTH}.",
            field="name",
        )
    key = name.lower()
    taken = EmailTemplate.objects.filter(name_key=key)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError(f"A template named {name!r} exists already.", field="name")
    return name, key


def email_template_clean(*, subject: str, text: str, html: str) -> tuple[str, str, str]:
    """The parts as they are saved: checked as templates, the HTML sanitized. A rich-text
    body replaces the plain one (its text part is generated when sending)."""
    subject = subject.strip()
    check_header_text(subject, label="Subject", what="the subject", field="subject")
    if len(subject) > SUBJECT_MAX_LENGTH:
        raise ValidationError(
            f"The subject is {len(subject)} characters long; keep it under "
            f"{SUBJECT_MAX_LENGTH} (RFC 5322 §2.1.1).",
            field="subject",
        )
    html = html_sanitize(html) if html and not html_is_blank(html) else ""
    text = "" if html else text.replace("\r\n", "\n")
    if not subject and not text.strip() and not html:
        raise ValidationError("Write a subject or a body: the template is empty.", field="text")
    try:
        # Other roots than contact, user and company are allowed: the API's `data` fills
        # them ({{ order.number }}); Contact Email says so if it meets one.
        letter_compile(subject=subject, text=text, html=html, roots=None, fields=MERGE_FIELDS)
    except TemplateError as error:
        # The form has one body field: an error in either body is shown there.
        raise TemplateError(
            error.message, field="subject" if error.field == "subject" else "body"
        ) from None
    return subject, text, html


def email_template_create(
    *, actor: User, name: str, subject: str, text: str, html: str
) -> EmailTemplate:
    name, key = _name_clean(name)
    subject, text, html = email_template_clean(subject=subject, text=text, html=html)
    try:
        with transaction.atomic():
            template = EmailTemplate.objects.create(
                name=name, name_key=key, subject=subject, text=text, html=html, created_by=actor
            )
            audit_record(
                actor=actor,
                action="email_template.create",
                subject=f"template {name}",
                changes={"name": {"from": None, "to": name}},
            )
    except IntegrityError:  # the same name saved at the same moment by someone else
        raise ValidationError(f"A template named {name!r} exists already.", field="name") from None
    return template


def email_template_update(
    *, actor: User, template: EmailTemplate, name: str, subject: str, text: str, html: str
) -> EmailTemplate:
    _require_can_edit(actor, template)
    name, key = _name_clean(name, exclude_pk=template.pk)
    subject, text, html = email_template_clean(subject=subject, text=text, html=html)
    changes: dict[str, dict[str, Any]] = {
        label: {"from": before, "to": after}
        for label, before, after in (("name", template.name, name),)
        if before != after
    }
    changed_parts = [
        part
        for part, before, after in (
            ("subject", template.subject, subject),
            ("text", template.text, text),
            ("html", template.html, html),
        )
        if before != after
    ]
    if changed_parts:
        changes["content"] = {"changed": changed_parts}
    template.name, template.name_key = name, key
    template.subject, template.text, template.html = subject, text, html
    try:
        with transaction.atomic():
            template.save()
            if changes:
                audit_record(
                    actor=actor,
                    action="email_template.update",
                    subject=f"template {name}",
                    changes=changes,
                )
    except IntegrityError:
        raise ValidationError(f"A template named {name!r} exists already.", field="name") from None
    return template


def email_template_delete(*, actor: User, template: EmailTemplate) -> None:
    _require_can_edit(actor, template)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="email_template.delete",
            subject=f"template {template.name}",
            changes={"name": {"from": template.name, "to": None}},
        )
        template.delete()
