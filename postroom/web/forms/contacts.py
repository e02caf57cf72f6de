"""Forms of the Contacts pages. They check shape and show errors next to fields; the rules
are postroom.contacts.fields' and the services', so the API and the CSV import apply the
same ones."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.utils import timezone

from postroom.contacts import fields, importing, selectors
from postroom.contacts.selectors import ContactFilters
from postroom.core.errors import PostroomError


def _checked(check: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return check(*args, **kwargs)
    except PostroomError as error:
        raise forms.ValidationError(error.message) from None


class ContactForm(forms.Form):
    first_name = forms.CharField(
        label="First name",
        required=False,
        max_length=fields.NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    last_name = forms.CharField(
        label="Last name",
        required=False,
        max_length=fields.NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    email = forms.CharField(
        label="Email address",
        # Not forms.EmailField: email-validator (in the service) is the one judge.
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        help_text="Each contact has its own address; upper and lower case count as the same.",
    )
    phone = forms.CharField(
        label="Phone",
        required=False,
        max_length=fields.PHONE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    organization_name = forms.CharField(
        label="Company",
        required=False,
        max_length=fields.ORGANIZATION_NAME_MAX_LENGTH,
        help_text="Pick one or type a new name: a new company is created.",
        widget=forms.TextInput(attrs={"list": "organization-names", "autocomplete": "off"}),
    )
    tags = forms.CharField(
        label="Tags",
        required=False,
        help_text="Separate tags with commas, such as: customer, trade fair 2024.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 4}))
    marketing_consent = forms.BooleanField(
        label="Consents to marketing email",
        required=False,
        help_text="Only contacts who consented receive campaigns.",
    )
    marketing_consent_at = forms.DateField(
        label="Consent date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="When consent was given or withdrawn. Leave it and it is today when the "
        "consent changes.",
    )
    marketing_consent_source = forms.CharField(
        label="Consent source",
        required=False,
        max_length=fields.CONSENT_SOURCE_MAX_LENGTH,
        help_text='Where it came from, such as "web form" or "signed at the 2024 trade fair". '
        'Left empty, it is "entered by" you.',
    )
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        initial=True,
        help_text="Inactive contacts stay on record but are left out of new mail.",
    )

    def clean_first_name(self) -> str:
        return _checked(
            fields.contact_name_clean, self.cleaned_data["first_name"], field="first_name"
        )

    def clean_last_name(self) -> str:
        return _checked(
            fields.contact_name_clean, self.cleaned_data["last_name"], field="last_name"
        )

    def clean_email(self) -> str:
        return _checked(fields.contact_email_clean, self.cleaned_data["email"])[0]

    def clean_phone(self) -> str:
        return _checked(fields.contact_phone_clean, self.cleaned_data["phone"])

    def clean_organization_name(self) -> str:
        return _checked(
            fields.organization_name_clean,
            self.cleaned_data["organization_name"],
            field="organization_name",
        )

    def clean_tags(self) -> list[str]:
        return _checked(fields.tag_names_parse, self.cleaned_data["tags"])

    def clean_notes(self) -> str:
        return _checked(fields.contact_notes_clean, self.cleaned_data["notes"])

    def clean_marketing_consent_at(self) -> datetime | None:
        day = self.cleaned_data["marketing_consent_at"]
        if day is None:
            return None
        moment = timezone.make_aware(datetime.combine(day, time.min))
        if day > timezone.localdate():
            raise forms.ValidationError("The consent date is in the future.")
        return moment

    def clean_marketing_consent_source(self) -> str:
        return _checked(fields.consent_source_clean, self.cleaned_data["marketing_consent_source"])

    def consent_changes(self) -> dict[str, Any]:
        """The consent arguments for contact_update: the date and source only when the
        person changed them, so a changed consent is dated today by the service."""
        data = self.cleaned_data
        return {
            "marketing_consent": data["marketing_consent"],
            "marketing_consent_at": data["marketing_consent_at"]
            if "marketing_consent_at" in self.changed_data
            else None,
            "marketing_consent_source": data["marketing_consent_source"]
            if "marketing_consent_source" in self.changed_data
            else None,
        }


class ContactFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, email or company"}),
    )
    tag = forms.ChoiceField(label="Tag", required=False)
    company = forms.TypedChoiceField(label="Company", required=False, coerce=int, empty_value=None)
    consent = forms.ChoiceField(
        label="Marketing consent",
        required=False,
        choices=[("", "Any"), ("yes", "Consented"), ("no", "Not consented")],
    )
    active = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Active and inactive"), ("active", "Active"), ("inactive", "Inactive")],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tag_field = self.fields["tag"]
        company_field = self.fields["company"]
        assert isinstance(tag_field, forms.ChoiceField)
        assert isinstance(company_field, forms.ChoiceField)
        tag_field.choices = [("", "Any tag")] + [(name, name) for name in selectors.tag_names()]
        company_field.choices = [("", "Any company")] + [
            (organization.pk, organization.name)
            for organization in selectors.organization_list().only("id", "name")
        ]

    def filters(self) -> ContactFilters:
        """The valid filters; an invalid one filters nothing."""
        data = self.cleaned_data if self.is_valid() else {}
        return ContactFilters(
            search=data.get("q", "").strip(),
            tag=data.get("tag", ""),
            organization_id=data.get("company"),
            has_consent={"yes": True, "no": False}.get(data.get("consent", "")),
            is_active={"active": True, "inactive": False}.get(data.get("active", "")),
        )


class OrganizationForm(forms.Form):
    name = forms.CharField(label="Name", max_length=fields.ORGANIZATION_NAME_MAX_LENGTH)
    website = forms.CharField(
        label="Website",
        required=False,
        max_length=fields.WEBSITE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"type": "url", "placeholder": "https://example.com"}),
    )
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def clean_name(self) -> str:
        return _checked(fields.organization_name_clean, self.cleaned_data["name"])

    def clean_website(self) -> str:
        return _checked(fields.organization_website_clean, self.cleaned_data["website"])

    def clean_notes(self) -> str:
        return _checked(fields.contact_notes_clean, self.cleaned_data["notes"])


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 text, the first row naming the columns; separated by commas, "
        "semicolons or tabs.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}),
    )


class ImportMappingForm(forms.Form):
    """One choice per CSV column: the contact field it fills, or nothing."""

    delimiter = forms.ChoiceField(
        label="Separator",
        choices=list(importing.DELIMITER_LABELS.items()),
        help_text="Detected from the file. Change it if the columns below look wrong.",
    )

    def __init__(self, *args: Any, headers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers = headers
        choices = [(importing.IGNORE, "— Ignore this column —"), *importing.FIELD_LABELS.items()]
        for index, header in enumerate(headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header or f"Column {index + 1}", required=False, choices=choices
            )

    def column_fields(self) -> list[forms.BoundField]:
        return [self[f"column_{index}"] for index in range(len(self.headers))]

    def mapping(self) -> dict[int, str]:
        return {
            index: self.cleaned_data.get(f"column_{index}", "")
            for index in range(len(self.headers))
            if self.cleaned_data.get(f"column_{index}")
        }
