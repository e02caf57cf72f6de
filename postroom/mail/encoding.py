"""Encoding rules shared by the exact builder and the fast bulk renderer.

Two things live here:

* the choices both builders must make identically — the `email` policies, the line
  length, which Content-Transfer-Encoding a text part gets;
* fast re-implementations of the `email` package's header folding (RFC 5322 §2.2.3 folding,
  RFC 2047 encoded words) and text-body encoding (7bit, quoted-printable, base64).

Why re-implement: folding a single `To:` header through `email.headerregistry` costs 300-800 µs
and `email.quoprimime.body_encode` about 200 µs for 2 KB, while the bulk renderer has a budget of
≈ 50 µs per message (2,000 msg/s on one core). The ports below follow CPython 3.11's
`email._header_value_parser._refold_parse_tree`, `_fold_as_ew`, `email._encoded_words.encode`
and `email.quoprimime.body_encode` step by step, so their output is byte-identical — proven in
tests/mail/test_bulk.py against the real package on a corpus and on random inputs. Whenever an
input falls outside the shapes the ports model (an RFC 2047 look-alike "=?" in the text, an
address too long to fit on a line…), they fall back to the `email` package itself, so the output
is always the package's. If a Python upgrade changes the package's folding, those tests fail;
update the port, never the expectations.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress
from email.policy import EmailPolicy
from email.utils import format_datetime

# RFC 2045 §6.7 (5) and §6.8: quoted-printable and base64 lines are at most 76 characters.
# The `email` package uses policy.max_line_length for both header folding and body encoding,
# so 76 (≤ the 78 RFC 5322 §2.1.1 recommends for headers) keeps every line within both RFCs.
MAX_LINE_LENGTH = 76

# policy.SMTP: CRLF line endings and RFC 2047 encoded words for non-ASCII header text.
POLICY: EmailPolicy = email_policy.SMTP.clone(max_line_length=MAX_LINE_LENGTH)
# RFC 6531: with SMTPUTF8 the headers carry raw UTF-8 instead of encoded words.
POLICY_SMTPUTF8: EmailPolicy = email_policy.SMTPUTF8.clone(max_line_length=MAX_LINE_LENGTH)

CRLF = "\r\n"

# ---------------------------------------------------------------------------------------------
# Text bodies
# ---------------------------------------------------------------------------------------------

# Bytes quoprimime.body_encode leaves alone (plus CR/LF, which are line breaks there).
_QP_SAFE = (
    b" !\"#$%&'()*+,-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
    b"abcdefghijklmnopqrstuvwxyz{|}~\t"
)
_QP_UNSAFE_SPLIT = re.compile(rb"([^\t\n\r -<>-~]+)").split
# Lines quoprimime changes beyond escaping: too long (soft breaks) or ending in a blank.
_QP_LINE_TO_WRAP = re.compile(r"^(?:[^\n]{%d,}|[^\n]*[ \t])$" % (MAX_LINE_LENGTH + 1), re.M)
_LONG_LINE = re.compile(rb"^[^\n]{%d}" % (MAX_LINE_LENGTH + 1), re.M)
_BASE64_CHUNK = MAX_LINE_LENGTH // 4 * 3  # 57 bytes -> 76 characters, as email's _encode_base64


def _normal_body(text: str) -> bytes:
    """email.contentmanager._encode_text's normal_body: lines joined by LF, ending with LF.

    It splits with bytes.splitlines(), which treats CR, LF and CRLF alike: that is what turns
    lone CRs and lone LFs into CRLF on the wire. Same result without building a list of lines.
    """
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    return data


def _choose_cte(normal: bytes, boundaries: Sequence[str]) -> str:
    if (
        normal.isascii()
        and b"\0" not in normal  # RFC 2045 §2.7: 7bit data has no NUL
        and _LONG_LINE.search(normal) is None
        and not any(boundary.encode("ascii") in normal for boundary in boundaries)
    ):
        # Readable as is. A 7bit part must not contain a multipart boundary (RFC 2046 §5.1.1);
        # quoted-printable turns "=" into "=3D" and base64 has no "-", so neither can.
        return "7bit"
    escaped = len(normal.translate(None, _QP_SAFE + b"\n"))  # what is left must be escaped
    # Quoted-printable costs 3 bytes per escaped byte, base64 4/3 per byte: base64 is shorter
    # once more than one byte in six needs escaping (mostly non-Latin scripts).
    return "base64" if escaped * 6 > len(normal) else "quoted-printable"


def choose_text_cte(text: str, *, boundaries: Sequence[str] = ()) -> str:
    """Return the Content-Transfer-Encoding a text part gets: 7bit, quoted-printable or base64.

    Both builders call this, so they agree; the exact builder then lets the `email` package
    encode, the bulk renderer calls `encode_text_body`.
    """
    return _choose_cte(_normal_body(text), boundaries)


def _qp_wrap_line(match: re.Match[str]) -> str:
    """quoprimime.body_encode's per-line loop: soft breaks every 75, escaped trailing blank."""
    line = match.group()
    maxlinelen = MAX_LINE_LENGTH
    maxlinelen1 = maxlinelen - 1
    soft_break = "=\n"
    out: list[str] = []
    append = out.append
    start = 0
    laststart = len(line) - 1 - maxlinelen
    while start <= laststart:
        stop = start + maxlinelen1
        # Never split an "=XX" escape across a soft line break.
        if line[stop - 2] == "=":
            append(line[start : stop - 1])
            start = stop - 2
        elif line[stop - 1] == "=":
            append(line[start:stop])
            start = stop - 1
        else:
            append(line[start:stop] + "=")
            start = stop
    if line and line[-1] in " \t":
        # Trailing blanks are escaped: relays may strip them (RFC 2045 §6.7 (3)).
        room = start - laststart
        quoted = f"={ord(line[-1]):02X}"
        if room >= 3:
            tail = quoted
        elif room == 2:
            tail = line[-1] + soft_break
        else:
            tail = soft_break + quoted
        append(line[start:-1] + tail)
    else:
        append(line[start:])
    return "\n".join(out)


def _qp_escape(run: bytes) -> bytes:
    return b"=" + binascii.hexlify(run, b"=").upper()


def _qp_body(normal: bytes) -> bytes:
    """quoprimime.body_encode(normal_body, MAX_LINE_LENGTH) with CRLF, 10-20x faster.

    The package maps every character through a table and loops over every line; here only the
    runs of bytes that need escaping and the lines that need wrapping are touched.
    """
    pieces = _QP_UNSAFE_SPLIT(normal)
    pieces[1::2] = [_qp_escape(run) for run in pieces[1::2]]
    body = b"".join(pieces).decode("ascii")
    body = _QP_LINE_TO_WRAP.sub(_qp_wrap_line, body)
    return body.replace("\n", CRLF).encode("ascii")


def encode_text_body(text: str, *, boundaries: Sequence[str] = ()) -> tuple[str, bytes]:
    """Return (cte, body bytes with CRLF line ends) exactly as the email package writes the part."""
    normal = _normal_body(text)
    cte = _choose_cte(normal, boundaries)
    if cte == "7bit":
        return cte, normal.replace(b"\n", b"\r\n")
    if cte == "quoted-printable":
        return cte, _qp_body(normal)
    embedded = normal.replace(b"\n", b"\r\n")
    chunks = [
        binascii.b2a_base64(embedded[i : i + _BASE64_CHUNK], newline=False)
        for i in range(0, len(embedded), _BASE64_CHUNK)
    ]
    return cte, b"\r\n".join(chunks) + b"\r\n"


# ---------------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------------

_WSP = " \t"
_SPECIALS = frozenset('()<>@,:;.\\"[]')  # RFC 5322 §3.2.3, as email._header_value_parser
_WSP_SPLIT = re.compile(r"([ \t]+)").split
_Q_SAFE = b"-!*+/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_Q_TABLE = {c: f"={c:02X}" for c in range(256)}
_Q_TABLE.update({c: chr(c) for c in _Q_SAFE})
_Q_TABLE[ord(" ")] = "_"
_OUR_EW = re.compile(r"=\?utf-8\?([qb])\?([^?]*)\?=")
_Q_ESCAPE = re.compile(r"=([0-9A-F]{2})")
_EW_CHROME = len("=?utf-8?q??=")  # RFC 2047 §2: the charset and markers around the text


class _UnsupportedError(Exception):
    """The input leaves the shapes the port models: use the email package instead."""


class _Tok:
    """A node of the email package's parse tree, reduced to what folding looks at."""

    __slots__ = ("text", "kind", "children", "ew_allowed", "fws_first")

    def __init__(
        self,
        text: str,
        kind: str,
        children: list[_Tok] | None = None,
        *,
        ew_allowed: bool | None = None,
        opaque: bool = False,
    ) -> None:
        self.text = text
        self.kind = kind
        # None: a terminal (a str in the package, so hasattr(part, "encode") holds);
        # an opaque list is a TokenList whose inside we do not model (an addr-spec).
        self.children = children
        if children is None:
            self.ew_allowed = True if ew_allowed is None else ew_allowed
            self.fws_first = kind == "fws"
        else:
            self.ew_allowed = (
                all(c.ew_allowed for c in children) if ew_allowed is None else ew_allowed
            )
            self.fws_first = children[0].fws_first if children else False
        if opaque:
            self.children = []
            self.kind = "opaque"


def _term(text: str, kind: str) -> _Tok:
    return _Tok(text, kind)


def _list(kind: str, children: list[_Tok], *, ew_allowed: bool | None = None) -> _Tok:
    return _Tok("".join(c.text for c in children), kind, children, ew_allowed=ew_allowed)


def _ew_encode(text: str) -> str:
    """email._encoded_words.encode(text, 'utf-8'): q unless b is more than 4 characters shorter."""
    raw = text.encode("utf-8")
    unsafe = len(raw.translate(None, _Q_SAFE + b" "))
    qlen = len(raw) + 2 * unsafe
    blen = (len(raw) + 2) // 3 * 4
    if qlen - blen < 5:
        return "=?utf-8?q?" + raw.decode("latin-1").translate(_Q_TABLE) + "?="
    return "=?utf-8?b?" + base64.b64encode(raw).decode("ascii") + "?="


def _decode_our_ew(segment: str) -> str:
    """str(get_unstructured(segment)) for "one of our encoded words + plain text"."""
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


def _fold_as_ew(to_encode: str, lines: list[str], maxlen: int, last_ew: int | None) -> int:
    if last_ew is not None:
        to_encode = _decode_our_ew(lines[-1][last_ew:]) + to_encode
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
        while len(encoded) > remaining_space:
            word = word[:-1]
            encoded = _ew_encode(word)
        lines[-1] += encoded
        to_encode = to_encode[len(word) :]
        if to_encode:
            lines.append(" ")
            new_last_ew = len(lines[-1])
    lines[-1] += trailing_wsp
    return new_last_ew


_END_BLOCK = _term("", "wrap_as_ew_blocked")


def _refold(parts: list[_Tok], maxlen: int) -> list[str]:
    """email._header_value_parser._refold_parse_tree, on `_Tok` trees; returns the lines."""
    lines = [""]
    last_ew: int | None = None
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
            want_encoding = True
        if not tstr.isascii():
            want_encoding = True
        if want_encoding and not wrap_as_ew_blocked:
            if not part.ew_allowed:
                want_encoding = False
                last_ew = None
                if part.children is None:
                    raise _UnsupportedError(tstr)
                encoded_part = CRLF.join(_sub_fold(part, maxlen))
                if CRLF not in encoded_part:
                    if len(encoded_part) > maxlen - len(lines[-1]):
                        lines.append(_steal_trailing_wsp(lines))
                    lines[-1] += encoded_part
                    continue
            if part.children is not None:
                parts = _children(part) + parts
            else:
                last_ew = _fold_as_ew(tstr, lines, maxlen, last_ew)
            want_encoding = False
            continue
        if len(tstr) <= maxlen - len(lines[-1]):
            lines[-1] += tstr
            continue
        if len(tstr) + 1 <= maxlen:
            newline = _steal_trailing_wsp(lines)
            if newline or part.fws_first:
                lines.append(newline + tstr)
                last_ew = None
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


def _children(part: _Tok) -> list[_Tok]:
    if part.kind == "opaque" or part.children is None:
        raise _UnsupportedError(part.text)
    return list(part.children)


def _sub_fold(part: _Tok, maxlen: int) -> list[str]:
    # TokenList.fold(): the part folded on its own, starting on an empty line.
    return _refold(_children(part), maxlen)


def _header(name: str, value_tree: _Tok) -> list[_Tok]:
    label = _list(
        "header-label", [_term(name, "header-name"), _term(":", "header-sep")], ew_allowed=False
    )
    if not value_tree.children:
        return [label, value_tree]  # an empty value gets no blank after the colon
    return [label, _list("cfws", [_term(" ", "fws")]), value_tree]


def _unstructured_tree(value: str) -> _Tok:
    # email._header_value_parser.get_unstructured, for text without "=?": a run of blanks
    # starting with a space or tab (extended by str.lstrip, like get_fws), or a run of non-blanks.
    tokens: list[_Tok] = []
    while value:
        if value[0] in _WSP:
            rest = value.lstrip()
            tokens.append(_term(value[: len(value) - len(rest)], "fws"))
            value = rest
            continue
        word, *remainder = _WSP_SPLIT(value, 1)
        tokens.append(_term(word, "vtext"))
        value = "".join(remainder)
    return _list("unstructured", tokens)


def _fits_fast(name: str, value: str, maxlen: int) -> bool:
    return value.isascii() and len(name) + 2 + len(value) <= maxlen


def fold_unstructured(name: str, value: str, *, policy: EmailPolicy = POLICY) -> str:
    """Return the header line(s) `policy` writes for an unstructured header (Subject, X-…)."""
    maxlen = policy.max_line_length
    if "=?" not in value and not policy.utf8:
        if value and _fits_fast(name, value, maxlen):
            return f"{name}: {value}{CRLF}"
        try:
            return CRLF.join(_refold(_header(name, _unstructured_tree(value)), maxlen)) + CRLF
        except _UnsupportedError:
            pass
    return _package_fold(name, value, policy)


def _quote_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _display_name_tree(display_name: str) -> _Tok:
    words = display_name.split(" ")
    if not all(words) or any(word[0].isspace() for word in words):
        # Leading, trailing or repeated blanks, or a blank the parser's lstrip would merge.
        raise _UnsupportedError(display_name)
    space = _list("cfws", [_term(" ", "fws")])
    if _SPECIALS.isdisjoint(display_name):
        # Address.__str__ leaves it bare: a phrase of atoms, each followed by its blank.
        atoms = [_list("atom", [_term(word, "atext"), space]) for word in words]
        return _list("display-name", atoms)
    # Quoted: ptext words separated by blanks inside a bare-quoted-string.
    inner: list[_Tok] = []
    for index, word in enumerate(words):
        if index:
            inner.append(_term(" ", "fws"))
        inner.append(_term(word, "ptext"))
    bare = _Tok(_quote_string(display_name), "bare-quoted-string", inner)
    quoted = _Tok(bare.text + " ", "quoted-string", [bare, space])
    return _list("display-name", [quoted])


def _mailbox_tree(display_name: str, addr_spec: str) -> _Tok:
    addr = _Tok(addr_spec, "addr-spec", [], ew_allowed=False, opaque=True)
    if display_name:
        angle = _list(
            "angle-addr", [_term("<", "angle-addr-start"), addr, _term(">", "angle-addr-end")]
        )
        mailbox = _list("name-addr", [_display_name_tree(display_name), angle])
        mailbox = _list("mailbox", [mailbox])
    else:
        mailbox = _list("mailbox", [addr])
    return _list("address-list", [_list("address", [mailbox])])


def fold_mailbox(
    name: str, display_name: str, addr_spec: str, *, policy: EmailPolicy = POLICY
) -> str:
    """Return the header line(s) `policy` writes for `name: [Address(display_name, addr_spec)]`.

    `addr_spec` must be the header form from postroom.mail.addresses (ASCII unless SMTPUTF8).
    """
    maxlen = policy.max_line_length
    if "=?" not in display_name and addr_spec.isascii() and not policy.utf8:
        formatted = (
            addr_spec
            if not display_name
            else (
                f"{display_name} <{addr_spec}>"
                if _SPECIALS.isdisjoint(display_name)
                else f"{_quote_string(display_name)} <{addr_spec}>"
            )
        )
        if _fits_fast(name, formatted, maxlen) and (not display_name or _simple_name(display_name)):
            return f"{name}: {formatted}{CRLF}"
        try:
            tree = _mailbox_tree(display_name, addr_spec)
            return CRLF.join(_refold(_header(name, tree), maxlen)) + CRLF
        except _UnsupportedError:
            pass
    value = [HeaderAddress(display_name, addr_spec=addr_spec)]
    return _package_fold(name, value, policy)


def _simple_name(display_name: str) -> bool:
    # For these, str(parse tree) == Address.__str__ (see _display_name_tree).
    words = display_name.split(" ")
    return all(words) and not any(word[0].isspace() for word in words)


def fold_message_id(message_id: str, *, policy: EmailPolicy = POLICY) -> str:
    """Return the Message-ID line `policy` writes for a valid `<left@right>` message id.

    A msg-id has no blank to fold at: the package keeps it on the header's line when it fits,
    else moves it alone to a continuation line when it fits there, else leaves it unfolded
    (still far below the 998-octet limit: a domain has at most 253 octets, RFC 1035 §2.3.4).
    """
    maxlen = policy.max_line_length
    if len(message_id) <= maxlen - len("Message-ID: "):
        return f"Message-ID: {message_id}{CRLF}"
    if len(message_id) + 1 <= maxlen:
        return f"Message-ID:{CRLF} {message_id}{CRLF}"
    return f"Message-ID: {message_id}{CRLF}"


def date_line(date: object) -> str:
    """The Date header for an aware datetime (RFC 5322 §3.3); always short, never folded."""
    return f"Date: {format_datetime(date)}{CRLF}"  # type: ignore[arg-type]


def _package_fold(name: str, value: object, policy: EmailPolicy) -> str:
    header = policy.header_factory(name, value)
    return header.fold(policy=policy)
