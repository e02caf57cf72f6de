"""The bulk renderer gives, byte for byte, what build_message gives for the merged fields.

`CompiledTemplate.render` never builds an EmailMessage; `build_message` always does. For every
case below — non-ASCII names and subjects, folding, long lines, dots, lone CR/LF, quotes and
commas, empty parts, IDN domains, merged values with line breaks or markup — the two must
produce identical bytes, on every supported Python (`make test-pythons`). The expected message
is built from the merge done here by plain string replacement, not by the renderer's own filler.
Both builders fold the headers the renderer fills in through postroom.mail.folding, so the
identity does not depend on the running `email` package's folding (its contract, and the
headers' reading back, are checked in tests/mail/test_encoding.py).
"""

from __future__ import annotations

import email
import html
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest

from postroom.core.errors import ValidationError
from postroom.mail import bulk
from postroom.mail.addresses import Address, normalize_address, parse_address
from postroom.mail.bulk import CompiledTemplate, compile_template
from postroom.mail.folding import date_line, fold_mailbox, fold_message_id, fold_unstructured
from postroom.mail.merge import CompiledField, PlaceholderFiller
from postroom.mail.message import OutgoingEmail, build_message

DATE = datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
MESSAGE_ID = "<0123456789abcdef0123456789abcdef@example.com>"
SENDER = Address("Example Trading", "billing@example.com")


def merge(template: str | None, values: Mapping[str, str], *, is_html: bool = False) -> str | None:
    """The merge, done the obvious way (line ends normalised as compile_template documents)."""
    if not template:
        return None
    text = template.replace("\r\n", "\n").replace("\r", "\n")
    for name, value in values.items():
        text = text.replace("{{ " + name + " }}", html.escape(value) if is_html else value)
    return text


@dataclass
class Case:
    id: str
    subject: str = "Hello {{ first }}"
    text: str | None = "Dear {{ first }},\n\nyour invoice is attached.\n"
    html: str | None = None
    to: Address = field(default_factory=lambda: Address("Jane Doe", "jane@example.net"))
    values: dict[str, str] = field(default_factory=lambda: {"first": "Jane"})
    headers: dict[str, str] = field(default_factory=dict)
    reply_to: list[Address] = field(default_factory=list)
    sender: Address = SENDER
    message_id: str = MESSAGE_ID
    date: datetime = DATE
    is_exact_path: bool = False  # rendered by build_message itself (see bulk's docstring)


LONG_HTML = (
    '<html><body><p class="greeting">Dear {{ first }},</p>\n<table>'
    + "".join(f'<tr><td class="item">Item {n}</td><td>25.00</td></tr>' for n in range(30))
    + "</table>\n<p>Kind regards</p></body></html>\n"
)

CASES = [
    Case("ascii text only"),
    Case("text and html", html="<p>Dear {{ first }},</p>\n<p>your invoice.</p>\n"),
    Case("html only", text=None, html=LONG_HTML),
    Case("long html lines are quoted-printable", html=LONG_HTML),
    Case("no body at all", text=None, html=None),
    Case("empty text means no text part", text="", html="<p>Hi {{ first }}</p>"),
    Case("empty html means no html part", html=""),
    Case("static body, merged subject", text="The same for everyone.\n"),
    Case("static everything", subject="News", text="Static.\n", html="<p>Static.</p>"),
    # Names.
    Case("accented name", to=Address("Zoë Müller", "zoe@example.net")),
    Case("japanese name", to=Address("山田 太郎", "taro@example.jp")),
    Case("emoji name", to=Address("🎉 Party Person", "party@example.net")),
    Case("comma in name", to=Address("Doe, Jane", "jane@example.net")),
    Case("quotes in name", to=Address('Jane "JJ" Doe', "jane@example.net")),
    Case("backslash in name", to=Address("Back\\slash", "b@example.net")),
    Case("comma and accent", to=Address("Dupont, Zoë", "zoe@example.net")),
    Case("parentheses", to=Address("O'Neil, Mary-Ann (Sales)", "mary@example.net")),
    Case("no name", to=Address("", "jane@example.net")),
    Case("long ascii name", to=Address("A Very Long Display Name " * 4, "x@example.net")),
    Case("long accented name", to=Address("Ünïcode Ünïcode " * 6, "u@example.net")),
    Case("long quoted name", to=Address(f"Smith-Johnson, Alexandra ({'W' * 70})", "a@example.net")),
    Case("double blanks in name", to=Address("Jane  Doe", "jane@example.net")),
    Case("upper-case domain", to=Address("Jane", "Jane@EXAMPLE.net")),
    Case("idn domain", to=Address("Zoë", "zoe@bücher.example")),
    Case("utf-8 local part", to=Address("Jöhn", "jöhn@example.net"), is_exact_path=True),
    # Subjects.
    Case("accented subject", values={"first": "Zoë"}),
    Case(
        "japanese subject",
        subject="{{ first }}様、ご注文ありがとうございます",
        values={"first": "山田"},
    ),
    Case("emoji subject", subject="🎉 {{ first }} 🎉"),
    Case("long ascii subject", subject="A subject that is long enough to be folded " * 3),
    Case("subject of 66 and 67", subject="x" * 60 + "{{ first }}", values={"first": "abcdefg"}),
    Case("unbreakable subject", subject="y" * 200 + "{{ first }}"),
    Case(
        "greek subject",
        subject="Η παραγγελία σας, {{ first }}, έχει αποσταλεί και θα παραδοθεί την Τρίτη το πρωί",
        values={"first": "Νίκο"},
    ),
    Case("long repeated unicode", subject="Ünïcode {{ first }} " * 12, values={"first": "Ünïcode"}),
    Case("subject with tabs and blanks", subject="  tab\there  {{ first }}  "),
    Case("empty merged subject", subject="{{ first }}", values={"first": ""}),
    Case("encoded-word look-alike subject", subject="=?utf-8?q?{{ first }}?="),
    Case("braces in the text", subject="{literal} {{ first }}", text="a {b} {{ first }} }}\n"),
    # Bodies.
    Case("long lines over 998", text="{{ first }} " + "x" * 2500 + "\n" + "y " * 800),
    Case(
        "dot lines",
        text=".leading dot {{ first }}\n.\n..\nmiddle\n.\r\nend\n",
        html=".\n<p>.{{ first }}</p>\n.\r\n",
    ),
    Case(
        "crlf dot crlf in a value",
        text="before\n{{ body }}\nafter\n",
        values={"first": "Jane", "body": "a\n.\r\nb"},
        is_exact_path=True,  # a CR in a value: see bulk's docstring
    ),
    Case(
        "lf dot lf in a value",
        text="before\n{{ body }}\nafter\n",
        values={"first": "Jane", "body": "a\n.\nb\n..\n"},
    ),
    Case("lone cr and lf in the template", text="one\rtwo\nthree\r\n{{ first }}\rfour"),
    Case(
        "value with line feeds",
        text="Address:\n{{ body }}\nThanks\n",
        values={"first": "Jane", "body": "12 Main St\nSpringfield\n"},
    ),
    Case(
        "value ending the template with a line feed",
        text="Hi\n{{ body }}",
        values={"first": "Jane", "body": "last\n"},
    ),
    Case("value empty at the end", text="Hi\n{{ first }}", values={"first": ""}),
    Case("body merging to nothing", text="{{ first }}", values={"first": ""}, is_exact_path=True),
    Case(
        "html part merging to nothing", html="{{ first }}", values={"first": ""}, is_exact_path=True
    ),
    Case("trailing blanks", text="trailing {{ first }} \nand tab\t\n"),
    Case(
        "french body",
        text="Bonjour {{ first }},\nvoilà votre facture de juillet.\n" * 10,
        values={"first": "Zoë"},
    ),
    Case(
        "japanese body",
        text="{{ first }}様\n" + "日本語のテキストです。\n" * 30,
        values={"first": "山田"},
    ),
    Case(
        "markup in a value",
        html="<p>Hello {{ first }}</p>",
        values={"first": "<script>alert(1)</script> & co"},
    ),
    Case("equals signs", text="a=b {{ first }} ==\n=3D\n", values={"first": "x=y"}),
    Case("nul in a value", text="a {{ body }} b\n", values={"first": "Jane", "body": "\x00"}),
    Case("from lines", text="From here\nFrom {{ first }}\n"),
    Case(
        "boundary in a value",
        html="<p>{{ body }}</p>",
        values={
            "first": "Jane",
            "body": "--PLACEHOLDER",
        },  # replaced by the template's boundary in the test
    ),
    Case(
        "placeholder used twice",
        text="{{ first }} and {{ first }} and {{ last }}\n",
        values={"first": "A", "last": "B"},
    ),
    # Headers.
    Case(
        "reply-to",
        reply_to=[Address("Help Desk", "help@example.com"), Address("", "h2@example.com")],
    ),
    Case(
        "custom headers, static and merged",
        headers={
            "List-Unsubscribe": "<https://example.com/u/{{ token }}>, <mailto:u@example.com>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Campaign": "Été 2025",
            "X-Recipient": "{{ first }}",
        },
        values={"first": "Zoë", "token": "abc123"},
    ),
    Case("sender with accents", sender=Address("Bücher & Co", "shop@bücher.example")),
    Case("sender needing smtputf8", sender=Address("", "jöhn@example.com"), is_exact_path=True),
    Case("message-id on its own line", message_id="<" + "a" * 32 + "@" + "d" * 35 + ".example>"),
    Case("message-id too long to fold", message_id="<" + "a" * 32 + "@" + "d" * 60 + ".example>"),
    Case(
        "date with an offset",
        date=datetime(2025, 12, 24, 18, 5, 9, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ),
]


def _compile(case: Case) -> CompiledTemplate:
    return compile_template(
        from_=case.sender,
        reply_to=case.reply_to,
        subject_template=case.subject,
        text_template=case.text,
        html_template=case.html,
        headers=case.headers,
    )


def _expected(case: Case, template: CompiledTemplate, values: Mapping[str, str]) -> bytes:
    email_fields = OutgoingEmail(
        from_=case.sender,
        to=[case.to],
        reply_to=case.reply_to,
        subject=merge(case.subject, values) or "",
        text=merge(case.text, values),
        html=merge(case.html, values, is_html=True),
        headers={name: merge(value, values) or "" for name, value in case.headers.items()},
    )
    return build_message(
        email_fields, message_id=case.message_id, date=case.date, boundary=template.boundary
    ).raw


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_render_is_byte_identical_to_build_message(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = _compile(case)
    values = dict(case.values)
    if values.get("body") == "--PLACEHOLDER":
        values["body"] = f"\n--{template.boundary}\nContent-Type: text/html\n\n<b>x</b>"
    expected = _expected(case, template, values)
    if not case.is_exact_path:
        # The case must be handled by the fast renderer, not handed to build_message.
        def refuse(*args: object, **kwargs: object) -> bytes:
            raise AssertionError("took the exact path")

        monkeypatch.setattr(CompiledTemplate, "_render_exact", refuse)
    rendered = template.render(
        to=case.to, message_id=case.message_id, date=case.date, values=values
    )
    assert rendered == expected
    _assert_wire_format(rendered)


def test_build_message_folds_what_render_fills_in_with_the_same_functions() -> None:
    # Why the identity above holds on any Python: these lines do not come from the package.
    to = Address(f"Smith-Johnson, Alexandra ({'W' * 70})", "a@example.net")  # the package
    subject = "Η παραγγελία σας έχει αποσταλεί και θα παραδοθεί την Τρίτη το πρωί στη διεύθυνσή σας"
    email_fields = OutgoingEmail(
        from_=SENDER, to=[to], subject=subject, text="x\n", headers={"X-Campaign": "Été 2025"}
    )
    raw = build_message(email_fields, message_id=MESSAGE_ID, date=DATE).raw
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii") + "\r\n"
    for line in (
        fold_mailbox("To", to.display_name, to.addr_spec),  # (the package unquotes this name)
        fold_unstructured("Subject", subject),
        date_line(DATE),
        fold_message_id(MESSAGE_ID),
        fold_unstructured("X-Campaign", "Été 2025"),
    ):
        assert line in head


def _assert_wire_format(raw: bytes) -> None:
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert not message.defects


def test_the_boundary_cannot_be_forged_by_a_merged_value() -> None:
    template = compile_template(
        from_=SENDER, subject_template="x", text_template="{{ v }}", html_template="<p>x</p>"
    )
    forged = f"--{template.boundary}\nContent-Type: text/html\n\n<script>\n--{template.boundary}--"
    raw = template.render(
        to=Address("", "a@example.net"), message_id=MESSAGE_ID, date=DATE, values={"v": forged}
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == forged + "\n"


def test_random_templates_render_byte_identical_to_build_message() -> None:
    rng = random.Random(1870)
    pieces = [
        "a", "word ", "é", "日本", "😀", " ", "\t", "\n", "\r\n", "\r", ".", "=", "<b>", "&",
        "x" * 40, "{{ a }}", "{{ b }}", "\n.\n", "--", "{x}", "x}",
    ]  # fmt: skip
    value_pieces = ["", "Zoë", "x" * 50, "\n", "<&>", " ", "=", "日本語", ".\n."]
    names = ["Jane Doe", "Zoë Müller", "Doe, Jane", "", "山田 太郎"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25))) or None
        html_source = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25))) or None
        subject = "".join(rng.choice(["Hi ", "{{ a }}", "é", "x" * 30, " "]) for _ in range(4))
        values = {
            "a": "".join(rng.choice(value_pieces) for _ in range(3)),
            "b": "".join(rng.choice(value_pieces) for _ in range(3)),
        }
        case = Case(
            "random",
            subject=subject,
            text=text,
            html=html_source,
            to=Address(rng.choice(names), "someone@example.net"),
            values=values,
        )
        template = _compile(case)
        subject_value = merge(subject, {"a": values["a"]}) or ""
        if "\n" in subject_value:
            with pytest.raises(ValidationError):
                template.render(to=case.to, message_id=MESSAGE_ID, date=DATE, values=values)
            continue
        rendered = template.render(to=case.to, message_id=MESSAGE_ID, date=DATE, values=values)
        assert rendered == _expected(case, template, values), (text, html_source, values)


# -- validation ----------------------------------------------------------------------------------


def _render(template: CompiledTemplate, values: Mapping[str, object]) -> bytes:
    return template.render(
        to=parse_address("jane@example.net"), message_id=MESSAGE_ID, date=DATE, values=values
    )


def test_a_merged_subject_with_a_line_break_is_refused() -> None:
    template = compile_template(
        from_=SENDER, subject_template="Hi {{ name }}", text_template="x", html_template=None
    )
    with pytest.raises(ValidationError, match="header injection is not allowed") as caught:
        _render(template, {"name": "Jane\r\nBcc: all@example.com"})
    assert caught.value.field == "subject"


def test_a_merged_header_with_a_line_break_is_refused() -> None:
    template = compile_template(
        from_=SENDER,
        subject_template="Hi",
        text_template="x",
        html_template=None,
        headers={"List-Unsubscribe": "<https://example.com/u/{{ token }}>"},
    )
    with pytest.raises(ValidationError, match="List-Unsubscribe: the value contains a line break"):
        _render(template, {"token": "x>\nBcc: all@example.com"})


def test_a_missing_value_names_the_merge_field() -> None:
    template = compile_template(
        from_=SENDER, subject_template="Hi {{ first_name }}", text_template="x", html_template=None
    )
    assert template.field_names == {"first_name"}
    with pytest.raises(ValidationError, match=r"\{\{ first_name \}\}") as caught:
        _render(template, {})
    assert caught.value.field == "values"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"subject_template": "Hi\r\nBcc: x"}, "header injection"),
        ({"text_template": "{{ 1 + 1 }}"}, "not allowed in a template"),
        ({"headers": {"Bcc": "x@example.com"}}, "never appear in the headers"),
        ({"headers": {"X-A": "a\nb"}}, "line break"),
        ({"from_": Address("", "billing@localhost")}, "not valid"),
    ],
)
def test_compile_refuses_bad_templates(fields: dict[str, object], problem: str) -> None:
    arguments: dict[str, object] = {
        "from_": SENDER,
        "subject_template": "Hi",
        "text_template": "x",
        "html_template": None,
    }
    arguments.update(fields)
    with pytest.raises(ValidationError, match=problem):
        compile_template(**arguments)  # type: ignore[arg-type]


# -- the template object -------------------------------------------------------------------------


def test_the_same_template_gets_the_same_hash_and_boundary() -> None:
    first = _compile(Case("a", html="<p>x</p>"))
    second = _compile(Case("b", html="<p>x</p>"))
    other = _compile(Case("c", html="<p>y</p>"))
    assert first.content_hash == second.content_hash != other.content_hash
    assert first.boundary == second.boundary != other.boundary
    assert first.boundary is not None and first.content_hash[:20] in first.boundary
    assert _compile(Case("d")).boundary is None  # a single part has none


def test_the_template_says_what_the_envelope_needs() -> None:
    template = _compile(Case("a", sender=Address("", "billing@bücher.example")))
    assert template.envelope_from == "billing@xn--bcher-kva.example"
    assert template.needs_smtputf8 is False
    assert _compile(Case("b", sender=Address("", "jöhn@example.com"))).needs_smtputf8 is True
    assert normalize_address("jöhn@example.net").needs_smtputf8 is True


def test_another_field_filler_plugs_in() -> None:
    """The seam the Jinja2 sandbox will use: a filler that cannot split lines still works."""

    class Shouting:
        """Upper-cases the template; cannot fill a body line by line."""

        def __init__(self, field: CompiledField) -> None:
            self.field = field
            self.is_static = field.is_static
            self.names = field.names

        def fill(self, values: Mapping[str, object]) -> str:
            return self.field.fill(values)

        def split_lines(self) -> list[CompiledField] | None:
            return None

    class ShoutingFiller:
        def compile(self, source: str, *, is_html: bool) -> CompiledField:
            shouted = source.upper().replace("{{ NAME }}", "{{ name }}")
            return Shouting(PlaceholderFiller().compile(shouted, is_html=is_html))

    template = compile_template(
        from_=SENDER,
        subject_template="hello {{ name }}",
        text_template="dear {{ name }}\nbye\n",
        html_template=None,
        filler=ShoutingFiller(),
    )
    raw = _render(template, {"name": "Zoë"})
    assert b"Subject: HELLO =?utf-8?q?Zo=C3=AB?=\r\n" in raw
    assert b"DEAR Zo=C3=AB\r\nBYE\r\n" in raw


def test_bulk_needs_no_email_message_per_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    template = _compile(Case("a", html="<p>{{ first }}</p>", to=Address("Zoë", "z@example.net")))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("EmailMessage built per recipient")

    monkeypatch.setattr(bulk, "build_message", refuse)
    monkeypatch.setattr("email.message.EmailMessage.__init__", refuse)
    raw = template.render(
        to=Address("Zoë", "z@example.net"),
        message_id=MESSAGE_ID,
        date=DATE,
        values={"first": "Zoë"},
    )
    assert b"To: =?utf-8?q?Zo=C3=AB?= <z@example.net>\r\n" in raw
