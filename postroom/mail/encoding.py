"""Text-body encoding, shared by the exact builder and the fast bulk renderer.

Both builders must make the same choices: the `email` policies, the line length, and which
Content-Transfer-Encoding a text part gets (`choose_text_cte`). The exact builder then lets the
`email` package encode the part; the bulk renderer calls `encode_text_body` and
`qp_encode_line`, which reproduce the package's 7bit, quoted-printable and base64 output byte
for byte (`email.quoprimime.body_encode` alone costs ≈ 200 µs for 2 KB; this takes a few).
tests/mail/test_encoding.py proves the equality on a corpus and on random input.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from email import policy as email_policy

# RFC 2045 §6.7 (5) and §6.8: quoted-printable and base64 lines are at most 76 characters.
# The `email` package uses policy.max_line_length for both header folding and body encoding,
# so 76 (≤ the 78 RFC 5322 §2.1.1 recommends for headers) keeps every line within both RFCs.
MAX_LINE_LENGTH = 76

# policy.SMTP: CRLF line endings and RFC 2047 encoded words for non-ASCII header text.
POLICY = email_policy.SMTP.clone(max_line_length=MAX_LINE_LENGTH)
# RFC 6531: with SMTPUTF8 the headers carry raw UTF-8 instead of encoded words.
POLICY_SMTPUTF8 = email_policy.SMTPUTF8.clone(max_line_length=MAX_LINE_LENGTH)

CRLF = "\r\n"

# ---------------------------------------------------------------------------------------------
# Text bodies
# ---------------------------------------------------------------------------------------------

# Bytes quoprimime.body_encode leaves alone (plus CR/LF, which are line breaks there).
_QP_SAFE = (
    b" !\"#$%&'()*+,-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
    b"abcdefghijklmnopqrstuvwxyz{|}~\t"
)
QP_SAFE_LF = _QP_SAFE + b"\n"
_QP_MARK = bytes(c if c in QP_SAFE_LF else 0 for c in range(256))
_QP_ESCAPES = tuple(f"={c:02X}".encode("ascii") for c in range(256))
_WSP_CHARS = (" ", "\t")
# Every byte but LF becomes "x", so a line longer than the limit is a substring search (C speed;
# a regular expression tries every position and is 10x slower).
_ALL_BUT_LF_TO_X = bytes(c if c == 0x0A else 0x78 for c in range(256))
_TOO_LONG = b"x" * (MAX_LINE_LENGTH + 1)
_BASE64_CHUNK = MAX_LINE_LENGTH // 4 * 3  # 57 bytes -> 76 characters, as email's _encode_base64


def _has_long_line(data: bytes) -> bool:
    return _TOO_LONG in data.translate(_ALL_BUT_LF_TO_X)


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


def cte_for(
    *,
    is_ascii: bool,
    has_nul: bool,
    has_long_line: bool,
    has_boundary: bool,
    escaped: int,
    size: int,
) -> str:
    if is_ascii and not has_nul and not has_long_line and not has_boundary:
        # Readable as is. RFC 2045 §2.7: 7bit data has no NUL and short lines. A 7bit part must
        # not contain a multipart boundary (RFC 2046 §5.1.1); quoted-printable turns "=" into
        # "=3D" and base64 has no "-", so neither of them can.
        return "7bit"
    # Quoted-printable costs 3 bytes per escaped byte, base64 4/3 per byte: base64 is shorter
    # once more than one byte in six needs escaping (mostly non-Latin scripts).
    return "base64" if escaped * 6 > size else "quoted-printable"


def _choose_cte(normal: bytes, boundaries: Sequence[str]) -> str:
    return cte_for(
        is_ascii=normal.isascii(),
        has_nul=b"\0" in normal,
        has_long_line=_has_long_line(normal),
        has_boundary=any(boundary.encode("ascii") in normal for boundary in boundaries),
        escaped=len(normal.translate(None, QP_SAFE_LF)),  # what is left must be escaped
        size=len(normal),
    )


class LineStats:
    """What the CTE choice needs to know about a body, gathered line by line (bulk renderer)."""

    __slots__ = ("is_ascii", "has_nul", "has_long_line", "has_boundary", "escaped", "size")

    def __init__(self) -> None:
        self.is_ascii = True
        self.has_nul = self.has_long_line = self.has_boundary = False
        self.escaped = self.size = 0

    def copy(self) -> LineStats:
        other = LineStats()
        other.is_ascii, other.has_nul = self.is_ascii, self.has_nul
        other.has_long_line, other.has_boundary = self.has_long_line, self.has_boundary
        other.escaped, other.size = self.escaped, self.size
        return other

    def add(self, line: bytes, boundaries: Sequence[bytes]) -> None:
        """Count one line (without its line end)."""
        if not line.isascii():
            self.is_ascii = False
        if b"\0" in line:
            self.has_nul = True
        if len(line) > MAX_LINE_LENGTH:
            self.has_long_line = True
        for boundary in boundaries:
            if boundary in line:
                self.has_boundary = True
        self.escaped += len(line.translate(None, QP_SAFE_LF))
        self.size += len(line) + 1

    def cte(self) -> str:
        return cte_for(
            is_ascii=self.is_ascii,
            has_nul=self.has_nul,
            has_long_line=self.has_long_line,
            has_boundary=self.has_boundary,
            escaped=self.escaped,
            size=self.size,
        )


def choose_text_cte(text: str, *, boundaries: Sequence[str] = ()) -> str:
    """Return the Content-Transfer-Encoding a text part gets: 7bit, quoted-printable or base64.

    Both builders call this, so they agree; the exact builder then lets the `email` package
    encode, the bulk renderer calls `encode_text_body`.
    """
    return _choose_cte(_normal_body(text), boundaries)


def _qp_wrap_line(line: str) -> str:
    """quoprimime.body_encode's per-line loop: soft breaks every 75, escaped trailing blank."""
    maxlinelen = MAX_LINE_LENGTH
    maxlinelen1 = maxlinelen - 1
    soft_break = "=" + CRLF
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
    return CRLF.join(out)


def _qp_escape(data: bytes) -> bytes:
    unsafe = data.translate(None, QP_SAFE_LF)  # the bytes to escape, in order
    if not unsafe:
        return data
    # Mark each of them with NUL (itself escaped), split there, and put "=XX" in the gaps.
    pieces = data.translate(_QP_MARK).split(b"\0")
    joined: list[bytes] = [b""] * (2 * len(unsafe) + 1)
    joined[0::2] = pieces
    joined[1::2] = map(_QP_ESCAPES.__getitem__, unsafe)
    return b"".join(joined)


def qp_encode_line(line: bytes) -> bytes:
    """One line (no line end) as quoprimime.body_encode writes it; the body is line-local."""
    escaped = _qp_escape(line)
    if len(escaped) > MAX_LINE_LENGTH or escaped[-1:] in (b" ", b"\t"):
        return _qp_wrap_line(escaped.decode("ascii")).encode("ascii")
    return escaped


def base64_body(embedded: bytes) -> bytes:
    """email.contentmanager._encode_base64 of the CRLF-joined lines, with CRLF line ends."""
    chunks = [
        binascii.b2a_base64(embedded[i : i + _BASE64_CHUNK], newline=False)
        for i in range(0, len(embedded), _BASE64_CHUNK)
    ]
    return b"\r\n".join(chunks) + b"\r\n"


def _qp_body(normal: bytes) -> bytes:
    """quoprimime.body_encode(normal_body, MAX_LINE_LENGTH) with CRLF, 10-20x faster.

    The package maps every character through a table and loops over every line; here only the
    runs of bytes that need escaping and the lines that need wrapping are touched.
    """
    escaped = _qp_escape(normal)
    if not (_has_long_line(escaped) or b" \n" in escaped or b"\t\n" in escaped):
        return escaped.replace(b"\n", b"\r\n")
    lines = escaped.decode("ascii").split("\n")
    for index, line in enumerate(lines):
        if len(line) > MAX_LINE_LENGTH or line[-1:] in _WSP_CHARS:
            lines[index] = _qp_wrap_line(line)
    return CRLF.join(lines).encode("ascii")


def encode_text_body(text: str, *, boundaries: Sequence[str] = ()) -> tuple[str, bytes]:
    """Return (cte, body bytes with CRLF line ends) exactly as the email package writes the part."""
    normal = _normal_body(text)
    cte = _choose_cte(normal, boundaries)
    if cte == "7bit":
        return cte, normal.replace(b"\n", b"\r\n")
    if cte == "quoted-printable":
        return cte, _qp_body(normal)
    return cte, base64_body(normal.replace(b"\n", b"\r\n"))
