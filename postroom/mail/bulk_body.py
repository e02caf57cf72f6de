"""The bodies of the fast bulk renderer (postroom.mail.bulk): one text part of a template,
encoded once as far as its static lines allow, then finished per recipient.

Body encodings are line-local (7bit and quoted-printable encode each line on its own), so a
line without merge fields is encoded once; only the choice of encoding looks at the whole
body, through summed per-line statistics (postroom.mail.encoding reproduces the `email`
package's choices byte for byte).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from postroom.mail.encoding import (
    MAX_LINE_LENGTH,
    QP_SAFE_LF,
    LineStats,
    base64_body,
    cte_for,
    encode_text_body,
    qp_encode_line,
)
from postroom.mail.merge import CompiledField


class MergeFallback(Exception):  # noqa: N818 - a signal, not an error
    """This recipient's merge needs the exact builder."""


class CompiledBody:
    """One text part, encoded as far as the template allows before the values are known."""

    def __init__(self, field: CompiledField, boundaries: Sequence[str]) -> None:
        self.field = field
        self.boundaries = tuple(boundaries)
        self._boundary_bytes = tuple(boundary.encode("ascii") for boundary in boundaries)
        self.encoded: tuple[str, bytes] | None = None  # the whole part, when it is static
        # Else, line by line: runs of static lines as (raw with CRLFs, quoted-printable), and
        # for each line with merge fields the index of its entry in self._merged.
        self.layout: list[tuple[bytes, bytes] | int] | None = None
        self._merged: list[tuple[CompiledField, bool]] = []  # (line, is the template's last)
        if field.is_static:
            self.encoded = encode_text_body(field.fill({}), boundaries=boundaries)
            return
        lines = field.split_lines()
        if lines is None:
            return  # the filler cannot fill lines apart: encode the whole part every time
        self.static_stats = LineStats()
        self.layout = []
        pending: list[bytes] = []
        last = len(lines) - 1
        for index, line_field in enumerate(lines):
            if not line_field.is_static:
                self._flush(pending)
                self.layout.append(len(self._merged))
                self._merged.append((line_field, index == last))
                continue
            text = line_field.fill({})
            if index == last and not text:
                break  # the template ends with a line end
            pending.append(text.encode("utf-8"))
            self.static_stats.add(pending[-1], self._boundary_bytes)
        self._flush(pending)

    def _flush(self, pending: list[bytes]) -> None:
        if pending and self.layout is not None:
            raw = b"".join(line + b"\r\n" for line in pending)
            qp = b"".join(qp_encode_line(line) + b"\r\n" for line in pending)
            self.layout.append((raw, qp))
            pending.clear()

    def render(self, values: Mapping[str, object]) -> tuple[str, bytes]:
        """(cte, body) for these values; raises MergeFallback when the exact builder must do it."""
        if self.encoded is not None:
            return self.encoded
        if self.layout is None:
            content = self.field.fill(values)
            if not content:
                raise MergeFallback
            return encode_text_body(content, boundaries=self.boundaries)
        filled: list[list[bytes]] = []
        for line_field, is_last in self._merged:
            text = line_field.fill(values)
            if "\r" in text:
                raise MergeFallback  # a CR next to the template's LF would join with it
            lines = text.encode("utf-8").split(b"\n")
            if is_last and not lines[-1]:
                lines.pop()  # a line end at the very end is not one more line
            filled.append(lines)
        every = [line for lines in filled for line in lines]
        # The statistics of the merged lines, from one joined copy (C-speed operations).
        blob = b"\n".join(every)
        static = self.static_stats
        size = static.size + (len(blob) + 1 if every else 0)
        if not size:
            raise MergeFallback  # an empty part: build_message leaves it out
        cte = cte_for(
            is_ascii=static.is_ascii and blob.isascii(),
            has_nul=static.has_nul or b"\0" in blob,
            has_long_line=static.has_long_line
            or (bool(every) and max(map(len, every)) > MAX_LINE_LENGTH),
            has_boundary=static.has_boundary or any(b in blob for b in self._boundary_bytes),
            escaped=static.escaped + len(blob.translate(None, QP_SAFE_LF)),
            size=size,
        )
        is_qp = cte == "quoted-printable"
        out: list[bytes] = []
        for entry in self.layout:
            if entry.__class__ is int:
                lines = filled[entry]  # type: ignore[index]
                if is_qp:
                    out += [qp_encode_line(line) + b"\r\n" for line in lines]
                else:
                    out += [line + b"\r\n" for line in lines]
            else:
                out.append(entry[1] if is_qp else entry[0])  # type: ignore[index]
        body = b"".join(out)
        return cte, base64_body(body) if cte == "base64" else body
