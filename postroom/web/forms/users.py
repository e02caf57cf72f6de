"""Forms of the User Master pages. They check shape and show errors next to fields; the
rules themselves are the services' (postroom.accounts.services), so the command line and
the API apply the same ones."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import PasswordChangeForm

from postroom.accounts import services
from postroom.accounts.models import Role, User
from postroom.core.errors import PostroomError

EMAIL_HELP = (
    "Mail this user sends to contacts comes from this address, and replies come back to it."
)
DISPLAY_NAME_HELP = 'Shown to recipients, as in "Alice Smith &lt;alice@example.com&gt;".'
ROLE_HELP = (
    "Administrators manage Postroom and read all mail; Staff and Marketers send as themselves "
    'and see their own mail. <a href="/help/users/#roles">What each role may do</a>'
)


def add_service_error(form: forms.Form, error: PostroomError) -> None:
    """Show a service's error next to its field, or above the form when it names none."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


def _checked(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except PostroomError as error:
        raise forms.ValidationError(error.message) from None


class _PersonFields(forms.Form):
    display_name = forms.CharField(
        label="Display name",
        max_length=services.DISPLAY_NAME_MAX_LENGTH,
        required=False,
        help_text=DISPLAY_NAME_HELP,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.CharField(
        label="Email address",
        required=False,
        help_text=EMAIL_HELP,
        # Not forms.EmailField: email-validator (in the service) is the one judge, and it
        # accepts internationalized addresses that Django's validator refuses.
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_display_name(self) -> str:
        return _checked(services.user_display_name_clean, self.cleaned_data["display_name"])

    def clean_email(self) -> str:
        return _checked(services.user_email_clean, self.cleaned_data["email"])


class UserCreateForm(_PersonFields):
    field_order = ["username", "display_name", "email", "role", "password", "password_confirm"]

    username = forms.CharField(
        label="Login",
        max_length=services.USERNAME_MAX_LENGTH,
        help_text="What the user types to log in: letters, digits and @ . + - _",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    role = forms.ChoiceField(
        label="Role", choices=Role.choices, initial=Role.STAFF, help_text=ROLE_HELP
    )
    password = forms.CharField(
        label="Initial password",
        required=False,
        strip=False,
        help_text="Leave blank to generate a strong one-time password, shown on the next page.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_confirm = forms.CharField(
        label="Initial password again",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self) -> str:
        return _checked(services.user_username_clean, self.cleaned_data["username"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        password = data.get("password", "")
        if password or data.get("password_confirm"):
            if password != data.get("password_confirm"):
                self.add_error("password_confirm", "The two passwords differ. Type them again.")
            elif "username" in data:
                probe = User(
                    username=data["username"],
                    display_name=data.get("display_name", ""),
                    email=data.get("email", ""),
                )
                try:
                    services.user_password_check(password, user=probe)
                except PostroomError as error:
                    self.add_error("password", error.message)
        return data


class UserEditForm(_PersonFields):
    field_order = ["display_name", "email", "role", "is_active"]

    role = forms.ChoiceField(label="Role", choices=Role.choices, help_text=ROLE_HELP)
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        help_text="An inactive user cannot log in. Their mail and history are kept.",
    )
    new_password = forms.CharField(
        label="New password",
        required=False,
        strip=False,
        help_text="Leave blank to keep the current password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password_confirm = forms.CharField(
        label="New password again",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    generate_password = forms.BooleanField(
        label="Generate a new one-time password",
        required=False,
        help_text="It is shown once on the next page, for you to give to the user.",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        password = data.get("new_password", "")
        if data.get("generate_password") and password:
            self.add_error(
                "generate_password", "Either type a new password or generate one, not both."
            )
        elif password or data.get("new_password_confirm"):
            if password != data.get("new_password_confirm"):
                self.add_error("new_password_confirm", "The two passwords differ. Type them again.")
            else:
                try:
                    services.user_password_check(password, user=self.user, field="new_password")
                except PostroomError as error:
                    self.add_error("new_password", error.message)
        return data

    @property
    def password_fields(self) -> list[forms.BoundField]:
        return [self["new_password"], self["new_password_confirm"], self["generate_password"]]

    @property
    def detail_fields(self) -> list[forms.BoundField]:
        return [self["display_name"], self["email"], self["role"], self["is_active"]]


class ProfileForm(_PersonFields):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].help_text = (
            "A new address takes effect once you open the link Postroom mails to it: your "
            "mail is filed under it, so it must be yours."
        )


class OwnPasswordChangeForm(PasswordChangeForm):
    """Django's form (the old password, the new one twice, the password rules), refusing the
    current password as the new one: a one-time password must really be replaced."""

    def clean_new_password1(self) -> str:
        password: str = self.cleaned_data["new_password1"]
        if password and self.user.check_password(password):
            raise forms.ValidationError("Choose a password different from your current one.")
        return password


class UserFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, login or email"}),
    )
    role = forms.ChoiceField(
        label="Role", required=False, choices=[("", "All roles"), *Role.choices]
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Active and inactive"), ("active", "Active"), ("inactive", "Inactive")],
    )
    email = forms.ChoiceField(
        label="Email address",
        required=False,
        choices=[("", "With or without"), ("missing", "No email address"), ("present", "Has one")],
    )

    def filters(self) -> dict[str, Any]:
        """The selector's keyword arguments; an invalid choice filters nothing."""
        data = self.cleaned_data if self.is_valid() else {}
        status = data.get("status", "")
        email = data.get("email", "")
        return {
            "search": data.get("q", ""),
            "role": data.get("role", ""),
            "is_active": {"active": True, "inactive": False}.get(status),
            "has_email": {"present": True, "missing": False}.get(email),
        }
