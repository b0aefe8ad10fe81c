"""Streaming readers for the import formats: CSV (UTF-8/GB18030), XLSX, JSON lines, Parquet.

Each reader yields batches of ``(row_number, {column: value})`` with bounded memory, plus
row-level problems (bad bytes, bad JSON, rows shorter or longer than the header) as
:class:`RowProblem` so that the importer can quarantine the row instead of failing the file.
File-level problems raise :class:`FileError`.

A CSV row with fewer fields than the header (``short_row``: a lost delimiter shifts every value
after it, or the line was cut off) or with values beyond the header (``long_row``) is quarantined,
never guessed at. Its values still carry every header column (the missing ones as None), so that
``quarantine fix`` can set them by name; empty trailing fields (a trailing delimiter, as some
spreadsheet exports write) are not values and are ignored.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from medscrm.common import MedscrmError

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class FileError(MedscrmError):
    """The whole file cannot be imported; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str, code: str = "bad_file"):
        super().__init__(f"{Path(path).name}: {reason}")
        self.path = str(path)
        self.reason = reason
        self.code = code


@dataclass
class RowProblem:
    field: str
    code: str
    reason: str
    value: Any = None


@dataclass
class Row:
    number: int  # 1-based data row number as a person would count it (header = row 1 in files)
    values: dict[str, Any]
    problems: list[RowProblem] = field(default_factory=list)


def detect_format(path: Path, override: str | None = None) -> str:
    if override:
        if override not in {"csv", "xlsx", "jsonl", "parquet"}:
            raise FileError(path, f"unknown format {override!r}; use csv, xlsx, jsonl or parquet")
        return override
    fmt = FORMATS.get(path.suffix.lower())
    if not fmt:
        raise FileError(
            path,
            f"cannot tell the format from the extension {path.suffix!r}; "
            "use .csv/.tsv, .xlsx, .jsonl or .parquet (or --format)",
            "unknown_format",
        )
    return fmt


def sniff_encoding(sample: bytes) -> str:
    """utf-8-sig, utf-8 or gb18030, decided on the first bytes of the file."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        dec.decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(sample, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        return "utf-8"  # undecodable bytes are reported row by row


def _check_header(path: Path, header: list[str]) -> list[str]:
    cols = [str(h).strip() if h is not None else "" for h in header]
    if not any(cols):
        raise FileError(path, "the header row is empty", "empty_header")
    blanks = [i + 1 for i, c in enumerate(cols) if not c]
    if blanks:
        raise FileError(path, f"header has unnamed column(s) at position {blanks}", "blank_header")
    seen: dict[str, int] = {}
    dups = []
    for c in cols:
        seen[c] = seen.get(c, 0) + 1
        if seen[c] == 2:
            dups.append(c)
    if dups:
        raise FileError(
            path,
            f"duplicate header(s): {', '.join(dups)} — each column needs a unique name",
            "duplicate_header",
        )
    return cols


_SURROGATE = re.compile("[\udc80-\udcff]")


def _has_surrogates(s: str) -> bool:
    """True if decoding left undecodable bytes (surrogateescape) in ``s``."""
    return not s.isascii() and _SURROGATE.search(s) is not None


class Reader:
    fmt: str
    encoding: str | None = None
    columns: list[str]

    def batches(self, size: int) -> Iterator[list[Row]]:  # pragma: no cover - interface
        raise NotImplementedError


class CsvReader(Reader):
    fmt = "csv"

    def __init__(self, path: Path, encoding: str | None = None, delimiter: str | None = None):
        self.path = path
        with path.open("rb") as fh:
            sample = fh.read(1 << 20)
        if not sample.strip():
            raise FileError(path, "the file is empty", "empty_file")
        self.encoding = encoding or sniff_encoding(sample)
        try:
            codecs.lookup(self.encoding)
        except LookupError as exc:
            raise FileError(path, f"unknown encoding {self.encoding!r}") from exc
        text_sample = sample.decode(self.encoding, errors="replace")
        if delimiter is None:
            if path.suffix.lower() == ".tsv":
                delimiter = "\t"
            else:
                try:
                    delimiter = csv.Sniffer().sniff(text_sample.split("\n", 5)[0], ",;\t|").delimiter
                except csv.Error:
                    delimiter = ","
        self.delimiter = delimiter
        self._fh = path.open("r", encoding=self.encoding, errors="surrogateescape", newline="")
        self._reader = csv.reader(self._fh, delimiter=delimiter)
        try:
            header = next(self._reader)
        except StopIteration as exc:
            raise FileError(path, "the file is empty", "empty_file") from exc
        if _has_surrogates("".join(header)):
            raise FileError(path, f"the header is not valid {self.encoding}; pass --encoding", "bad_encoding")
        self.columns = _check_header(path, header)

    def batches(self, size: int) -> Iterator[list[Row]]:
        cols = self.columns
        n = len(cols)
        batch: list[Row] = []
        line = 1
        try:
            for rec in self._reader:
                line += 1
                if not rec or (len(rec) == 1 and not rec[0].strip()):
                    continue  # blank line
                problems = []
                if len(rec) > n:
                    extra = rec[n:]
                    if any(x.strip() for x in extra):
                        problems.append(
                            RowProblem(
                                "(row)",
                                "long_row",
                                f"row {line} has {len(rec)} fields but the header has {n}: "
                                f"values beyond the last column {cols[-1]!r}",
                                _text(extra),
                            )
                        )
                    rec = rec[:n]
                values: dict[str, Any] = dict(zip(cols, rec, strict=False))
                if len(rec) < n:
                    missing = cols[len(rec) :]
                    problems.append(
                        RowProblem(
                            "(row)",
                            "short_row",
                            f"row {line} has {len(rec)} fields but the header has {n}; "
                            f"missing column(s): {', '.join(missing)}",
                        )
                    )
                    values.update(dict.fromkeys(missing))
                for k, v in values.items():
                    if v and _has_surrogates(v):
                        problems.append(
                            RowProblem(k, "bad_encoding", f"bytes that are not valid {self.encoding}")
                        )
                        values[k] = v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                batch.append(Row(line, values, problems))
                if len(batch) >= size:
                    yield batch
                    batch = []
        finally:
            self._fh.close()
        if batch:
            yield batch


def _text(values: list[Any]) -> str:
    """Cells beyond the header, as one text for the quarantine entry (trailing empty ones dropped)."""
    vals = ["" if v is None else str(v) for v in values]
    while vals and not vals[-1].strip():
        vals.pop()
    return orjson.dumps(vals).decode()


def _cell(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))  # Excel stores phone numbers and ids as floats
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


class XlsxReader(Reader):
    fmt = "xlsx"

    def __init__(self, path: Path, sheet: str | None = None):
        # lazy: keeps `medscrm --help` light
        import openpyxl

        self.path = path
        try:
            self._wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException
            raise FileError(path, f"not a readable XLSX workbook ({type(exc).__name__})", "bad_xlsx") from exc
        try:
            ws = self._wb[sheet] if sheet else self._wb.worksheets[0]
        except KeyError as exc:
            raise FileError(path, f"no sheet named {sheet!r}; sheets: {self._wb.sheetnames}") from exc
        self._rows = ws.iter_rows(values_only=True)
        self._line = 0
        header = None
        for r in self._rows:
            self._line += 1
            if r and any(c not in (None, "") for c in r):
                header = list(r)
                break
        if header is None:
            raise FileError(path, "the workbook's first sheet is empty", "empty_file")
        while header and header[-1] in (None, ""):
            header.pop()
        self.columns = _check_header(path, header)

    def batches(self, size: int) -> Iterator[list[Row]]:
        n = len(self.columns)
        batch: list[Row] = []
        try:
            for r in self._rows:
                self._line += 1
                if not r or all(c in (None, "") for c in r):
                    continue
                problems = []
                if len(r) > n and any(c not in (None, "") for c in r[n:]):
                    problems.append(
                        RowProblem(
                            "(row)",
                            "long_row",
                            f"row {self._line} has values beyond the {n} named columns",
                            _text([_cell(c) for c in r[n:]]),
                        )
                    )
                values = {c: _cell(v) for c, v in zip(self.columns, r, strict=False)}
                batch.append(Row(self._line, values, problems))
                if len(batch) >= size:
                    yield batch
                    batch = []
        finally:
            self._wb.close()
        if batch:
            yield batch


class JsonlReader(Reader):
    fmt = "jsonl"

    def __init__(self, path: Path):
        self.path = path
        self.encoding = "utf-8"
        self._fh = path.open("rb")
        self._buffer: list[tuple[int, bytes]] = []
        cols: dict[str, None] = {}
        line = 0
        # Columns: the union of keys over the first 1,000 objects (more keys may appear later).
        for raw in self._fh:
            line += 1
            self._buffer.append((line, raw))
            if raw.strip():
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    cols.update(dict.fromkeys(obj))
            if len(self._buffer) >= 1000:
                break
        if not any(r.strip() for _, r in self._buffer):
            self._fh.close()
            raise FileError(path, "the file is empty", "empty_file")
        if not cols:
            self._fh.close()
            raise FileError(path, "no line holds a JSON object; expected one object per line", "bad_json")
        self.columns = list(cols)
        self._line = line

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        yield from self._buffer
        line = self._line
        for raw in self._fh:
            line += 1
            yield line, raw

    def batches(self, size: int) -> Iterator[list[Row]]:
        batch: list[Row] = []
        try:
            for line, raw in self._lines():
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    text = raw.decode("utf-8", "replace").rstrip("\n")
                    batch.append(
                        Row(
                            line,
                            {"_raw_line": text},
                            [RowProblem("(row)", "bad_json", f"not valid JSON: {exc}")],
                        )
                    )
                else:
                    if isinstance(obj, dict):
                        values = {
                            k: (orjson.dumps(v).decode() if isinstance(v, dict | list) else v)
                            for k, v in obj.items()
                        }
                        batch.append(Row(line, values, []))
                    else:
                        batch.append(
                            Row(
                                line,
                                {"_raw_line": raw.decode("utf-8", "replace").rstrip("\n")},
                                [RowProblem("(row)", "bad_json", "the line is JSON but not an object")],
                            )
                        )
                if len(batch) >= size:
                    yield batch
                    batch = []
        finally:
            self._fh.close()
        if batch:
            yield batch


class ParquetReader(Reader):
    fmt = "parquet"

    def __init__(self, path: Path):
        # lazy: keeps `medscrm --help` light
        import pyarrow.parquet as pq

        self.path = path
        try:
            self._pf = pq.ParquetFile(path)
        except Exception as exc:
            raise FileError(path, f"not a readable Parquet file ({exc})", "bad_parquet") from exc
        self.columns = _check_header(path, self._pf.schema_arrow.names)
        if self._pf.metadata.num_rows == 0:
            raise FileError(path, "the file has no rows", "empty_file")

    def batches(self, size: int) -> Iterator[list[Row]]:
        n = 1
        for rb in self._pf.iter_batches(batch_size=size):
            rows = []
            for rec in rb.to_pylist():
                n += 1
                rows.append(Row(n, {k: _cell(v) for k, v in rec.items()}, []))
            yield rows


def open_reader(
    path: Path, *, fmt: str | None = None, encoding: str | None = None, sheet: str | None = None
) -> Reader:
    path = Path(path)
    if not path.exists():
        raise FileError(path, "no such file", "not_found")
    if path.is_dir():
        raise FileError(path, "is a directory, not a file", "not_a_file")
    if path.stat().st_size == 0:
        raise FileError(path, "the file is empty", "empty_file")
    fmt = detect_format(path, fmt)
    if fmt == "csv":
        return CsvReader(path, encoding)
    if fmt == "xlsx":
        return XlsxReader(path, sheet)
    if fmt == "jsonl":
        return JsonlReader(path)
    return ParquetReader(path)
