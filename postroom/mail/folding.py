"""Header folding for both message builders (RFC 5322 §2.2.3, RFC 2047): the contract.

1. One folder per header, shared. `build_message` writes Subject, custom headers, a single To
   mailbox, Message-ID and Date through this module (the `Folded…` values below make
   `EmailMessage` call it), and the bulk renderer calls the same functions per recipient; what
   the bulk renderer renders once per template (From, Reply-To, the MIME headers) both builders
   leave to the `email` package. So a bulk message and its exact rebuild are byte-identical on
   any Python, whatever its package does: tests/mail/test_bulk.py checks it on 3.11, 3.12 and
   3.13 (`make test-pythons`).
2. Every folded header reads back as its value: an unstructured value exactly (as an RFC 2047
   §6.2 reader shows it, leading blanks aside); a mailbox as the same addr-spec and display
   name, up to the blanks at a fold between two encoded words (RFC 2047 readers drop them,
   the package's phrase parser keeps them; postroom.mail.structure compares the same way).
   Lines stay within 76 characters wherever a blank or an encoded word allows it.
3. Fast. Folding one `To:` header through `email.headerregistry` costs 300-800 µs; the bulk
   renderer has ≈ 50 µs for a whole message. So postroom.mail.refold ports the package's
   folder (`email._header_value_parser._refold_parse_tree` and `_fold_as_ew`, and
   `email._encoded_words.encode`) as CPython 3.11 and 3.12 have it, and this module adds
   shortcuts for the common shapes (a header that fits on its line). CPython 3.13 reworked
   how a blank before an encoded word moves to the next line, so there a few values fold
   differently from the package — and still read back (2). Where the package folds as the
   port does, tests/mail/test_encoding.py checks that the port writes the package's bytes
   wherever those read back; everywhere it checks (2).

Where the package would write something that does not read back, this module writes the
value as encoded words throughout instead: an unstructured value the package would fold with
a lost or doubled blank around an encoded word (`fold_unstructured`), or a long display name
the package would unquote (`fold_mailbox`). Shapes the port does not model are folded by the
package itself, and kept only when they read back.

Text bodies follow another rule: `build_message` lets the running package encode them, so
postroom.mail.encoding must equal that package byte for byte on every Python.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any, Self

from postroom.mail.encoding import CRLF, POLICY
from postroom.mail.refold import (
    EW_CHROME,
    SPECIALS,
    WSP,
    WSP_CHARS,
    Folder,
    UnsupportedError,
    angle_addr,
    decode_ew,
    display_name_parts,
    ew_encode,
    longest_fitting_prefix,
    one_line,
    quote_string,
    simple_words,
    split_blanks,
    terminals,
)

_READER = email_policy.default  # how a receiving program built on the package parses headers


def _label_fits(name: str, maxlen: int) -> bool:
    # "Name: " always fits the first line here; the package then starts the value after it.
    return len(name) + 2 <= maxlen and name.isascii()


# RFC 2369 §2: these fields hold angle-bracketed URLs, separated by commas; whitespace must
# not be put inside the brackets, and an encoded word there would be read as part of the URL
# (RFC 8058's one-click POST goes to List-Unsubscribe's HTTPS URL). They are folded only
# after a comma, and a URL longer than a line stays whole: RFC 5322 §2.1.1 allows 998.
URL_LIST_HEADERS = frozenset(
    {"list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive"}
)
_URL = r"<[!-;=?-~]+>"  # printable ASCII but the brackets and the blank
_URL_LIST = re.compile(rf"{_URL}(?:[ \t]*,[ \t]*{_URL})*")
_MAX_LINE = 998
_URL_LIST_WIDTH = 78  # RFC 5322 §2.1.1's SHOULD, kept wherever a comma allows it


def fold_url_list(name: str, value: str) -> str | None:
    """`Name: <url1>,\r\n <url2>\r\n`, or None when `value` is not a list of URLs that
    fits (then it is folded as unstructured text)."""
    text = value.strip(WSP)
    if not _URL_LIST.fullmatch(text):
        return None
    urls = re.findall(_URL, text)
    lines = [f"{name}: {urls[0]}"]
    for url in urls[1:]:
        if len(lines[-1]) + len(", ") + len(url) <= _URL_LIST_WIDTH:
            lines[-1] += ", " + url
        else:
            lines[-1] += ","
            lines.append(" " + url)
    if any(len(line) > _MAX_LINE for line in lines):
        return None
    return CRLF.join(lines) + CRLF


def fold_unstructured(name: str, value: str, *, policy: EmailPolicy[Any] = POLICY) -> str:
    """Return the header line(s) for an unstructured header (Subject, X-…): the email package's
    folding, except where the package's output would not read back as the value.

    When the package (CPython 3.11) folds a long value with encoded words it sometimes leaves an
    original blank between two encoded words — at a line break, or moved out of a word it
    re-encodes — and RFC 2047 §6.2 has readers drop blanks between adjacent encoded words
    ("Ünïcode Ünïcode" shows as "ÜnïcodeÜnïcode"); or it keeps a blank at the end of a line and
    starts the next with another, which unfolds to two. Whenever the folded text does not decode
    back to the value, it is written as encoded words throughout instead, blanks inside them.
    Both builders fold Subject and custom headers through here, so they still agree.
    """
    if name.lower() in URL_LIST_HEADERS and (urls := fold_url_list(name, value)) is not None:
        return urls
    maxlen = policy.max_line_length or sys.maxsize  # as the package: 0 or None, no limit
    if policy.utf8 or not _label_fits(name, maxlen):
        return _package_fold(name, value, policy)
    if _LOOKS_ENCODED.search(value):
        # The package would write "=?utf-8?q?x?=" as typed, and readers would decode it: encode
        # the value so that they show what was typed.
        return _fold_all_encoded(name, value, maxlen)
    short = _short_fold_unstructured(name, value, maxlen)
    if short is not None:
        return short  # one line, with encoded words only between blanks: it reads back
    try:
        folded = _loop_fold_unstructured(name, value, maxlen)
    except UnsupportedError:
        folded = _package_fold(name, value, policy)
    # Leading blanks are not part of a value (readers strip the blanks after the colon).
    if "=?" in folded and _decoded_value(name, folded) != value.lstrip(WSP):
        return _fold_all_encoded(name, value, maxlen)
    return folded


_EW_OR_TEXT = re.compile(r"(=\?utf-8\?[qb]\?[^?]*\?=)")
# email._header_value_parser.rfc2047_matcher: what readers take for an encoded word.
_LOOKS_ENCODED = re.compile(r"=\?[^?]*\?[qQbB]\?.*?\?=")


def _decoded_value(name: str, folded: str) -> str | None:
    """What an RFC 2047 reader shows for our folded header, or None if it is not well formed."""
    unfolded = folded[len(name) + 1 :].replace(CRLF, "").lstrip(WSP)
    pieces = _EW_OR_TEXT.split(unfolded)
    last = len(pieces) - 1
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            before, after = pieces[index - 1], pieces[index + 1]
            # RFC 2047 §5 (1): an encoded word stands alone between blanks.
            if (before or index > 1) and before[-1:] not in WSP_CHARS:
                return None
            if (after or index + 1 < last) and after[:1] not in WSP_CHARS:
                return None
            out.append(decode_ew(piece))
        elif not (0 < index < last and not piece.strip(WSP)):
            out.append(piece)  # blanks between two encoded words are not shown (§6.2)
    return "".join(out)


def _fold_all_encoded(name: str, value: str, maxlen: int) -> str:
    """The whole value as encoded words, blanks included, one or more per line."""
    return CRLF.join(_encoded_lines(f"{name}: ", value, maxlen)) + CRLF


def _encoded_lines(start: str, text: str, maxlen: int) -> list[str]:
    """`start`, then `text` as encoded words, each as long as its line allows.

    The q encoding leaves only letters, digits and "-!*+/" as they are, so the words are valid
    in a phrase too (RFC 2047 §5 (3)).
    """
    lines = [start]
    while text:
        room = maxlen - len(lines[-1])
        word = longest_fitting_prefix(text[: max(room - EW_CHROME, 0)], room)
        if not word:
            lines.append(" ")  # not even one character fits on this line
            continue
        lines[-1] += ew_encode(word)
        text = text[len(word) :]
        if text:
            lines.append(" ")
    return lines


class FoldedHeader(str):
    """A Subject or custom header value that `EmailMessage` writes through `fold_unstructured`.

    The email package keeps a header value that has a `name` and writes it with its `fold`
    (EmailPolicy.header_store_parse and _fold), so the exact builder folds these headers the
    way the bulk renderer does. The subclasses below do the same for the other headers the
    bulk renderer writes per recipient.
    """

    name: str

    def __new__(cls, name: str, value: str) -> Self:
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: EmailPolicy[Any]) -> str:
        return fold_unstructured(self.name, str(self), policy=policy)


class FoldedMailbox(FoldedHeader):
    """One mailbox (To in a bulk message) that `EmailMessage` writes through `fold_mailbox`."""

    display_name: str
    addr_spec: str

    def __new__(cls, name: str, display_name: str, addr_spec: str) -> Self:
        username, _, domain = addr_spec.rpartition("@")  # (the value as msg[name] shows it)
        header = super().__new__(cls, name, str(HeaderAddress(display_name, username, domain)))
        header.display_name, header.addr_spec = display_name, addr_spec
        return header

    def fold(self, *, policy: EmailPolicy[Any]) -> str:
        return fold_mailbox(self.name, self.display_name, self.addr_spec, policy=policy)


class FoldedMessageId(FoldedHeader):
    """A Message-ID that `EmailMessage` writes through `fold_message_id`."""

    def __new__(cls, message_id: str) -> Self:
        return super().__new__(cls, "Message-ID", message_id)

    def fold(self, *, policy: EmailPolicy[Any]) -> str:
        return fold_message_id(str(self), policy=policy)


class FoldedDate(FoldedHeader):
    """A Date that `EmailMessage` writes through `date_line`."""

    date: datetime

    def __new__(cls, date: datetime) -> Self:
        header = super().__new__(cls, "Date", date_line(date)[len("Date: ") : -len(CRLF)])
        header.date = date
        return header

    def fold(self, *, policy: EmailPolicy[Any]) -> str:
        return date_line(self.date)


def _short_fold_unstructured(name: str, value: str, maxlen: int) -> str | None:
    """The common shapes: a value that fits after "Name: " or alone on the next line."""
    if not value:
        return f"{name}:{CRLF}"  # an empty value gets no blank after the colon
    start = f"{name}: "
    if value.isascii():
        if len(value) <= maxlen - len(start):
            return f"{start}{value}{CRLF}"
        if len(value) + 1 <= maxlen:
            # The whole value moves to a continuation line, taking the blank with it.
            return f"{name}:{CRLF} {value}{CRLF}"
        return None
    # The package breaks a non-ASCII value into its words, non-ASCII ones encoded.
    words = split_blanks(value)
    if all(text.isascii() for text in words[1::2]):  # (a non-ASCII blank run takes the loop)
        tokens = [
            (text, bool(index % 2 == 0 and not text.isascii()))
            for index, text in enumerate(words)
            if text
        ]
        line = one_line(start, tokens, maxlen)
        if line is not None:
            return line + CRLF
    return None


def _loop_fold_unstructured(name: str, value: str, maxlen: int) -> str:
    # The package breaks the value into its words (non-ASCII ones, or ones too long for a
    # line, become encoded words): fold the words after "Name: ".
    return CRLF.join(Folder(maxlen, f"{name}: ").fold(terminals(value))) + CRLF


def _fast_fold_unstructured(name: str, value: str, maxlen: int) -> str:
    """The port without the read-back check: exactly the package's folding (tests use it)."""
    short = _short_fold_unstructured(name, value, maxlen)
    return short if short is not None else _loop_fold_unstructured(name, value, maxlen)


def fold_mailbox(
    name: str, display_name: str, addr_spec: str, *, policy: EmailPolicy[Any] = POLICY
) -> str:
    """Return the header line(s) `policy` writes for `name: [Address(display_name, addr_spec)]`.

    `addr_spec` must be the header form from postroom.mail.addresses (ASCII unless SMTPUTF8).
    """
    maxlen = policy.max_line_length or sys.maxsize  # as the package: 0 or None, no limit
    words = simple_words(display_name) if display_name else []
    if (
        words is not None
        and "=?" not in display_name
        and addr_spec.isascii()
        and not policy.utf8
        and _label_fits(name, maxlen)
    ):
        try:
            return _fast_fold_mailbox(name, display_name, words, addr_spec, maxlen)
        except UnsupportedError:
            pass
    value = [HeaderAddress(display_name, addr_spec=addr_spec)]
    folded = _package_fold(name, value, policy)
    if not display_name or _mailbox_reads_back(name, folded, display_name, addr_spec):
        return folded
    # The package splits a quoted display name too long for a line into its bare words, so
    # "Doe, Jane (…)" reads back as two addresses (CPython 3.11-3.13): encode the name instead.
    lines = _encoded_lines(f"{name}: ", display_name, maxlen)
    angle_addr = f"<{addr_spec}>"
    if len(lines[-1]) + 1 + len(angle_addr) <= maxlen:
        lines[-1] += " " + angle_addr
    else:
        lines.append(" " + angle_addr)
    return CRLF.join(lines) + CRLF


def _mailbox_reads_back(name: str, folded: str, display_name: str, addr_spec: str) -> bool:
    """Whether the package's parser reads `folded` as this one mailbox (blanks aside, see 2.)."""
    unfolded = folded[len(name) + 1 :].replace(CRLF, "")
    try:
        addresses = _READER.header_factory(name, unfolded).addresses
    except Exception:  # noqa: BLE001 - the parser can fail on what the folder wrote
        return False
    return (
        len(addresses) == 1
        and addresses[0].addr_spec == addr_spec
        and "".join(addresses[0].display_name.split()) == "".join(display_name.split())
    )


def _fast_fold_mailbox(  # noqa: C901 - CPython's folding decisions, kept in its order
    name: str, display_name: str, words: list[str], addr_spec: str, maxlen: int
) -> str:
    start = f"{name}: "
    if not display_name:
        formatted = addr_spec
    elif SPECIALS.isdisjoint(display_name):
        formatted = f"{display_name} <{addr_spec}>"
    else:
        formatted = f"{quote_string(display_name)} <{addr_spec}>"
    if formatted.isascii():
        if len(formatted) <= maxlen - len(start):
            return f"{start}{formatted}{CRLF}"
        if len(formatted) + 1 <= maxlen:
            return f"{name}:{CRLF} {formatted}{CRLF}"
        raise UnsupportedError(formatted)  # the package descends into the address: rare
    # A non-ASCII name: the address-list, address and mailbox levels cannot be encoded as a
    # whole (the addr-spec inside them must stay plain), so the package folds each on its own
    # line and keeps the result when it is one line. The name-addr inside is folded as the
    # display name's words (encoded where needed) followed by the angle-addr.
    quoted = not SPECIALS.isdisjoint(display_name)
    tokens: list[tuple[str, bool]] = []
    for index, word in enumerate(words):
        if quoted and index:
            tokens.append((" ", False))
        # A quoted word with specials is encoded too (CPython gh-80222), ASCII or not.
        tokens.append((word, not word.isascii() or (quoted and not SPECIALS.isdisjoint(word))))
        if not quoted:
            tokens.append((" ", False))
    if quoted:
        tokens.append((" ", False))
    line = one_line("", [*tokens, (f"<{addr_spec}>", False)], maxlen)
    if line is None:
        parts = [*display_name_parts(display_name, words), angle_addr(addr_spec)]
        inner = Folder(maxlen).fold(parts)
        if len(inner) != 1 or len(inner[0]) > maxlen:
            raise UnsupportedError(display_name)  # several lines: the package re-folds: rare
        line = inner[0]
    if len(line) > maxlen - len(start):
        return f"{name}:{CRLF} {line}{CRLF}"
    return f"{start}{line}{CRLF}"


def fold_message_id(message_id: str, *, policy: EmailPolicy[Any] = POLICY) -> str:
    """Return the Message-ID line `policy` writes for a valid `<left@right>` message id.

    A msg-id has no blank to fold at: the package keeps it on the header's line when it fits,
    else moves it alone to a continuation line when it fits there, else leaves it unfolded
    (still far below the 998-octet limit: a domain has at most 253 octets, RFC 1035 §2.3.4).
    """
    maxlen = policy.max_line_length or sys.maxsize  # as the package: 0 or None, no limit
    if len(message_id) <= maxlen - len("Message-ID: "):
        return f"Message-ID: {message_id}{CRLF}"
    if len(message_id) + 1 <= maxlen:
        return f"Message-ID:{CRLF} {message_id}{CRLF}"
    return f"Message-ID: {message_id}{CRLF}"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_line(date: datetime) -> str:
    """The Date header for an aware datetime (RFC 5322 §3.3); always short, never folded.

    email.utils.format_datetime's output, written directly (it goes through timetuple and
    strftime, 5x slower).
    """
    offset = date.utcoffset()
    if offset is None or offset.microseconds or offset.seconds % 60:
        return f"Date: {format_datetime(date)}{CRLF}"  # naive, or an offset in seconds
    minutes = offset.days * 1440 + offset.seconds // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return (
        f"Date: {_DAYS[date.weekday()]}, {date.day:02d} {_MONTHS[date.month - 1]} "
        f"{date.year:04d} {date.hour:02d}:{date.minute:02d}:{date.second:02d} "
        f"{sign}{hours:02d}{minutes:02d}{CRLF}"
    )


def _package_fold(name: str, value: object, policy: EmailPolicy[Any]) -> str:
    header = policy.header_factory(name, value)
    return header.fold(policy=policy)  # type: ignore[no-any-return]
