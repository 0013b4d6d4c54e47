"""Size checks on an uploaded .xlsx before any workbook reader opens it.

An .xlsx is a zip of XML parts. A few megabytes can expand to gigabytes (a zip bomb) or
hold millions of cells, and openpyxl keeps every cell of a normally loaded workbook in
memory. :func:`check_xlsx` looks at the zip directory (the uncompressed size of every
member, as declared; :mod:`zipfile` refuses to inflate a member past its declared size)
and then streams each worksheet part in 1 MB chunks, counting cells (``<c`` and ``:c``
with ``bytes.count``) and stopping as soon as the total passes the limit. Memory stays
at one chunk; nothing is parsed into objects.

The caller turns :class:`XlsxTooLarge` into a message (``bot/texts.py``); a file that is
not a zip is left to the reader, which has its own message for it.
"""
from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["XlsxLimits", "XlsxTooLarge", "check_xlsx", "count_cells", "worksheet_parts"]

_CHUNK = 1 << 20
# A cell is ``<c ...>`` or, with a namespace prefix, ``<x:c ...>``: every cell holds
# "<c" or ":c". Counting those two byte pairs (bytes.count, no regex, no objects) also
# counts the few other tags starting with c (col, cfRule, ...) and, in a file written
# with prefixes (Excel writes none), the closing ``</x:c>`` too: the count errs on the
# side of too many (at most about twice), never too few.
_NEEDLES = (b"<c", b":c")
_WORKSHEET = re.compile(r"^xl/worksheets/[^/]+\.xml$", re.IGNORECASE)
# a worksheet may live anywhere in the zip: openpyxl follows the relationship parts
_RELATIONSHIP = re.compile(rb"<(?:[\w.\-]+:)?Relationship\b[^>]*>")
_TYPE = re.compile(rb"""\bType\s*=\s*["']([^"']*)["']""")
_TARGET = re.compile(rb"""\bTarget\s*=\s*["']([^"']*)["']""")


@dataclass(frozen=True)
class XlsxLimits:
    max_uncompressed_bytes: int
    max_cells: int


class XlsxTooLarge(ValueError):
    """``kind`` is "bytes" (uncompressed size) or "cells"; ``amount`` is what was found
    (for cells: the count at which reading stopped, so "more than ``limit``")."""

    def __init__(self, kind: str, amount: int, limit: int) -> None:
        super().__init__(f"{kind}: {amount} > {limit}")
        self.kind = kind
        self.amount = amount
        self.limit = limit


def count_cells(zf: zipfile.ZipFile, member: str, stop_after: int) -> int:
    """The number of cells in one worksheet part (an upper bound, see ``_NEEDLES``),
    counted while streaming 1 MB at a time; counting stops once it passes
    ``stop_after``."""
    count = 0
    tail = b""
    with zf.open(member) as src:
        while chunk := src.read(_CHUNK):
            buf = tail + chunk
            # a pair split between two chunks is counted once: with the last byte of
            # the previous chunk in front (a lone byte can match nothing on its own)
            count += sum(buf.count(needle) for needle in _NEEDLES)
            tail = buf[-1:]
            if count > stop_after:
                break
    return count


def check_xlsx(path: Path | str, limits: XlsxLimits) -> None:
    """Raise :class:`XlsxTooLarge` when the workbook at ``path`` expands past
    ``limits.max_uncompressed_bytes`` or holds more than ``limits.max_cells`` cells in
    all its worksheets together. Returns quietly for a file that is not a zip."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return
    with zf:
        infos = zf.infolist()
        total = sum(max(i.file_size, 0) for i in infos)
        if total > limits.max_uncompressed_bytes:
            raise XlsxTooLarge("bytes", total, limits.max_uncompressed_bytes)
        cells = 0
        for name in worksheet_parts(zf):
            try:
                cells += count_cells(zf, name, limits.max_cells - cells)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError):
                return  # a damaged part: the reader reports the file as unreadable
            if cells > limits.max_cells:
                raise XlsxTooLarge("cells", cells, limits.max_cells)


def worksheet_parts(zf: zipfile.ZipFile) -> list[str]:
    """Every worksheet part: those under xl/worksheets/ and every target of a worksheet
    relationship in any ``.rels`` part (so a sheet moved elsewhere is counted too)."""
    names = set(zf.namelist())
    parts = {n for n in names if _WORKSHEET.match(n)}
    for rels in sorted(n for n in names if n.lower().endswith(".rels")):
        folder = posixpath.dirname(posixpath.dirname(rels))  # X/_rels/Y.rels -> X
        try:
            data = zf.read(rels)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError):
            continue
        for tag in _RELATIONSHIP.findall(data):
            kind, target = _TYPE.search(tag), _TARGET.search(tag)
            if kind is None or target is None or not kind.group(1).endswith(b"/worksheet"):
                continue
            ref = target.group(1).decode("utf-8", "replace")
            path = ref.lstrip("/") if ref.startswith("/") else posixpath.join(folder, ref)
            path = posixpath.normpath(path)
            if path in names:
                parts.add(path)
    return sorted(parts)
