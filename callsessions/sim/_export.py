"""File downloads (``format=``): CSV, CSV_EXCEL, XLSX, JSON, optionally zipped.

Every writer is a plain generator of byte chunks fed with batches of records, so the server
streams a download of any size without holding it: zip archives (and the XLSX workbook,
itself a zip) are written in zipfile's streaming mode, with data descriptors.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Generator, Iterable, Iterator
from typing import Any
from urllib.parse import quote

import orjson

__all__ = ["content_disposition", "export_chunks", "media_type"]

EXTENSIONS = {"CSV": "csv", "CSV_EXCEL": "csv", "XLSX": "xlsx", "JSON": "json"}
MEDIA_TYPES = {
    "CSV": "text/csv; charset=utf-8",
    "CSV_EXCEL": "text/csv; charset=utf-8",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "JSON": "application/json",
}
Batches = Iterable[list[dict[str, Any]]]


class _Sink:
    """A write-only, non-seekable file that collects bytes until drained."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def media_type(fmt: str, zipped: bool) -> str:
    """The Content-Type of a download."""
    return "application/zip" if zipped else MEDIA_TYPES[fmt]


def download_name(fmt: str, filename: str, zipped: bool) -> str:
    """``calls.csv``, ``calls.zip``..."""
    return f"{filename}.zip" if zipped else f"{filename}.{EXTENSIONS[fmt]}"


def content_disposition(name: str) -> str:
    """``attachment; filename="..."`` (plus RFC 5987 ``filename*`` for non-ASCII names)."""
    if name.isascii():
        return f'attachment; filename="{name}"'
    fallback = name.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def _csv(batches: Batches, fields: tuple[str, ...], excel: bool) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";" if excel else ",")
    if excel:
        buf.write("\ufeff")
    writer.writerow(fields)
    for batch in batches:
        writer.writerows([[_cell(rec.get(f)) for f in fields] for rec in batch])
        yield buf.getvalue().encode("utf-8")
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _json(batches: Batches) -> Iterator[bytes]:
    first = True
    yield b"["
    for batch in batches:
        if not batch:
            continue
        body = b",".join(orjson.dumps(rec) for rec in batch)
        yield body if first else b"," + body
        first = False
    yield b"]"


_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ILLEGAL_XML.sub("", text)


def _column_letters(n: int) -> list[str]:
    out = []
    for i in range(n):
        name = ""
        i += 1
        while i:
            i, rem = divmod(i - 1, 26)
            name = chr(65 + rem) + name
        out.append(name)
    return out


_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_XLSX_STATIC = {
    "[Content_Types].xml": _XML_HEAD
    + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>",
    "_rels/.rels": _XML_HEAD + f'<Relationships xmlns="{_NS_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>",
    "xl/workbook.xml": _XML_HEAD + f'<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
    '<sheets><sheet name="calls" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": _XML_HEAD + f'<Relationships xmlns="{_NS_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_NS_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>",
}


def _sheet_rows(batches: Batches, fields: tuple[str, ...], total: int | None) -> Iterator[str]:
    letters = _column_letters(len(fields))
    dimension = "" if total is None else f'<dimension ref="A1:{letters[-1]}{total + 1}"/>'
    yield _XML_HEAD + f'<worksheet xmlns="{_NS_MAIN}">{dimension}<sheetData>'
    header = "".join(
        f'<c r="{col}1" t="inlineStr"><is><t>{_xml_text(name)}</t></is></c>'
        for col, name in zip(letters, fields, strict=True)
    )
    yield f'<row r="1">{header}</row>'
    row = 1
    for batch in batches:
        parts: list[str] = []
        for rec in batch:
            row += 1
            cells: list[str] = []
            for col, name in zip(letters, fields, strict=True):
                value = rec.get(name)  # a key may be absent (missing_id_every)
                if value is None:
                    continue
                ref = f"{col}{row}"
                if isinstance(value, bool):
                    cells.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
                elif isinstance(value, int | float):
                    cells.append(f'<c r="{ref}"><v>{value}</v></c>')
                else:
                    text = _xml_text(_cell(value))
                    cells.append(
                        f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}'
                        "</t></is></c>"
                    )
            parts.append(f'<row r="{row}">{"".join(cells)}</row>')
        yield "".join(parts)
    yield "</sheetData></worksheet>"


def _xlsx_into(
    out: Any, batches: Batches, fields: tuple[str, ...], total: int | None
) -> Iterator[None]:
    """Write a workbook into the file-like ``out``; yield after each batch."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as book:
        for name, text in _XLSX_STATIC.items():
            book.writestr(name, text)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            for piece in _sheet_rows(batches, fields, total):
                sheet.write(piece.encode("utf-8"))
                yield None


def export_chunks(
    batches: Batches,
    fields: tuple[str, ...],
    fmt: str,
    *,
    zipped: bool,
    filename: str,
    total: int | None = None,
) -> Generator[bytes, None, None]:
    """The bytes of a download, chunk by chunk (about one chunk per batch of records).

    ``total``, the number of records when known, lets the workbook declare its dimension.
    """
    sink = _Sink()
    if fmt == "XLSX":
        if zipped:
            with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as outer:
                name = download_name(fmt, filename, False)
                with outer.open(name, "w", force_zip64=True) as entry:
                    for _ in _xlsx_into(entry, batches, fields, total):
                        yield sink.drain()
        else:
            for _ in _xlsx_into(sink, batches, fields, total):
                yield sink.drain()
        yield sink.drain()
        return
    pieces = _json(batches) if fmt == "JSON" else _csv(batches, fields, fmt == "CSV_EXCEL")
    if not zipped:
        yield from pieces
        return
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # noqa: SIM117
        with archive.open(download_name(fmt, filename, False), "w", force_zip64=True) as entry:
            for piece in pieces:
                entry.write(piece)
                yield sink.drain()
    yield sink.drain()
