"""CPython's header folder, ported: the engine under postroom.mail.folding.

`email._header_value_parser._refold_parse_tree` and `_fold_as_ew`, and
`email._encoded_words.encode`, as CPython 3.11 and 3.12 have them, step by step, on small
stand-ins for the parser's token trees (`Token`). postroom.mail.folding says what the port is
for and what it promises (its contract); this module only folds. A shape it does not model
raises `UnsupportedError`, and the caller asks the package instead.
"""

from __future__ import annotations

import base64
import re

from postroom.mail.encoding import CRLF, MAX_LINE_LENGTH

WSP = " \t"  # RFC 5322 WSP: the blanks folding happens at
WSP_CHARS = (" ", "\t")
SPECIALS = frozenset('()<>@,:;.\\"[]')  # RFC 5322 §3.2.3, as email._header_value_parser
_Q_SAFE = b"-!*+/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_Q_TABLE = {c: f"={c:02X}" for c in range(256)}
_Q_TABLE.update({c: chr(c) for c in _Q_SAFE})
_Q_TABLE[ord(" ")] = "_"
_OUR_EW = re.compile(r"=\?utf-8\?([qb])\?([^?]*)\?=")
_Q_ESCAPE = re.compile(r"=([0-9A-F]{2})")
EW_CHROME = len("=?utf-8?q??=")  # RFC 2047 §2: the charset and markers around the text


class UnsupportedError(Exception):
    """The input leaves the shapes the port models: use the email package instead."""


class Token:
    """A node of the email package's parse tree, reduced to what folding looks at.

    `children` is None for a terminal (a str subclass in the package, so hasattr(part,
    "encode") holds there); an opaque node is a token list whose inside is not modelled.
    """

    __slots__ = ("text", "kind", "children", "ew_allowed", "fws_first")

    def __init__(
        self,
        text: str,
        kind: str,
        children: list[Token] | None,
        ew_allowed: bool,
        fws_first: bool,
    ) -> None:
        self.text = text
        self.kind = kind
        self.children = children
        self.ew_allowed = ew_allowed
        self.fws_first = fws_first


def _term(text: str, kind: str) -> Token:
    return Token(text, kind, None, True, kind == "fws")


def _list(kind: str, children: list[Token], ew_allowed: bool | None = None) -> Token:
    return Token(
        "".join([c.text for c in children]),
        kind,
        children,
        all(c.ew_allowed for c in children) if ew_allowed is None else ew_allowed,
        children[0].fws_first if children else False,
    )


def ew_encode(text: str) -> str:
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


def longest_fitting_prefix(word: str, room: int) -> str:
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
        if EW_CHROME + (qlen if qlen - blen < 5 else blen) <= room:
            return word[:size]
    return ""


def decode_ew(segment: str) -> str:
    """str(get_unstructured(segment)) for "[blanks] one of our encoded words [blank text]".

    (The package can leave its last-encoded-word index on a blank it put before the word.)
    """
    stripped = segment.lstrip(WSP)
    if stripped is not segment:
        return segment[: len(segment) - len(stripped)] + decode_ew(stripped)
    match = _OUR_EW.match(segment)
    if match is None:
        raise UnsupportedError(segment)
    kind, payload = match.groups()
    if kind == "q":
        raw = _Q_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), payload.replace("_", " "))
        text = raw.encode("latin-1").decode("utf-8")
    else:
        text = base64.b64decode(payload).decode("utf-8")
    tail = segment[match.end() :]
    if tail and tail[0] not in WSP:
        raise UnsupportedError(segment)
    return text + tail


def _steal_trailing_wsp(lines: list[str]) -> str:
    if lines[-1] and lines[-1][-1] in WSP:
        wsp = lines[-1][-1]
        lines[-1] = lines[-1][:-1]
        return wsp
    return ""


class Folder:
    """email._header_value_parser._refold_parse_tree and _fold_as_ew, on `Token` trees.

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

    def fold(self, parts: list[Token]) -> list[str]:  # noqa: C901 - a port of CPython's folder: kept as it is upstream
        # One long loop, as _refold_parse_tree is: kept statement by statement in its order, so
        # the two can be read side by side when a Python release changes the original.
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
            if part.kind == "ptext" and not SPECIALS.isdisjoint(tstr):
                want_encoding = True  # specials in a quoted word are encoded (CPython gh-80222)
            if not tstr.isascii():
                want_encoding = True
            if want_encoding and not wrap_as_ew_blocked:
                if not part.ew_allowed:
                    want_encoding = False
                    self.last_ew = None
                    encoded_part = CRLF.join(Folder(maxlen).fold(_children(part)))
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
            and not segment[len(self.ew_encoded) : len(self.ew_encoded) + 1].strip(WSP)
        ):
            return self.ew_text + segment[len(self.ew_encoded) :]
        return decode_ew(segment)

    def _fold_as_ew(self, to_encode: str) -> None:
        lines = self.lines
        maxlen = self.maxlen
        last_ew = self.last_ew
        if last_ew is not None:
            to_encode = self._previous_ew_text() + to_encode
            lines[-1] = lines[-1][:last_ew]
        if not to_encode:
            raise UnsupportedError(to_encode)
        if to_encode[0] in WSP:
            leading_wsp = to_encode[0]
            to_encode = to_encode[1:]
            if len(lines[-1]) == maxlen:
                lines.append(_steal_trailing_wsp(lines))
            lines[-1] += leading_wsp
        if not to_encode:
            raise UnsupportedError(to_encode)
        trailing_wsp = ""
        if to_encode[-1] in WSP:
            trailing_wsp = to_encode[-1]
            to_encode = to_encode[:-1]
        new_last_ew = len(lines[-1]) if last_ew is None else last_ew
        while to_encode:
            remaining_space = maxlen - len(lines[-1])
            text_space = remaining_space - EW_CHROME
            if text_space <= 0:
                lines.append(" ")
                continue
            word = to_encode[:text_space]
            encoded = ew_encode(word)
            if len(encoded) > remaining_space:
                word = longest_fitting_prefix(word, remaining_space)
                encoded = ew_encode(word)
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


def _children(part: Token) -> list[Token]:
    if part.kind == "opaque" or part.children is None:
        raise UnsupportedError(part.text)
    return list(part.children)


def split_blanks(value: str) -> list[str]:
    """email._header_value_parser.get_unstructured's tokens, for text without "=?": blanks and
    words alternating, the first and last possibly empty.

    A blank run starts with a space or tab and takes every white space after it (get_fws uses
    str.lstrip; `\\s` is the same set); a word runs up to the next space or tab.
    """
    return _BLANKS_SPLIT(value)


_BLANKS_SPLIT = re.compile(r"([ \t]\s*)").split


def terminals(value: str) -> list[Token]:
    return [
        _term(text, "fws" if index % 2 else "vtext")
        for index, text in enumerate(split_blanks(value))
        if text
    ]


def one_line(start: str, tokens: list[tuple[str, bool]], maxlen: int) -> str | None:
    """What Folder writes for (text, is encoded) tokens that all fit on one line, else None.

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
        encoded = ew_encode(merged)
        if ew_start + len(encoded) > maxlen:
            return None  # _fold_as_ew would split it over lines
        line = line[:ew_start] + encoded
        ew_end, ew_text = len(line), merged
    return line


def quote_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def simple_words(display_name: str) -> list[str] | None:
    # Single blanks between words, none at the ends, and no other blank right after one
    # (the parser's lstrip would merge it into the folding white space): then str(parse tree)
    # is exactly Address.__str__, and the tree below is exactly the parser's.
    if "\t" in display_name:
        return None
    words = display_name.split(" ")
    if all(words) and not any(word[0].isspace() for word in words):
        return words
    return None


def display_name_parts(display_name: str, words: list[str]) -> list[Token]:
    """The tokens a non-ASCII display name is folded as (the package always descends into it)."""
    parts: list[Token] = []
    if SPECIALS.isdisjoint(display_name):
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


def _display_name_tree(display_name: str, words: list[str]) -> Token:
    space = _CFWS
    if SPECIALS.isdisjoint(display_name):
        atoms = [_list("atom", [_term(word, "atext"), space]) for word in words]
        return _list("display-name", atoms)
    inner: list[Token] = []
    for index, word in enumerate(words):
        if index:
            inner.append(_SPACE)
        inner.append(_term(word, "ptext"))
    bare = Token(quote_string(display_name), "bare-quoted-string", inner, True, False)
    quoted = Token(bare.text + " ", "quoted-string", [bare, space], True, False)
    return _list("display-name", [quoted])


def angle_addr(addr_spec: str) -> Token:
    addr = Token(addr_spec, "opaque", [], False, False)
    return _list("angle-addr", [_term("<", "angle-addr-start"), addr, _term(">", "angle-addr-end")])


# The full parse trees, for tests: they check that folding's shortcuts agree with folding the
# whole tree, as well as with the package.
def tree_fold_unstructured(name: str, value: str, maxlen: int = MAX_LINE_LENGTH) -> str:
    label = _list("header-label", [_term(name, "header-name"), _term(":", "header-sep")], False)
    tree = _list("unstructured", terminals(value))
    parts = [label, _CFWS, tree] if value else [label, tree]
    return CRLF.join(Folder(maxlen).fold(parts)) + CRLF


def tree_fold_mailbox(
    name: str, display_name: str, addr_spec: str, maxlen: int = MAX_LINE_LENGTH
) -> str:
    label = _list("header-label", [_term(name, "header-name"), _term(":", "header-sep")], False)
    addr = Token(addr_spec, "opaque", [], False, False)
    if display_name:
        words = simple_words(display_name)
        if words is None:
            raise UnsupportedError(display_name)
        display = _display_name_tree(display_name, words)
        name_addr = _list("name-addr", [display, angle_addr(addr_spec)])
        mailbox = _list("mailbox", [name_addr])
    else:
        mailbox = _list("mailbox", [addr])
    tree = _list("address-list", [_list("address", [mailbox])])
    return CRLF.join(Folder(maxlen).fold([label, _CFWS, tree])) + CRLF
