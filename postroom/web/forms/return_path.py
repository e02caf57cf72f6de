"""The tagged return path's form (Company → Bounce mailbox). The checks are the service's
(postroom.bounces.return_path.bounce_address_clean), shown next to the field."""

from __future__ import annotations

from django import forms

from postroom.company.models import Company


class ReturnPathForm(forms.Form):
    bounce_address = forms.CharField(
        label="Bounce address",
        required=False,
        max_length=254,
        help_text=(
            "The bounce mailbox's address, e.g. bounces@example.com. Each message leaves "
            "with it as its envelope sender, tagged: bounces+m4711-…@example.com."
        ),
    )
    tag_return_path = forms.BooleanField(
        label="Tag the return path (VERP)",
        required=False,
        help_text=(
            "Turn on only when the relay lets Postroom send with this envelope sender and "
            "delivers mail for bounces+…@ to the bounce mailbox."
        ),
    )


def return_path_initial(company: Company) -> dict[str, object]:
    return {
        "bounce_address": company.bounce_address,
        "tag_return_path": company.tag_return_path,
    }
