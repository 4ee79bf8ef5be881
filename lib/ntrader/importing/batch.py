"""Many CSV files in one import: ``CSV`` a glob, ``SYMBOL`` a template over each file's name.

``CSV='incoming/*.csv'`` is expanded here, by Python's :mod:`glob` (``*``, ``?``, ``[…]``; ``**``
spans folders; sorted; a value naming an existing file is that file, whatever it holds). In
``SYMBOL``, ``{stem}`` is the file name without its extension (``AAPL.csv`` -> ``AAPL``,
``{stem}.NYSE`` -> ``AAPL.NYSE``); with ``csv.symbol_pattern`` (a regular expression the whole stem
must match) it is the pattern's group ``symbol``, else its first group. Every derived symbol goes
through :mod:`ntrader.symbols` before any file is read: a name that gives no valid symbol
(``A..B.csv``, ``a;touch x.csv``, non-ASCII) is that file's input error, and never reaches a
catalog path. The batch holds the catalog's write lock once; each file is then imported on its own
and atomically — validated whole and written in one commit, or not written at all — so a bad file
is reported (with its own error and hint) and the good ones land. Any failed file makes the run
exit with the worst failed file's code (:class:`BatchFailed`); a rerun adds nothing twice.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.conflict import check_mode
from ntrader.errors import DataError, InputError, NtraderError
from ntrader.importing.importer import import_csv
from ntrader.importing.reader import CsvSpec
from ntrader.symbols import bar_type_text, check_bar_spec, instrument_id_text, shown
from ntrader.tabular import text_table

STEM = "{stem}"
COLUMNS = ("status", "file", "bar type", "rows", "added", "replaced", "removed", "skipped", "s")


def is_batch(csv: str, symbol: str) -> bool:
    """``CSV`` is a pattern (and no file of that name exists) or ``SYMBOL`` holds ``{stem}``."""
    return STEM in symbol or (glob.has_magic(csv) and not os.path.isfile(csv))


def expand(csv: str) -> list[Path]:
    """The files ``csv`` names: itself when it is a file, else its glob matches (files only)."""
    if os.path.isfile(csv):
        return [Path(csv)]
    found = sorted(p for p in glob.glob(csv, recursive=True) if os.path.isfile(p))
    if not found:
        raise InputError(
            f"CSV={shown(csv, 200)} matches no file",
            hint="check the folder and the pattern (*, ? and [...] match names, ** spans "
            "folders; names starting with '.' are not matched); e.g. CSV='incoming/*.csv'",
        )
    return [Path(p) for p in found]


def _pattern(text: str | None) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise InputError(
            f"csv.symbol_pattern={shown(text)} is not a regular expression ({exc})",
            hint="e.g. ARGS=\"'csv.symbol_pattern=(?P<symbol>[A-Za-z.]+)_.*'\"",
        ) from None


def symbol_for(path: Path, template: str, pattern: re.Pattern[str] | None = None) -> str:
    """The instrument text ``template`` gives for ``path`` (``{stem}`` filled in and checked)."""
    stem = path.stem if path.suffix else path.name
    if pattern is not None:
        m = pattern.fullmatch(stem)
        if m is None:
            raise InputError(
                f"{shown(str(path), 200)}: the file name does not match csv.symbol_pattern "
                f"{shown(pattern.pattern)}",
                hint="rename the file or change csv.symbol_pattern (it must match the whole "
                "name without its extension)",
            )
        group = "symbol" if "symbol" in pattern.groupindex else (1 if pattern.groups else 0)
        stem = m.group(group) or ""
    text = template.replace(STEM, stem)
    try:
        instrument_id_text(text)  # symbol and venue checked; the real venue is resolved later
    except InputError as exc:
        raise InputError(
            f"{shown(str(path), 200)}: the file name gives no valid symbol: {exc.message}",
            hint="name each file <TICKER>.csv (AAPL.csv, BRK.B.csv), or give SYMBOL= a ticker, "
            "or extract it with csv.symbol_pattern",
        ) from None
    return text


@dataclass
class FileResult:
    """One file of a batch, as ``summary.json`` lists it."""

    csv: str
    symbol: str | None
    bar_type: str | None
    status: str  # ok | failed
    rows_read: int = 0
    rows_added: int = 0
    rows_replaced: int = 0
    rows_removed: int = 0
    rows_skipped: int = 0
    first: str | None = None
    last: str | None = None
    seconds: float = 0.0
    error: dict[str, Any] | None = None
    exit_code: int = 0


class BatchFailed(NtraderError):
    """Some files of a batch failed (the others were imported): the worst file's exit code,
    ``status`` ``partial`` (or ``failed`` when none was imported), ``result`` the batch report."""

    def __init__(self, message: str, hint: str, code: int, status: str, result: dict[str, Any]):
        super().__init__(message, hint)
        self.exit_code = code
        self.kind = "input error" if code == InputError.exit_code else "data error"
        self.status = status
        self.result = result


@dataclass
class BatchReport:
    csv: str
    files: list[FileResult]
    seconds: float

    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status != "ok"]

    def counts(self) -> dict[str, int]:
        """The ``counts`` of ``summary.json``: files and the rows summed over the files."""
        keys = ("rows_read", "rows_added", "rows_replaced", "rows_removed", "rows_skipped")
        out = {"files": len(self.files), "files_ok": len(self.files) - len(self.failed())}
        out["files_failed"] = len(self.failed())
        out.update({k: sum(getattr(f, k) for f in self.files) for k in keys})
        return out

    def as_dict(self) -> dict[str, Any]:
        """``import`` of ``summary.json``: the pattern, one entry per file, the totals."""
        return {"csv": self.csv, "files": [asdict(f) for f in self.files], "totals": self.counts()}

    def render(self, catalog_url: str) -> str:
        """A line per file (errors under it), then the total."""
        rows = [
            {
                "status": f.status,
                "file": _display(f.csv),
                "bar type": f.bar_type,
                **({} if f.status != "ok" else _numbers(f)),
            }
            for f in self.files
        ]
        out = [f"Import of CSV={_display(self.csv)} into catalog {catalog_url}"]
        out.append(text_table(rows, COLUMNS))
        for f in self.failed():
            err = f.error or {}
            message = str(err.get("message")).replace("\n", "\n    ")
            named = f.csv in message or _display(f.csv) in message
            out.append(f"  {'' if named else _display(f.csv) + ': '}{err.get('kind')}: {message}")
            if err.get("hint"):
                out.append(f"    what to do: {err['hint']}")
        c = self.counts()
        rate = c["rows_read"] / max(self.seconds, 1e-9)
        out.append(
            f"total: {c['files']} files, {c['files_ok']} imported, {c['files_failed']} failed · "
            f"rows read {c['rows_read']:,} · added {c['rows_added']:,} · replaced "
            f"{c['rows_replaced']:,} · removed {c['rows_removed']:,} · skipped "
            f"{c['rows_skipped']:,} · {self.seconds:.2f} s ({rate:,.0f} rows/s)"
        )
        return "\n".join(out)

    def finish(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` when every file was imported, else :class:`BatchFailed` carrying it."""
        bad = self.failed()
        if not bad:
            return result
        names = ", ".join(f"{_display(f.csv)} ({(f.error or {}).get('kind')})" for f in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        ok = len(self.files) - len(bad)
        raise BatchFailed(
            f"{len(bad)} of {len(self.files)} files failed: {names}{more}; {ok} imported",
            "fix the files listed above and run the same command again: files already imported "
            "add nothing twice",
            max(f.exit_code for f in bad),
            "partial" if ok else "failed",
            result,
        )


def _display(path: str) -> str:
    return path if path.isprintable() else shown(path, 200)


def _numbers(f: FileResult) -> dict[str, Any]:
    return {
        "rows": f.rows_read,
        "added": f.rows_added,
        "replaced": f.rows_replaced,
        "removed": f.rows_removed,
        "skipped": f.rows_skipped,
        "s": f"{f.seconds:.2f}",
    }


def _failure(result: FileResult, exc: NtraderError) -> FileResult:
    result.status = "failed"
    result.error = {"kind": exc.kind, "message": str(exc), "hint": exc.hint}
    result.exit_code = exc.exit_code
    named = result.csv in str(exc) or _display(result.csv) in str(exc)
    logger.error(f"{'' if named else _display(result.csv) + ': '}{exc.kind}: {exc}")
    return result


def import_batch(
    catalog: Catalog,
    csv: str,
    symbol: str,
    bar_spec: str,
    *,
    mode: str = "skip",
    spec: CsvSpec | None = None,
    price_precision: int | None = None,
    symbol_pattern: str | None = None,
    default_venue: str = "NASDAQ",
    venues: Mapping[str, str] | None = None,
) -> BatchReport:
    """Import every file ``csv`` names, each under the symbol ``symbol`` gives for its name.

    Raises (nothing imported) when ``csv`` matches no file or ``symbol``/``symbol_pattern`` are
    malformed; a file's own problems are its :class:`FileResult` (``report.finish`` raises)."""
    t0 = time.perf_counter()
    check_mode(mode)  # before any file is read
    leftover = symbol.replace(STEM, "")
    if "{" in leftover or "}" in leftover:
        raise InputError(
            f"SYMBOL={shown(symbol)}: the only placeholder is {STEM}",
            hint="e.g. SYMBOL={stem} (AAPL.csv -> AAPL) or SYMBOL={stem}.NYSE",
        )
    check_bar_spec(bar_spec)
    pattern = _pattern(symbol_pattern)
    paths = expand(csv)
    planned: list[tuple[FileResult, str | None]] = []
    for path in paths:  # every name is checked before any file is read
        try:
            text = symbol_for(path, symbol, pattern)
            iid = instrument_id_text(text, default_venue, venues)
            res = FileResult(str(path), iid, bar_type_text(iid, bar_spec), "pending")
            planned.append((res, iid))
        except InputError as exc:
            planned.append((_failure(FileResult(str(path), None, None, "pending"), exc), None))
    seen: dict[str, str] = {}
    for res, _ in planned:
        if res.bar_type in seen:
            logger.warning(
                f"{_display(res.csv)} and {_display(seen[res.bar_type])} both hold "
                f"{res.bar_type}: imported one after the other under MODE={mode}"
            )
        elif res.bar_type is not None:
            seen[res.bar_type] = res.csv
    logger.info(f"importing {len(paths)} files from CSV={_display(csv)}")
    todo = [(res, iid) for res, iid in planned if iid is not None]
    with catalog.locked() if todo else contextlib.nullcontext():  # one lock session for all
        for res, iid in todo:
            t1 = time.perf_counter()
            try:
                one = import_csv(
                    catalog,
                    res.csv,
                    iid,
                    bar_type_text(iid, bar_spec),
                    mode=mode,
                    spec=spec,
                    price_precision=price_precision,
                )
            except (InputError, DataError) as exc:
                _failure(res, exc)
                continue
            finally:
                res.seconds = round(time.perf_counter() - t1, 4)
            w = one.write
            res.status, res.rows_read = "ok", one.rows_read
            res.first, res.last = one.first, one.last
            res.rows_added, res.rows_replaced = w.rows_added, w.rows_replaced
            res.rows_removed, res.rows_skipped = w.rows_removed, w.rows_skipped
    return BatchReport(csv, [res for res, _ in planned], round(time.perf_counter() - t0, 4))
