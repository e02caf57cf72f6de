"""What text may go into a header field or a MIME parameter: the checks against header injection.

A literal CR or LF would end a header line, so control characters are refused everywhere. That
is not enough: the `email` package decodes RFC 2047 encoded words it finds in the values it is
given and, before CPython's fix for CVE-2024-6923 (3.11.7 has no fix, and users run whatever
their distribution ships), writes the decoded text back unencoded. A display name such as
`=?utf-8?q?x=0D=0AReply-To:_evil@example?=` holds no control character, yet comes out as a
second header line. So the checks here look inside encoded words too, whatever the Python.

Three levels, for three kinds of text:

* `reject_control_characters`: one-line text that never reaches a header (a search filter);
* `check_header_text`: the text of an unstructured header (Subject, X-…), also decoded;
* `check_header_phrase`: a display name or a file name. The package rewrites any encoded word
  in them into other text, so a name holding "=?" would not be written as the person typed it:
  it is refused, with the reason.
"""

from __future__ import annotations

import base64
import binascii
import re

from postroom.core.errors import ValidationError

# C0 and C1 controls except TAB, DEL, the Unicode line/paragraph separators that
# str.splitlines() (and so the email package) treats as line breaks, and lone surrogates
# (they cannot be encoded). One pattern: this runs on every merged subject of a campaign.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# The same controls as bytes of an ASCII-compatible charset (C0 and DEL), for decoded words.
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 2047 §2 encoded-word = "=?" charset "?" encoding "?" encoded-text "?=". Looser than the
# RFC on purpose (blanks and "?" are allowed in the text): the package's parser decodes such
# words too, only noting a defect (email._header_value_parser.get_encoded_word).
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([qQbB])\?(.*?)\?=", re.DOTALL)
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
# Bidi embeddings, overrides and isolates (Unicode UAX #9) reorder the text around them on
# screen: a name could show as another one ("Bank" <x@…> written right to left).
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _control_problem(value: str) -> str | None:
    match = _CONTROL.search(value)
    if match is None:
        return None
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        return "contains an invalid character (a lone surrogate); it cannot be encoded"
    if char in "\r\n\u2028\u2029":
        return "contains a line break; header injection is not allowed"
    if char == "\x00":
        return "contains a NUL character; header injection is not allowed"
    return f"contains the control character U+{ord(char):04X}; remove it"


def reject_control_characters(value: str, *, label: str, what: str, field: str) -> None:
    """Raise ValidationError when `value` holds a line break, NUL or other control character.

    `label` names the place ("Recipient 2 (To)", "Subject"), `what` the thing ("the address").
    """
    problem = _control_problem(value)
    if problem is not None:
        raise ValidationError(f"{label}: {what} {problem}.", field=field)


def _decoded_word(charset: str, encoding: str, text: str) -> tuple[bytes, str]:
    """The bytes and the text a reader gets from one encoded word (leniently, as readers do)."""
    raw = text.encode("utf-8", "surrogatepass")
    if encoding in "qQ":
        data = _Q_ESCAPE.sub(lambda match: bytes.fromhex(match.group(1).decode()), raw)
        data = data.replace(b"_", b" ")  # RFC 2047 §4.2 (2)
    else:
        letters = _NOT_BASE64.sub("", text)
        try:
            data = base64.b64decode(letters + "=" * (-len(letters) % 4))
        except (binascii.Error, ValueError):
            data = b""
    charset = charset.partition("*")[0]  # RFC 2231 §5: charset*language
    try:
        decoded = data.decode(charset, "replace")  # text encodings only: not "base64_codec"
    except (LookupError, ValueError):
        decoded = data.decode("latin-1")  # an unknown charset: still look at every byte
    return data, decoded


def _encoded_word_problem(value: str) -> str | None:
    if "=?" not in value:
        return None
    for match in _ENCODED_WORD.finditer(value):
        data, decoded = _decoded_word(*match.groups())
        if _CONTROL_BYTE.search(data) or _control_problem(decoded):
            return (
                f"holds an encoded word ({match.group()[:40]}…) that decodes to a line break or "
                "another control character; header injection is not allowed"
            )
    return None


def check_header_text(value: str, *, label: str, what: str, field: str) -> None:
    """Refuse control characters in `value`, also where encoded words would decode to them."""
    reject_control_characters(value, label=label, what=what, field=field)
    problem = _encoded_word_problem(value)
    if problem is not None:
        raise ValidationError(f"{label}: {what} {problem}.", field=field)


def check_header_phrase(value: str, *, label: str, what: str, field: str) -> None:
    """Check a display name or a file name: header text, no bidi controls and no encoded-word
    syntax at all. Every path that stores a name (users, contacts, the company) applies this."""
    check_header_text(value, label=label, what=what, field=field)
    if "\t" in value:
        raise ValidationError(f"{label}: {what} contains a tab; use a space.", field=field)
    if _BIDI_CONTROL.search(value):
        raise ValidationError(
            f"{label}: {what} contains an invisible character that reverses the text on screen "
            "(a bidi control); remove it.",
            field=field,
        )
    if "=?" in value:
        raise ValidationError(
            f'{label}: {what} contains "=?", which starts an encoded word (RFC 2047) in mail '
            "headers: mail programs would show other text than yours. Remove it; type accented "
            "letters as they are (Postroom encodes them).",
            field=field,
        )
