"""The fast encoders against the `email` package itself, byte for byte.

postroom.mail.folding and postroom.mail.encoding re-implement the package's header folding and
text-body encodings so that bulk mail can be rendered in tens of microseconds. These tests are
the proof that the ports say exactly what the package says: on hand-picked tricky inputs and on
a few thousand seeded random ones. The one deliberate difference — unstructured headers the
package folds so that they do not read back as written (lost or doubled blanks around encoded
words, or encoded words glued to text) — is checked separately: there the output must read
back exactly.
"""

from __future__ import annotations

import email
import email.quoprimime
import random
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address as HeaderAddress
from email.message import MIMEPart
from email.utils import format_datetime

import pytest

from postroom.mail import encoding, folding
from postroom.mail.encoding import POLICY, choose_text_cte, encode_text_body, qp_encode_line
from postroom.mail.folding import date_line, fold_mailbox, fold_message_id, fold_unstructured

# Characters that exercise every branch: blanks of all kinds, RFC 5322 specials, quotes and
# backslashes, multi-byte UTF-8 (2, 3 and 4 bytes), words too long for a line.
_PIECES = [
    "a", "b", "Z", "word", "é", "ë", "ü", "日", "本", "😀", " ", " ", " ", "\t", ".", ",", '"',
    "\\", "(", ")", "<", ">", "@", ":", ";", "[", "]", "_", "=", "?", "-", "\u3000", "\xa0",
    "x" * 20, "W" * 80,
]  # fmt: skip


def _random_text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, size)))


def _package_unstructured(name: str, value: str) -> str:
    return POLICY.header_factory(name, value).fold(policy=POLICY)


def _package_mailbox(name: str, display_name: str, addr_spec: str) -> str:
    value = [HeaderAddress(display_name, addr_spec=addr_spec)]
    return POLICY.header_factory(name, value).fold(policy=POLICY)


def _read_back(folded: str) -> str:
    message = email.message_from_string(folded + "\r\n", policy=email.policy.default)
    return str(message[folded.split(":", 1)[0]])


def _package_reads_back(name: str, value: str, folded: str) -> bool:
    if folding._LOOKS_ENCODED.search(value):
        return False  # the package writes it as typed, and readers decode it
    return "=?" not in folded or folding._decoded_value(name, folded) == value.lstrip(" \t")


SUBJECTS = [
    "",
    "Hello",
    "Your invoice INV-100001 is ready",
    "x" * 66,  # fits after "Subject: " exactly
    "x" * 67,  # one too many: the package moves it to a continuation line
    "x" * 75,
    "x" * 76,  # too long for any line: encoded words
    "y" * 300,
    "What is 2+2=? Four.",
    "A long ASCII subject that has to be folded at a blank because it is longer than a line",
    "Votre facture, Zoë",
    "Zoë de Müller",
    "Réservation confirmée : séjour à Évian-les-Bains du 12 au 19 août, chambre double vue lac",
    "Ihre Bestellung Nr. 12345 wurde versandt – voraussichtliche Zustellung: Dienstag",
    "ご注文ありがとうございます。発送準備が整いましたのでお知らせいたします。到着予定日は火曜日です",
    "🎉 Party 🎉 tonight",
    "tabs\tinside\tthe subject",
    "  leading and trailing blanks  ",
    "double  blanks",
    'quotes "and" (comments) <angles> and, commas; colons: at@signs',
    "a\u3000ideographic space and a\xa0no-break space",
    "=?utf-8?q?looks_encoded?= but is not",
    "ends with an encoded word é",
]

NAMES = [
    "",
    "Jane Doe",
    "Zoë Müller",
    "José García-Núñez",
    "山田 太郎",
    "Doe, Jane",
    'Jane "JJ" Doe',
    "O'Neil, Mary-Ann (Sales)",
    "Back\\slash",
    "Dupont, Zoë",
    "A Very Long Display Name That Does Not Fit On One Header Line At All Really",
    "Ünïcode Ünïcode Ünïcode Ünïcode Ünïcode Ünïcode Ünïcode Ünïcode Ünïcode",
    "x" * 90,
    "🎉",
]

ADDRESSES = [
    "jane@example.com",
    "a.very.long.local.part.for.testing@some-subdomain.example-company.co.uk",
    "x@y.example",
]


@pytest.mark.parametrize("value", SUBJECTS)
def test_subjects_fold_exactly_as_the_email_package(value: str) -> None:
    expected = _package_unstructured("Subject", value)
    if _package_reads_back("Subject", value, expected):
        assert fold_unstructured("Subject", value) == expected
    assert _read_back(fold_unstructured("Subject", value)).lstrip() == value.lstrip()


@pytest.mark.parametrize("display_name", NAMES)
@pytest.mark.parametrize("addr_spec", ADDRESSES)
def test_mailboxes_fold_exactly_as_the_email_package(display_name: str, addr_spec: str) -> None:
    assert fold_mailbox("To", display_name, addr_spec) == _package_mailbox(
        "To", display_name, addr_spec
    )


def test_the_fast_paths_handle_the_common_names_without_the_package() -> None:
    # If these fell back to the package, render would cost hundreds of µs per recipient.
    for name in ["Jane Doe", "Zoë Müller", "Doe, Jane", "山田 太郎", 'Jane "JJ" Doe']:
        words = folding._simple_words(name)
        assert words is not None
        folding._fast_fold_mailbox("To", name, words, "jane@example.com", 76)
    for subject in ["Hello", "Votre facture, Zoë", "x" * 300, SUBJECTS[11]]:
        folding._fast_fold_unstructured("Subject", subject, 76)


def test_random_unstructured_values_fold_as_the_package_or_read_back_exactly() -> None:
    rng = random.Random(5322)
    deviations = 0
    for _ in range(2000):
        value = _random_text(rng, 30)
        ours, theirs = fold_unstructured("Subject", value), _package_unstructured("Subject", value)
        assert _read_back(ours).lstrip() == value.lstrip(), value
        if _package_reads_back("Subject", value, theirs):
            assert ours == theirs, value
        else:
            deviations += 1
        # The shortcut and the whole-tree port agree with each other as well.
        if "=?" not in value:
            try:
                tree = folding._tree_fold_unstructured("Subject", value)
                fast = folding._fast_fold_unstructured("Subject", value, 76)
            except folding._UnsupportedError:
                continue  # a shape the port hands to the package
            assert tree == fast, value
    assert deviations < 150  # the package's faults are the exception, not the rule


def test_random_mailboxes_fold_exactly_as_the_package() -> None:
    rng = random.Random(2047)
    for _ in range(2000):
        display_name = " ".join(_random_text(rng, 12).split())
        addr_spec = rng.choice(ADDRESSES)
        assert fold_mailbox("To", display_name, addr_spec) == _package_mailbox(
            "To", display_name, addr_spec
        ), display_name


def test_a_greek_subject_keeps_the_blank_the_package_loses() -> None:
    subject = "Η παραγγελία σας έχει αποσταλεί και θα παραδοθεί την Τρίτη το πρωί στη διεύθυνσή σας"
    assert _read_back(_package_unstructured("Subject", subject)) != subject  # CPython's fault
    folded = fold_unstructured("Subject", subject)
    assert _read_back(folded) == subject
    assert max(len(line) for line in folded.split("\r\n")) <= 76


@pytest.mark.parametrize("length", [10, 40, 64, 65, 70, 75, 76, 90, 200])
def test_message_ids_fold_exactly_as_the_package(length: int) -> None:
    message_id = "<" + "a" * 32 + "@" + ("d" * length)[: max(length - 4, 1)] + ".com>"
    expected = POLICY.header_factory("Message-ID", message_id).fold(policy=POLICY)
    assert fold_message_id(message_id) == expected


@pytest.mark.parametrize(
    "offset",
    [timedelta(0), timedelta(hours=2), timedelta(hours=-5, minutes=-30), timedelta(hours=14)],
)
def test_dates_are_written_as_format_datetime(offset: timedelta) -> None:
    for day in range(1, 40, 3):
        date = datetime(2025, 1, 1, 0, 0, 5, tzinfo=timezone(offset)) + timedelta(days=day * 9.7)
        assert date_line(date) == f"Date: {format_datetime(date)}\r\n"
    assert date_line(datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)) == (
        "Date: Fri, 31 Dec 1999 23:59:59 +0000\r\n"
    )


# -- bodies --------------------------------------------------------------------------------------

BODIES = [
    "",
    "Hello\n",
    "no final line end",
    ".\n.leading dot\n..\nmiddle\n.\r\nend",
    "lone\rcarriage\rreturns and lone\nline feeds\r\nand pairs\n\n\n",
    "trailing blank \ntrailing tab\t\n \n\t\n",
    "x" * 75 + "\n" + "x" * 76 + "\n" + "x" * 77 + "\n" + "y" * 2000 + "\n",
    "= signs == everywhere =\n=3D\n" + "=" * 200,
    "Bonjour Zoë, voilà votre facture.\nMerci !\n",
    "日本語のテキストです。\n" * 20,
    "mixed 😀 emoji and " + "long " * 100 + "\n",
    "NUL \x00 and other controls \x0b\x0c\x1b\n",
    "From the start of a line\nFrom me\n",
    "--===============0123456789abcdef0123==\n",
    "é" * 40 + " " + "é" * 40 + " \n" + "x" * 74 + "é\n" + "x" * 73 + " \n" + "x" * 75 + "\t\n",
]


def _package_part_body(text: str, cte: str) -> bytes:
    part = MIMEPart(policy=POLICY)
    part.set_content(text, cte=cte)
    return part.as_bytes(policy=POLICY).split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize("text", BODIES)
def test_text_bodies_encode_exactly_as_the_email_package(text: str) -> None:
    cte, body = encode_text_body(text)
    assert cte == choose_text_cte(text)
    assert body == _package_part_body(text, cte)
    # The other encodings as well, whichever the rule would pick.
    for other in ("quoted-printable", "base64"):
        normal = encoding._normal_body(text)
        ours = (
            encoding._qp_body(normal)
            if other == "quoted-printable"
            else (encoding.base64_body(normal.replace(b"\n", b"\r\n")))
        )
        assert ours == _package_part_body(text, other)


def test_random_bodies_encode_exactly_as_the_email_package() -> None:
    rng = random.Random(2045)
    pieces = [
        "a",
        "é",
        " ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        ".",
        "=",
        "x" * 70,
        "y" * 100,
        "\x00",
        "日本",
    ]
    for _ in range(1500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        cte, body = encode_text_body(text)
        assert body == _package_part_body(text, cte), repr(text)
        normal = encoding._normal_body(text)
        expected = email.quoprimime.body_encode(normal.decode("latin-1"), 76)
        assert encoding._qp_body(normal) == expected.replace("\n", "\r\n").encode()
        # Quoted-printable is line-local: encoding line by line gives the same bytes.
        by_line = b"".join(qp_encode_line(line) + b"\r\n" for line in normal.split(b"\n")[:-1])
        assert by_line == encoding._qp_body(normal)


def test_the_encoding_choice() -> None:
    assert choose_text_cte("short ASCII lines\n") == "7bit"
    assert choose_text_cte("x" * 77) == "quoted-printable"  # too long for 7bit (76, RFC 2045)
    assert choose_text_cte("Bonjour Zoë, voici votre facture.\n") == "quoted-printable"
    assert choose_text_cte("日本語のテキスト\n") == "base64"  # 1 byte in 6 escaped tips it
    assert choose_text_cte("a\x00b") != "7bit"
    boundary = "===============0123=="
    assert choose_text_cte(f"--{boundary}\n", boundaries=[boundary]) != "7bit"
    assert choose_text_cte(f"--{boundary}\n") == "7bit"
