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
   renderer has ≈ 50 µs for a whole message. So this module ports the package's folder
   (`email._header_value_parser._refold_parse_tree` and `_fold_as_ew`, and
   `email._encoded_words.encode`) as CPython 3.11 and 3.12 have it, step by step, on small
   stand-ins for the parser's token trees, plus shortcuts for the common shapes (a header
   that fits on its line). CPython 3.13 reworked how a blank before an encoded word moves to
   the next line, so there a few values fold differently from the package — and still read
   back (2). Where the package folds as the port does, tests/mail/test_encoding.py checks
   that the port writes the package's bytes wherever those read back; everywhere it checks (2).

Where the package would write something that does not read back, this module writes the
value as encoded words throughout instead: an unstructured value the package would fold with
a lost or doubled blank around an encoded word (`fold_unstructured`), or a long display name
the package would unquote (`fold_mailbox`). Shapes the port does not model are folded by the
package itself, and kept only when they read back.

Text bodies follow another rule: `build_message` lets the running package encode them, so
postroom.mail.encoding must equal that package byte for byte on every Python.
"""

from __future__ import annotations

import base64
import re
import sys
from datetime import datetime
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any, Self

from postroom.mail.encoding import CRLF, MAX_LINE_LENGTH, POLICY

_WSP = " \t"  # RFC 5322 WSP: the blanks folding happens at
_WSP_CHARS = (" ", "\t")
_SPECIALS = frozenset('()<>@,:;.\\"[]')  # RFC 5322 §3.2.3, as email._header_value_parser
_Q_SAFE = b"-!*+/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_Q_TABLE = {c: f"={c:02X}" for c in range(256)}
_Q_TABLE.update({c: chr(c) for c in _Q_SAFE})
_Q_TABLE[ord(" ")] = "_"
_OUR_EW = re.compile(r"=\?utf-8\?([qb])\?([^?]*)\?=")
_Q_ESCAPE = re.compile(r"=([0-9A-F]{2})")
_EW_CHROME = len("=?utf-8?q??=")  # RFC 2047 §2: the charset and markers around the text
_READER = email_policy.default  # how a receiving program built on the package parses headers


class _UnsupportedError(Exception):
    """The input leaves the shapes the port models: use the email package instead."""


class _Tok:
    """A node of the email package's parse tree, reduced to what folding looks at.

    `children` is None for a terminal (a str subclass in the package, so hasattr(part,
    "encode") holds there); an opaque node is a token list whose inside is not modelled.
    """

    __slots__ = ("text", "kind", "children", "ew_allowed", "fws_first")

    def __init__(
        self,
        text: str,
        kind: str,
        children: list[_Tok] | None,
        ew_allowed: bool,
        fws_first: bool,
    ) -> None:
        self.text = text
        self.kind = kind
        self.children = children
        self.ew_allowed = ew_allowed
        self.fws_first = fws_first


def _term(text: str, kind: str) -> _Tok:
    return _Tok(text, kind, None, True, kind == "fws")


def _list(kind: str, children: list[_Tok], ew_allowed: bool | None = None) -> _Tok:
    return _Tok(
        "".join([c.text for c in children]),
        kind,
        children,
        all(c.ew_allowed for c in children) if ew_allowed is None else ew_allowed,
        children[0].fws_first if children else False,
    )


def _ew_encode(text: str) -> str:
    """email._encoded_words.encode(text, 'utf-8'): q unless b is more than 4 characters shorter."""
    raw = text.encode("utf-8")
    unsafe = len(raw.translate(None, _Q_SAFE + b" "))
    qlen = len(raw) + 2 * unsafe
    blen = (len(raw) + 2) // 3 * 4
    if qlen - blen < 5:
        return "=?utf-8?q?" + raw.decode("latin-1").translate(_Q_TABLE) + "?="
    return "=?utf-8?b?" + base64.b64encode(raw).decode("ascii") + "?="


def _char_costs(char: str) -> tuple[int, int]:
    """(q-encoded length, UTF-8 length) of one character."""
    raw = char.encode("utf-8")
    return len(raw) + 2 * len(raw.translate(None, _Q_SAFE + b" ")), len(raw)


_CHAR_COSTS: dict[str, tuple[int, int]] = {chr(c): _char_costs(chr(c)) for c in range(128)}


def _longest_fitting_prefix(word: str, room: int) -> str:
    """The longest prefix of `word` whose encoded word fits in `room` characters.

    _fold_as_ew finds it by dropping one character at a time and re-encoding; the encoded
    length is not monotonic (q and b swap), so this scans down the same way, on running sums.
    """
    q_sums = [0]
    byte_sums = [0]
    q_total = byte_total = 0
    costs = _CHAR_COSTS
    for char in word:
        cost = costs.get(char)
        if cost is None:
            cost = costs[char] = _char_costs(char)
        q_total += cost[0]
        byte_total += cost[1]
        q_sums.append(q_total)
        byte_sums.append(byte_total)
    for size in range(len(word), -1, -1):
        qlen = q_sums[size]
        blen = (byte_sums[size] + 2) // 3 * 4
        if _EW_CHROME + (qlen if qlen - blen < 5 else blen) <= room:
            return word[:size]
    return ""


def _decode_our_ew(segment: str) -> str:
    """str(get_unstructured(segment)) for "[blanks] one of our encoded words [blank text]".

    (The package can leave its last-encoded-word index on a blank it put before the word.)
    """
    stripped = segment.lstrip(_WSP)
    if stripped is not segment:
        return segment[: len(segment) - len(stripped)] + _decode_our_ew(stripped)
    match = _OUR_EW.match(segment)
    if match is None:
        raise _UnsupportedError(segment)
    kind, payload = match.groups()
    if kind == "q":
        raw = _Q_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), payload.replace("_", " "))
        text = raw.encode("latin-1").decode("utf-8")
    else:
        text = base64.b64decode(payload).decode("utf-8")
    tail = segment[match.end() :]
    if tail and tail[0] not in _WSP:
        raise _UnsupportedError(segment)
    return text + tail


def _steal_trailing_wsp(lines: list[str]) -> str:
    if lines[-1] and lines[-1][-1] in _WSP:
        wsp = lines[-1][-1]
        lines[-1] = lines[-1][:-1]
        return wsp
    return ""


class _Folder:
    """email._header_value_parser._refold_parse_tree and _fold_as_ew, on `_Tok` trees.

    Besides the package's state it remembers the text of the last encoded word it wrote, so
    combining a new word with it (the package re-parses the line to decode it) is a lookup.
    """

    __slots__ = ("maxlen", "lines", "last_ew", "ew_text", "ew_line", "ew_encoded")

    def __init__(self, maxlen: int, start: str = "") -> None:
        self.maxlen = maxlen
        self.lines = [start]
        self.last_ew: int | None = None
        self.ew_text = ""
        self.ew_line = -1
        self.ew_encoded = ""

    def fold(self, parts: list[_Tok]) -> list[str]:
        maxlen = self.maxlen
        lines = self.lines
        wrap_as_ew_blocked = 0
        want_encoding = False
        parts = list(parts)
        while parts:
            part = parts.pop(0)
            if part is _END_BLOCK:
                wrap_as_ew_blocked -= 1
                continue
            tstr = part.text
            if part.kind == "ptext" and not _SPECIALS.isdisjoint(tstr):
                want_encoding = True  # specials in a quoted word are encoded (CPython gh-80222)
            if not tstr.isascii():
                want_encoding = True
            if want_encoding and not wrap_as_ew_blocked:
                if not part.ew_allowed:
                    want_encoding = False
                    self.last_ew = None
                    encoded_part = CRLF.join(_Folder(maxlen).fold(_children(part)))
                    if CRLF not in encoded_part:
                        if len(encoded_part) > maxlen - len(lines[-1]):
                            lines.append(_steal_trailing_wsp(lines))
                        lines[-1] += encoded_part
                        continue
                if part.children is not None:
                    parts = _children(part) + parts
                else:
                    self._fold_as_ew(tstr)
                want_encoding = False
                continue
            if len(tstr) <= maxlen - len(lines[-1]):
                lines[-1] += tstr
                continue
            if len(tstr) + 1 <= maxlen:
                newline = _steal_trailing_wsp(lines)
                if newline or part.fws_first:
                    lines.append(newline + tstr)
                    self.last_ew = None
                    continue
            if part.children is not None:
                newparts = _children(part)
                if not part.ew_allowed:
                    wrap_as_ew_blocked += 1
                    newparts.append(_END_BLOCK)
                parts = newparts + parts
                continue
            if part.ew_allowed and not wrap_as_ew_blocked:
                parts.insert(0, part)
                want_encoding = True
                continue
            newline = _steal_trailing_wsp(lines)
            if newline or part.fws_first:
                lines.append(newline + tstr)
            else:
                lines[-1] += tstr
        return lines

    def _previous_ew_text(self) -> str:
        lines = self.lines
        last_ew = self.last_ew
        assert last_ew is not None
        segment = lines[-1][last_ew:]
        if (
            self.ew_line == len(lines) - 1
            and segment.startswith(self.ew_encoded)
            and not segment[len(self.ew_encoded) : len(self.ew_encoded) + 1].strip(_WSP)
        ):
            return self.ew_text + segment[len(self.ew_encoded) :]
        return _decode_our_ew(segment)

    def _fold_as_ew(self, to_encode: str) -> None:
        lines = self.lines
        maxlen = self.maxlen
        last_ew = self.last_ew
        if last_ew is not None:
            to_encode = self._previous_ew_text() + to_encode
            lines[-1] = lines[-1][:last_ew]
        if not to_encode:
            raise _UnsupportedError(to_encode)
        if to_encode[0] in _WSP:
            leading_wsp = to_encode[0]
            to_encode = to_encode[1:]
            if len(lines[-1]) == maxlen:
                lines.append(_steal_trailing_wsp(lines))
            lines[-1] += leading_wsp
        if not to_encode:
            raise _UnsupportedError(to_encode)
        trailing_wsp = ""
        if to_encode[-1] in _WSP:
            trailing_wsp = to_encode[-1]
            to_encode = to_encode[:-1]
        new_last_ew = len(lines[-1]) if last_ew is None else last_ew
        while to_encode:
            remaining_space = maxlen - len(lines[-1])
            text_space = remaining_space - _EW_CHROME
            if text_space <= 0:
                lines.append(" ")
                continue
            word = to_encode[:text_space]
            encoded = _ew_encode(word)
            if len(encoded) > remaining_space:
                word = _longest_fitting_prefix(word, remaining_space)
                encoded = _ew_encode(word)
            lines[-1] += encoded
            self.ew_text, self.ew_encoded, self.ew_line = word, encoded, len(lines) - 1
            to_encode = to_encode[len(word) :]
            if to_encode:
                lines.append(" ")
                new_last_ew = len(lines[-1])
        lines[-1] += trailing_wsp
        self.last_ew = new_last_ew


_END_BLOCK = _term("", "wrap_as_ew_blocked")
_SPACE = _term(" ", "fws")
_CFWS = _list("cfws", [_SPACE])


def _children(part: _Tok) -> list[_Tok]:
    if part.kind == "opaque" or part.children is None:
        raise _UnsupportedError(part.text)
    return list(part.children)


def _words(value: str) -> list[str]:
    """email._header_value_parser.get_unstructured's tokens, for text without "=?": blanks and
    words alternating, the first and last possibly empty.

    A blank run starts with a space or tab and takes every white space after it (get_fws uses
    str.lstrip; `\\s` is the same set); a word runs up to the next space or tab.
    """
    return _BLANKS_SPLIT(value)


_BLANKS_SPLIT = re.compile(r"([ \t]\s*)").split


def _terminals(value: str) -> list[_Tok]:
    return [
        _term(text, "fws" if index % 2 else "vtext")
        for index, text in enumerate(_words(value))
        if text
    ]


def _label_fits(name: str, maxlen: int) -> bool:
    # "Name: " always fits the first line here; the package then starts the value after it.
    return len(name) + 2 <= maxlen and name.isascii()


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
    except _UnsupportedError:
        folded = _package_fold(name, value, policy)
    # Leading blanks are not part of a value (readers strip the blanks after the colon).
    if "=?" in folded and _decoded_value(name, folded) != value.lstrip(_WSP):
        return _fold_all_encoded(name, value, maxlen)
    return folded


_EW_OR_TEXT = re.compile(r"(=\?utf-8\?[qb]\?[^?]*\?=)")
# email._header_value_parser.rfc2047_matcher: what readers take for an encoded word.
_LOOKS_ENCODED = re.compile(r"=\?[^?]*\?[qQbB]\?.*?\?=")


def _decoded_value(name: str, folded: str) -> str | None:
    """What an RFC 2047 reader shows for our folded header, or None if it is not well formed."""
    unfolded = folded[len(name) + 1 :].replace(CRLF, "").lstrip(_WSP)
    pieces = _EW_OR_TEXT.split(unfolded)
    last = len(pieces) - 1
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            before, after = pieces[index - 1], pieces[index + 1]
            # RFC 2047 §5 (1): an encoded word stands alone between blanks.
            if (before or index > 1) and before[-1:] not in _WSP_CHARS:
                return None
            if (after or index + 1 < last) and after[:1] not in _WSP_CHARS:
                return None
            out.append(_decode_our_ew(piece))
        elif not (0 < index < last and not piece.strip(_WSP)):
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
        word = _longest_fitting_prefix(text[: max(room - _EW_CHROME, 0)], room)
        if not word:
            lines.append(" ")  # not even one character fits on this line
            continue
        lines[-1] += _ew_encode(word)
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
    words = _words(value)
    if all(text.isascii() for text in words[1::2]):  # (a non-ASCII blank run takes the loop)
        tokens = [
            (text, bool(index % 2 == 0 and not text.isascii()))
            for index, text in enumerate(words)
            if text
        ]
        line = _one_line(start, tokens, maxlen)
        if line is not None:
            return line + CRLF
    return None


def _loop_fold_unstructured(name: str, value: str, maxlen: int) -> str:
    # The package breaks the value into its words (non-ASCII ones, or ones too long for a
    # line, become encoded words): fold the words after "Name: ".
    return CRLF.join(_Folder(maxlen, f"{name}: ").fold(_terminals(value))) + CRLF


def _fast_fold_unstructured(name: str, value: str, maxlen: int) -> str:
    """The port without the read-back check: exactly the package's folding (tests use it)."""
    short = _short_fold_unstructured(name, value, maxlen)
    return short if short is not None else _loop_fold_unstructured(name, value, maxlen)


def _one_line(start: str, tokens: list[tuple[str, bool]], maxlen: int) -> str | None:
    """What _Folder writes for (text, is encoded) tokens that all fit on one line, else None.

    Plain tokens are appended. A token to encode starts an encoded word or, when one is already
    on the line, is merged into it with everything written after it (_fold_as_ew combines them
    into one word). As soon as something would not fit, the full loop has to decide.
    """
    line = start
    ew_start = ew_end = -1
    ew_text = ""
    for text, is_encoded in tokens:
        if not is_encoded:
            line += text
            if len(line) > maxlen:
                return None
            continue
        if ew_start < 0:
            ew_start, merged = len(line), text
        else:
            merged = ew_text + line[ew_end:] + text
        encoded = _ew_encode(merged)
        if ew_start + len(encoded) > maxlen:
            return None  # _fold_as_ew would split it over lines
        line = line[:ew_start] + encoded
        ew_end, ew_text = len(line), merged
    return line


def _quote_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _simple_words(display_name: str) -> list[str] | None:
    # Single blanks between words, none at the ends, and no other blank right after one
    # (the parser's lstrip would merge it into the folding white space): then str(parse tree)
    # is exactly Address.__str__, and the tree below is exactly the parser's.
    if "\t" in display_name:
        return None
    words = display_name.split(" ")
    if all(words) and not any(word[0].isspace() for word in words):
        return words
    return None


def _display_name_parts(display_name: str, words: list[str]) -> list[_Tok]:
    """The tokens a non-ASCII display name is folded as (the package always descends into it)."""
    parts: list[_Tok] = []
    if _SPECIALS.isdisjoint(display_name):
        # Address.__str__ leaves it bare: a phrase of atoms, each with its following blank.
        for word in words:
            if word.isascii():
                parts.append(_list("atom", [_term(word, "atext"), _CFWS]))
            else:
                parts += [_term(word, "atext"), _CFWS]
        return parts
    # Quoted: ptext words and blanks inside a bare-quoted-string, then the blank before "<".
    for index, word in enumerate(words):
        if index:
            parts.append(_SPACE)
        parts.append(_term(word, "ptext"))
    parts.append(_CFWS)
    return parts


def _display_name_tree(display_name: str, words: list[str]) -> _Tok:
    space = _CFWS
    if _SPECIALS.isdisjoint(display_name):
        atoms = [_list("atom", [_term(word, "atext"), space]) for word in words]
        return _list("display-name", atoms)
    inner: list[_Tok] = []
    for index, word in enumerate(words):
        if index:
            inner.append(_SPACE)
        inner.append(_term(word, "ptext"))
    bare = _Tok(_quote_string(display_name), "bare-quoted-string", inner, True, False)
    quoted = _Tok(bare.text + " ", "quoted-string", [bare, space], True, False)
    return _list("display-name", [quoted])


def _angle_addr(addr_spec: str) -> _Tok:
    addr = _Tok(addr_spec, "opaque", [], False, False)
    return _list("angle-addr", [_term("<", "angle-addr-start"), addr, _term(">", "angle-addr-end")])


def fold_mailbox(
    name: str, display_name: str, addr_spec: str, *, policy: EmailPolicy[Any] = POLICY
) -> str:
    """Return the header line(s) `policy` writes for `name: [Address(display_name, addr_spec)]`.

    `addr_spec` must be the header form from postroom.mail.addresses (ASCII unless SMTPUTF8).
    """
    maxlen = policy.max_line_length or sys.maxsize  # as the package: 0 or None, no limit
    words = _simple_words(display_name) if display_name else []
    if (
        words is not None
        and "=?" not in display_name
        and addr_spec.isascii()
        and not policy.utf8
        and _label_fits(name, maxlen)
    ):
        try:
            return _fast_fold_mailbox(name, display_name, words, addr_spec, maxlen)
        except _UnsupportedError:
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


def _fast_fold_mailbox(
    name: str, display_name: str, words: list[str], addr_spec: str, maxlen: int
) -> str:
    start = f"{name}: "
    if not display_name:
        formatted = addr_spec
    elif _SPECIALS.isdisjoint(display_name):
        formatted = f"{display_name} <{addr_spec}>"
    else:
        formatted = f"{_quote_string(display_name)} <{addr_spec}>"
    if formatted.isascii():
        if len(formatted) <= maxlen - len(start):
            return f"{start}{formatted}{CRLF}"
        if len(formatted) + 1 <= maxlen:
            return f"{name}:{CRLF} {formatted}{CRLF}"
        raise _UnsupportedError(formatted)  # the package descends into the address: rare
    # A non-ASCII name: the address-list, address and mailbox levels cannot be encoded as a
    # whole (the addr-spec inside them must stay plain), so the package folds each on its own
    # line and keeps the result when it is one line. The name-addr inside is folded as the
    # display name's words (encoded where needed) followed by the angle-addr.
    quoted = not _SPECIALS.isdisjoint(display_name)
    tokens: list[tuple[str, bool]] = []
    for index, word in enumerate(words):
        if quoted and index:
            tokens.append((" ", False))
        # A quoted word with specials is encoded too (CPython gh-80222), ASCII or not.
        tokens.append((word, not word.isascii() or (quoted and not _SPECIALS.isdisjoint(word))))
        if not quoted:
            tokens.append((" ", False))
    if quoted:
        tokens.append((" ", False))
    one_line = _one_line("", [*tokens, (f"<{addr_spec}>", False)], maxlen)
    if one_line is None:
        parts = [*_display_name_parts(display_name, words), _angle_addr(addr_spec)]
        inner = _Folder(maxlen).fold(parts)
        if len(inner) != 1 or len(inner[0]) > maxlen:
            raise _UnsupportedError(display_name)  # several lines: the package re-folds: rare
        one_line = inner[0]
    line = one_line
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


# The full parse trees, for tests: they check that the shortcuts above agree with folding the
# whole tree, as well as with the package.
def _tree_fold_unstructured(name: str, value: str, maxlen: int = MAX_LINE_LENGTH) -> str:
    label = _list("header-label", [_term(name, "header-name"), _term(":", "header-sep")], False)
    tree = _list("unstructured", _terminals(value))
    parts = [label, _CFWS, tree] if value else [label, tree]
    return CRLF.join(_Folder(maxlen).fold(parts)) + CRLF


def _tree_fold_mailbox(
    name: str, display_name: str, addr_spec: str, maxlen: int = MAX_LINE_LENGTH
) -> str:
    label = _list("header-label", [_term(name, "header-name"), _term(":", "header-sep")], False)
    addr = _Tok(addr_spec, "opaque", [], False, False)
    if display_name:
        words = _simple_words(display_name)
        if words is None:
            raise _UnsupportedError(display_name)
        display = _display_name_tree(display_name, words)
        name_addr = _list("name-addr", [display, _angle_addr(addr_spec)])
        mailbox = _list("mailbox", [name_addr])
    else:
        mailbox = _list("mailbox", [addr])
    tree = _list("address-list", [_list("address", [mailbox])])
    return CRLF.join(_Folder(maxlen).fold([label, _CFWS, tree])) + CRLF
