"""`postroom send`: one email from the command line into the outbox, or a clear refusal."""

from __future__ import annotations

import io
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from django.core.management import call_command, execute_from_command_line
from django.db import connections

from postroom.outbox.models import Lane, Message, MessageStatus, RecipientKind, Source

pytestmark = pytest.mark.django_db

SENDER = ["--from", "Alice Smith <alice@acme.example>"]


class _TtyInput(io.StringIO):
    """Standard input as a terminal: nothing is piped in."""

    def isatty(self) -> bool:
        return True


def send(*args: str, stdin: io.StringIO | None = None) -> str:
    out = io.StringIO()
    call_command("send", *args, stdout=out, stdin=stdin or _TtyInput())
    return out.getvalue()


def run_postroom(*args: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """Run `postroom ARGS` as the shell would (exit code and all), in this process."""
    monkeypatch.setattr(sys, "stdin", _TtyInput())
    # run_from_argv closes the database connections when the command ends, which would end
    # the test's transaction; a real `postroom send` process exits there anyway.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["postroom", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _parsed(message: Message):
    return message_from_bytes(bytes(message.raw), policy=default_policy)


def test_a_valid_email_is_queued_and_its_ids_printed():
    output = send(
        *SENDER,
        "--to",
        "bob@example.org",
        "--to",
        "Carol <carol@example.org>",
        "--cc",
        "dan@example.org",
        "--bcc",
        "erin@example.net",
        "--subject",
        "Quarterly figures",
        "--body",
        "Hello,\nthe figures.\n",
    )

    message = Message.objects.get()
    assert f"Queued message {message.pk} {message.message_id}" in output
    assert message.status == MessageStatus.QUEUED
    assert message.source == Source.CLI
    assert message.lane == Lane.TRANSACTIONAL
    assert message.envelope_from == "alice@acme.example"
    assert list(message.recipients.values_list("address", "kind")) == [
        ("bob@example.org", RecipientKind.TO),
        ("carol@example.org", RecipientKind.TO),
        ("dan@example.org", RecipientKind.CC),
        ("erin@example.net", RecipientKind.BCC),
    ]
    parsed = _parsed(message)
    assert parsed["From"] == "Alice Smith <alice@acme.example>"
    assert parsed["To"] == "bob@example.org, Carol <carol@example.org>"
    assert parsed["Subject"] == "Quarterly figures"
    assert parsed["Message-ID"] == message.message_id
    assert parsed["Bcc"] is None
    assert b"erin@" not in bytes(message.raw)
    assert parsed.get_content().splitlines() == ["Hello,", "the figures."]


def test_the_body_can_come_from_standard_input_or_a_file(tmp_path: Path):
    send(
        *SENDER, "--to", "bob@example.org", "--subject", "piped", stdin=io.StringIO("From a pipe\n")
    )
    body_file = tmp_path / "body.txt"
    body_file.write_text("Grüße aus der Datei\n", encoding="utf-8")
    send(*SENDER, "--to", "bob@example.org", "--subject", "file", "--body-file", str(body_file))

    piped, from_file = Message.objects.order_by("id")
    assert _parsed(piped).get_content().splitlines() == ["From a pipe"]
    assert _parsed(from_file).get_content().splitlines() == ["Grüße aus der Datei"]


def test_html_and_attachments_are_built_into_the_message(tmp_path: Path):
    html = tmp_path / "body.html"
    html.write_text("<p>Hello <b>Bob</b></p>", encoding="utf-8")
    pdf = tmp_path / "invoice 2024-03.pdf"
    pdf_bytes = b"%PDF-1.4\n" + bytes(range(256)) * 40
    pdf.write_bytes(pdf_bytes)
    unknown = tmp_path / "data.blob"
    unknown.write_bytes(b"\x00\x01\x02")

    send(
        *SENDER,
        "--to",
        "bob@example.org",
        "--subject",
        "Invoice",
        "--body",
        "See attached.",
        "--html-file",
        str(html),
        "--attach",
        str(pdf),
        "--attach",
        str(unknown),
    )

    parsed = _parsed(Message.objects.get())
    leaves = [part for part in parsed.walk() if not part.is_multipart()]
    assert [part.get_content_type() for part in leaves] == [
        "text/plain",
        "text/html",
        "application/pdf",
        "application/octet-stream",
    ]
    assert leaves[1].get_content().strip() == "<p>Hello <b>Bob</b></p>"
    assert leaves[2].get_filename() == "invoice 2024-03.pdf"
    assert leaves[2].get_content() == pdf_bytes
    assert leaves[3].get_filename() == "data.blob"
    assert leaves[3].get_content() == b"\x00\x01\x02"


def test_the_lane_and_the_idempotency_key_are_kept():
    args = (
        *SENDER,
        "--to",
        "bob@example.org",
        "--subject",
        "Report",
        "--body",
        "x",
        "--lane",
        "bulk",
        "--idempotency-key",
        "report-2024-w10",
    )

    first = send(*args)
    again = send(*args)

    message = Message.objects.get()
    assert message.lane == Lane.BULK
    assert message.idempotency_key == "report-2024-w10"
    assert "Queued message" in first
    assert f"Already queued as message {message.pk}" in again


def test_an_invalid_address_exits_2_with_a_clear_message_and_queues_nothing(monkeypatch, capsys):
    code, out, err = run_postroom(
        "send",
        *SENDER,
        "--to",
        "bob@@example.org",
        "--subject",
        "Hi",
        "--body",
        "x",
        monkeypatch=monkeypatch,
        capsys=capsys,
    )

    assert code == 2
    assert "Recipient 1 (To): 'bob@@example.org' is not valid." in err
    assert "Nothing was queued." in err
    assert not Message.objects.exists()


def test_a_line_break_in_the_subject_is_refused(monkeypatch, capsys):
    code, _, err = run_postroom(
        "send",
        *SENDER,
        "--to",
        "bob@example.org",
        "--subject",
        "Hi\r\nBcc: victim@example.net",
        "--body",
        "x",
        monkeypatch=monkeypatch,
        capsys=capsys,
    )

    assert code == 2
    assert "Subject: the subject contains a line break; header injection is not allowed." in err
    assert not Message.objects.exists()


def test_a_line_break_in_a_display_name_is_refused(monkeypatch, capsys):
    code, _, err = run_postroom(
        "send",
        "--from",
        "Eve\nBcc: victim@example.net <eve@acme.example>",
        "--to",
        "bob@example.org",
        "--subject",
        "Hi",
        "--body",
        "x",
        monkeypatch=monkeypatch,
        capsys=capsys,
    )

    assert code == 2
    assert "line break" in err
    assert not Message.objects.exists()


def test_no_recipient_or_no_body_or_a_missing_file_is_refused(monkeypatch, capsys, tmp_path):
    def refused(*args: str) -> str:
        code, _, err = run_postroom(
            "send", *SENDER, "--subject", "Hi", *args, monkeypatch=monkeypatch, capsys=capsys
        )
        assert code == 2
        return err

    assert "at least one recipient" in refused("--body", "x")
    assert "--body TEXT or --body-file PATH" in refused("--to", "bob@example.org")
    missing = tmp_path / "nope.pdf"
    assert f"--attach {missing}: No such file or directory" in refused(
        "--to", "bob@example.org", "--body", "x", "--attach", str(missing)
    )
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Grüße".encode("latin-1"))
    assert "is not UTF-8 text" in refused("--to", "bob@example.org", "--body-file", str(latin1))
    assert not Message.objects.exists()


def test_an_attachment_over_the_message_limit_is_refused_before_reading(
    monkeypatch, capsys, tmp_path, settings
):
    settings.POSTROOM_MAX_MESSAGE_BYTES = 1000
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)

    code, _, err = run_postroom(
        "send",
        *SENDER,
        "--to",
        "bob@example.org",
        "--subject",
        "Hi",
        "--body",
        "x",
        "--attach",
        str(big),
        monkeypatch=monkeypatch,
        capsys=capsys,
    )

    assert code == 2
    assert "1,001 bytes is over the message limit of 1,000 bytes" in err
    assert not Message.objects.exists()


def test_a_missing_required_option_exits_2(monkeypatch, capsys):
    code, _, err = run_postroom(
        "send", "--to", "bob@example.org", "--body", "x", monkeypatch=monkeypatch, capsys=capsys
    )

    assert code == 2
    assert "--from" in err and "--subject" in err
