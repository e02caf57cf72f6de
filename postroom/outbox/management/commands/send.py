"""`postroom send`: queue one email from the command line.

    postroom send --from me@acme.example --to bob@example.org --subject "Hi" --body "Hello"
    echo "Hello" | postroom send --from me@acme.example --to bob@example.org --subject "Hi"

The message goes into the outbox like any other and leaves through the worker (`postroom run`
or `postroom worker`). Bad input is refused with a clear message and exit code 2, and then
nothing is queued.
"""

from __future__ import annotations

import mimetypes
import sys
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from postroom.core.errors import PostroomError
from postroom.mail.addresses import parse_address, parse_address_list
from postroom.mail.message import Attachment, OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Lane, Message, Source

# Exit code for bad input, as argparse uses for bad arguments (and sysexits' EX_USAGE is 64,
# but one code for "your input is wrong" is simpler for scripts).
EXIT_BAD_INPUT = 2
IDEMPOTENCY_KEY_MAX_LENGTH = Message._meta.get_field("idempotency_key").max_length or 200


class BadInputError(Exception):
    """Input the command refuses before anything is queued."""


class Command(BaseCommand):
    help = "Queue one email in the outbox: postroom send --from ADDR --to ADDR --subject S ..."
    # Tests pass a text stream as the standard input.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        # Long because it declares one option after another; there is nothing to split.
        parser.add_argument(
            "--from",
            dest="sender",
            required=True,
            metavar="ADDR",
            help='the sender: me@acme.example or "Me <me@acme.example>"',
        )
        parser.add_argument(
            "--to",
            action="append",
            default=[],
            metavar="ADDR",
            help="a recipient (repeat for more)",
        )
        parser.add_argument(
            "--cc",
            action="append",
            default=[],
            metavar="ADDR",
            help="a Cc recipient (repeat for more)",
        )
        parser.add_argument(
            "--bcc",
            action="append",
            default=[],
            metavar="ADDR",
            help="a Bcc recipient: in the envelope, never in a header",
        )
        parser.add_argument(
            "--reply-to",
            action="append",
            default=[],
            metavar="ADDR",
            help="where replies should go (repeat for more)",
        )
        parser.add_argument("--subject", required=True)
        body = parser.add_mutually_exclusive_group()
        body.add_argument("--body", metavar="TEXT", help="the plain-text body")
        body.add_argument(
            "--body-file",
            metavar="PATH",
            help="read the plain-text body (UTF-8) from a file; - for stdin",
        )
        parser.add_argument(
            "--html-file", metavar="PATH", help="an HTML version of the body (UTF-8)"
        )
        parser.add_argument(
            "--attach",
            action="append",
            default=[],
            metavar="PATH",
            help="attach a file (repeat for more)",
        )
        parser.add_argument(
            "--lane",
            choices=Lane.values,
            default=Lane.TRANSACTIONAL,
            help="transactional (default) goes before bulk",
        )
        parser.add_argument(
            "--idempotency-key",
            metavar="KEY",
            help="sending again with the same key queues nothing new",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stdin: IO[str] = options.get("stdin") or sys.stdin
        try:
            email = _outgoing_email(options, stdin=stdin)
            key = options["idempotency_key"]
            if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
                raise BadInputError(  # noqa: TRY301 - one message and exit code for every bad input
                    f"--idempotency-key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters."
                )
            message = message_enqueue(
                email=email,
                source=Source.CLI,
                lane=Lane(options["lane"]),
                idempotency_key=key,
            )
        except (BadInputError, PostroomError) as error:
            text = error.message if isinstance(error, PostroomError) else str(error)
            raise CommandError(f"{text} Nothing was queued.", returncode=EXIT_BAD_INPUT) from None
        if message.is_replay:
            self.stdout.write(
                f"Already queued as message {message.pk} {message.message_id} "
                f"(same idempotency key); status: {message.get_status_display().lower()}."
            )
            return
        self.stdout.write(self.style.SUCCESS(f"Queued message {message.pk} {message.message_id}"))
        self.stdout.write(
            "The worker sends it (postroom run, or postroom worker); follow it on the Outbox page."
        )


def _outgoing_email(options: dict[str, Any], *, stdin: IO[str]) -> OutgoingEmail:
    if not (options["to"] or options["cc"] or options["bcc"]):
        raise BadInputError("Give at least one recipient with --to, --cc or --bcc.")
    html = _read_text(Path(options["html_file"]), "--html-file") if options["html_file"] else None
    return OutgoingEmail(
        from_=parse_address(options["sender"], label="--from", field="from"),
        to=parse_address_list(options["to"], kind="To", field="to"),
        cc=parse_address_list(options["cc"], kind="Cc", field="cc"),
        bcc=parse_address_list(options["bcc"], kind="Bcc", field="bcc"),
        reply_to=parse_address_list(options["reply_to"], kind="Reply-To", field="reply_to"),
        subject=options["subject"],
        text=_body(options, stdin=stdin, has_html=html is not None),
        html=html,
        attachments=[_attachment(Path(path)) for path in options["attach"]],
    )


def _body(options: dict[str, Any], *, stdin: IO[str], has_html: bool) -> str | None:
    if options["body"] is not None:
        return str(options["body"])
    if options["body_file"] not in (None, "-"):
        return _read_text(Path(options["body_file"]), "--body-file")
    if options["body_file"] is None and stdin.isatty():
        if has_html:
            return None  # an HTML-only message
        raise BadInputError(
            "Give the body with --body TEXT or --body-file PATH, or pipe it on standard input."
        )
    return stdin.read()


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as error:
        raise BadInputError(f"{option} {path}: {error.strerror or error}.") from None
    except UnicodeDecodeError:
        raise BadInputError(
            f"{option} {path} is not UTF-8 text; convert it (iconv -t UTF-8) or attach it "
            "with --attach instead."
        ) from None


def _attachment(path: Path) -> Attachment:
    limit = settings.POSTROOM_MAX_MESSAGE_BYTES
    try:
        # Checked before reading, so a huge file is refused without filling the memory.
        size = path.stat().st_size
        if not path.is_file():
            raise BadInputError(f"--attach {path}: not a regular file.")
        if size > limit:
            raise BadInputError(
                f"--attach {path}: {size:,} bytes is over the message limit of {limit:,} bytes "
                "(POSTROOM_MAX_MESSAGE_BYTES)."
            )
        data = path.read_bytes()
    except OSError as error:
        raise BadInputError(f"--attach {path}: {error.strerror or error}.") from None
    content_type, encoding = mimetypes.guess_type(path.name)
    if content_type is None or encoding is not None:
        # Unknown, or compressed (report.csv.gz is gzip data, not CSV): plain bytes.
        content_type = "application/octet-stream"
    return Attachment(filename=path.name, content_type=content_type, data=data)
