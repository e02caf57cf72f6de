"""`postroom createadmin`, without and with questions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from postroom.accounts.models import Role, User

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("createadmin", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def logs_in(username: str, password: str) -> bool:
    response = Client().post("/login/", {"username": username, "password": password})
    return response.status_code == 302 and response["Location"] == "/"


def test_without_input_it_prints_a_password_that_logs_in() -> None:
    output = run(
        "--no-input",
        "--username",
        "ops",
        "--email",
        "Ops@Example.com",
        "--display-name",
        "Ops Team",
    )
    match = re.search(r"One-time password: (\S+)", output)
    assert match, output
    user = User.objects.get(username="ops")
    assert (user.role, user.email, user.display_name) == (
        Role.ADMINISTRATOR,
        "Ops@example.com",
        "Ops Team",
    )
    assert logs_in("ops", match.group(1))
    assert output.count(match.group(1)) == 1


def test_without_input_and_without_a_login_it_makes_admin() -> None:
    output = run("--no-input")
    password = re.search(r"One-time password: (\S+)", output)
    assert password and logs_in("admin", password.group(1))


def test_a_bad_address_stops_it_with_the_reason_and_creates_nothing() -> None:
    with pytest.raises(CommandError, match="not valid"):
        run("--no-input", "--email", "ops@")
    assert not User.objects.exists()


def test_a_taken_login_stops_it() -> None:
    run("--no-input", "--username", "ops")
    with pytest.raises(CommandError, match="taken"):
        run("--no-input", "--username", "OPS")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], list[str]]]:
    """Answers for `input()` and `getpass()`, in order: the keyboard of a person at a terminal."""
    answers: list[str] = []
    secrets: list[str] = []

    def fake_input(prompt: str = "") -> str:
        if not answers:
            raise EOFError
        return answers.pop(0)

    def fake_getpass(prompt: str = "") -> str:
        if not secrets:
            raise EOFError
        return secrets.pop(0)

    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    yield answers, secrets


def test_interactively_it_asks_again_after_each_mistake(
    terminal: tuple[list[str], list[str]],
) -> None:
    answers, secrets = terminal
    answers += ["bad login!", "ops", "ops@", "ops@example.com", "Ops\r\nBcc: x", "Ops Team"]
    strong = "amber-orchard-violin-31"
    secrets += [
        "amber-orchard-violin-31",
        "different-one-entirely-9",
        "short",
        "short",
        strong,
        strong,
    ]
    output = run()
    assert "One-time password" not in output
    user = User.objects.get(username="ops")
    assert (user.email, user.display_name, user.role) == (
        "ops@example.com",
        "Ops Team",
        Role.ADMINISTRATOR,
    )
    assert logs_in("ops", strong)


def test_interactively_a_blank_password_generates_one(
    terminal: tuple[list[str], list[str]],
) -> None:
    answers, secrets = terminal
    answers += ["ops", "", "Ops"]
    secrets += [""]
    password = re.search(r"One-time password: (\S+)", run())
    assert password and logs_in("ops", password.group(1))


def test_interactively_end_of_input_cancels_cleanly(
    terminal: tuple[list[str], list[str]],
) -> None:
    answers, _ = terminal
    answers += ["ops"]
    with pytest.raises(CommandError, match="Cancelled"):
        run()
    assert not User.objects.exists()
