"""Company → DKIM: the "New key" form shown under each sending domain."""

from __future__ import annotations

from django import forms

from postroom.dkim.models import Algorithm


class DkimKeyForm(forms.Form):
    domain = forms.CharField(widget=forms.HiddenInput, max_length=253)
    algorithm = forms.ChoiceField(
        label="Algorithm",
        choices=Algorithm.choices,
        initial=Algorithm.RSA_SHA256,
        help_text="RSA 2048 is checked by every receiver. Ed25519 (RFC 8463) is shorter and "
        "faster; add it beside RSA, not instead: many receivers still ignore it.",
    )
    selector = forms.CharField(
        label="Selector",
        required=False,
        max_length=63,
        help_text="Blank: postroom and this month (for example postroom202612).",
    )
