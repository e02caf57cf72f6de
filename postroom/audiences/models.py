"""Audiences: static lists of contacts and saved segments (filters over contacts).

A list's members are rows (`ListMember`); a segment is data, a small rule list validated by
postroom.audiences.rules and turned into a query when it is used, never SQL. Names are
unique without regard to case through a `name_key` column computed in Python, as contacts'
addresses are (see postroom.contacts.models).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from postroom.contacts.models import Contact, ImportJob


class ContactList(models.Model):
    name = models.CharField(max_length=200)
    name_key = models.CharField(max_length=200, unique=True, editable=False)
    description = models.TextField(blank=True)
    members: models.ManyToManyField[Contact, ListMember] = models.ManyToManyField(
        Contact, through="ListMember", related_name="lists"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "list"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ListMember(models.Model):
    contact_list = models.ForeignKey(
        ContactList, on_delete=models.CASCADE, related_name="memberships"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="memberships")
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact_list", "contact"], name="audiences_listmember_once"
            ),
        ]
        # The unique constraint serves "the members of a list"; this one "a contact's lists"
        # and the deletion of a contact.
        indexes = [models.Index(fields=["contact"], name="audiences_listmember_contact")]

    def __str__(self) -> str:
        return f"contact {self.contact_id} in list {self.contact_list_id}"


class SegmentMatch(models.TextChoices):
    ALL = "all", "all of the conditions"
    ANY = "any", "any of the conditions"


class Segment(models.Model):
    """A saved filter: the contacts that meet all (or any) of `rules` when it is used."""

    name = models.CharField(max_length=200)
    name_key = models.CharField(max_length=200, unique=True, editable=False)
    description = models.TextField(blank=True)
    match = models.CharField(max_length=3, choices=SegmentMatch.choices, default=SegmentMatch.ALL)
    # [{"field": "tag", "op": "has", "value": "customer"}, ...]: postroom.audiences.rules.
    rules = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ListImport(models.Model):
    """A CSV contact import whose contacts join a list (the import itself is the contacts
    app's, which knows nothing of lists)."""

    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="imports")
    import_job = models.OneToOneField(ImportJob, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"import {self.import_job_id} into list {self.contact_list_id}"
