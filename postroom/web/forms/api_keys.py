"""The form of the new-API-key page. The rules are the service's (postroom.accounts.api_keys)."""

from __future__ import annotations

from typing import Any

from django import forms

from postroom.accounts import api_keys
from postroom.accounts.models import ApiScope, User
from postroom.core.errors import PostroomError


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=api_keys.NAME_MAX_LENGTH,
        help_text="Which system uses the key, such as “ERP invoices”.",
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=ApiScope.choices,
        initial=[ApiScope.SEND],
        widget=forms.CheckboxSelectMultiple,
        help_text="Give a key only what its system needs.",
    )
    sender_user = forms.ModelChoiceField(
        label="May send as user",
        queryset=User.objects.none(),
        required=False,
        empty_label="(any user)",
        help_text="Leave both sender fields empty to let the key send as the company or as "
        "any user. Fill either to allow only that user and those addresses.",
    )
    allowed_from = forms.CharField(
        label="Allowed From addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, such as invoices@acme.example. Include the company address "
        "here if a restricted key should also send as the company.",
    )
    rate_limit_per_minute = forms.IntegerField(
        label="Requests per minute",
        initial=api_keys.DEFAULT_RATE_LIMIT_PER_MINUTE,
        min_value=1,
        max_value=api_keys.MAX_RATE_LIMIT_PER_MINUTE,
        help_text="Over this, the API answers 429 with Retry-After.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = User.objects.filter(is_active=True).exclude(email="").order_by("username")
        self.fields["sender_user"].queryset = users  # type: ignore[attr-defined]
        self.fields["sender_user"].label_from_instance = (  # type: ignore[attr-defined]
            lambda user: f"{user.name} <{user.email}>"
        )

    def clean_allowed_from(self) -> list[str]:
        lines = self.cleaned_data["allowed_from"].splitlines()
        try:
            return api_keys.api_key_allowed_from_clean(lines)
        except PostroomError as error:
            raise forms.ValidationError(error.message) from None
