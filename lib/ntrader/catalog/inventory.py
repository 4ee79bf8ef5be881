"""What the catalog holds: one exact availability record per bar type (``make scan``), and the
``make …`` commands every hint about it suggests (:func:`make_command`)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import weakref
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from loguru import logger

from ntrader.catalog.guard import is_not_writable, not_writable
from ntrader.errors import DataError
from ntrader.tabular import csv_text, json_text, text_table

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from ntrader.catalog.catalog import Catalog
    from ntrader.catalog.files import DataFile

COLUMNS = ("bar_type", "instrument_id", "first", "last", "rows", "files", "bytes")
DISPLAY_TZ = "America/New_York"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Availability:
    """What the catalog holds for one bar type, measured from the files themselves."""

    bar_type: str
    instrument_id: str
    first_ns: int | None
    last_ns: int | None
    rows: int
    files: int
    bytes: int


def summarize_files(
    bar_type: str,
    files: list[DataFile],
    footers: list[pq.FileMetaData | Exception],
    measure: Callable[[DataFile, pq.FileMetaData | Exception], tuple[int, int, int]],
) -> Availability:
    """A bar type's availability from its files' footers; ``measure(file, footer)`` gives a
    file's first/last ``ts_event`` and bytes (and raises for an unreadable file)."""
    rows = size = 0
    first: int | None = None
    last: int | None = None
    for f, md in zip(files, footers, strict=True):
        lo, hi, nbytes = measure(f, md)
        assert not isinstance(md, Exception)  # measure raised for those
        rows += md.num_rows
        size += nbytes
        if md.num_rows:
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
    return Availability(bar_type, bar_type.split("-", 1)[0], first, last, rows, len(files), size)


def instrument_files(store: Any, root: PurePath, instrument_id: str) -> list[PurePath]:
    """The Parquet files of instrument ``instrument_id`` (any kind: ``equity`` …) under
    ``<root>/data``."""
    data = root / "data"
    return [
        data / kind / instrument_id / name
        for kind in store.list_dirs(data)
        if kind != "bar"
        for name in sorted(store.list_names(data / kind / instrument_id))
        if name.endswith(".parquet")
    ]


def instrument_precision(store: Any, root: PurePath, instrument_id: str) -> int | None:
    """The instrument's price precision from its file, read with pyarrow alone (a write of bars
    needs nothing else of it); None when the catalog does not hold it."""
    files = instrument_files(store, root, instrument_id)
    if not files:
        return None
    table = store.read_table(files[-1], columns=["price_precision"])
    return int(table.column(0)[0].as_py())


def iso(ns: int | None, tz: str = DISPLAY_TZ, *, daily: bool = False) -> str | None:
    """A bar's ``ts_event`` for people: local ISO time, or the session date of a daily bar."""
    if ns is None:
        return None
    ns = int(ns)  # numpy integers too
    if daily:  # ts_event of a daily bar is the next local midnight: show the session's date
        return str(_local(ns - 1, tz).date())
    if ns % 1000 == 0 and _zone(tz) is not None:
        return _local(ns, tz).isoformat()
    import pandas as pd  # nanoseconds (only pandas prints them), or a zone only pandas knows

    return pd.Timestamp(ns, tz="UTC").tz_convert(tz).isoformat()


def _zone(tz: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def _local(ns: int, tz: str) -> dt.datetime:
    """``ns`` since the epoch in zone ``tz``, to the microsecond (pandas is not imported here)."""
    zone = _zone(tz)
    if zone is None:
        import pandas as pd

        return pd.Timestamp(ns, tz="UTC").tz_convert(tz).to_pydatetime(warn=False)
    return (_EPOCH + dt.timedelta(microseconds=ns // 1000)).astimezone(zone)


def record(a: Availability, tz: str = DISPLAY_TZ) -> dict[str, Any]:
    daily = "-DAY-" in a.bar_type
    return {
        "bar_type": a.bar_type,
        "instrument_id": a.instrument_id,
        "first": iso(a.first_ns, tz, daily=daily),
        "last": iso(a.last_ns, tz, daily=daily),
        "rows": a.rows,
        "files": a.files,
        "bytes": a.bytes,
        "first_ns": a.first_ns,
        "last_ns": a.last_ns,
    }


def list_catalog(catalog: Catalog) -> list[Availability]:
    """Availability of every bar type, measured from the files (Parquet metadata)."""
    return catalog.availability_many(catalog.bar_types())


def render_listing(rows: list[dict[str, Any]], fmt: str, catalog_url: str) -> str:
    """``make scan``'s output for :func:`record` rows: JSON, CSV or an aligned table."""
    if fmt == "json":
        return json_text(rows)
    if fmt == "csv":
        return csv_text(rows, COLUMNS)
    if rows:
        return text_table(rows, COLUMNS)
    first, last = example_range()
    fetch = make_command(
        "fetch", catalog_url, SYMBOLS="AAPL", START=first, END=last, BAR="1-MINUTE-LAST"
    )
    imp = make_command("import", catalog_url, CSV=SAMPLE_CSV, SYMBOL="AAPL")
    return f"catalog {catalog_url} holds no bars yet; fill it, e.g.:\n  {fetch}\n  {imp}"


# ---------------------------------------------------------------- suggested commands
SAMPLE_CSV = "data/samples/AAPL-1min-sample.csv"  # committed with the repository
EXAMPLE_SESSIONS = 20  # sessions a suggested fetch covers when nothing says which
_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_DOUBLE_QUOTE_SAFE = re.compile(r'[^"\\$`!]*')


def shell_word(text: str, *, bare: bool = True) -> str:
    """``text`` as one shell word: bare when nothing in it is special (and ``bare``), else
    quoted so the shell passes it byte for byte (double quotes when they suffice, for
    readability; else :func:`shlex.quote`)."""
    if bare and _SAFE.fullmatch(text):
        return text
    if _DOUBLE_QUOTE_SAFE.fullmatch(text) and "\n" not in text:
        return f'"{text}"'
    return shlex.quote(text)


def catalog_arg(catalog_url: str) -> str:
    """The ``CATALOG=`` value for a catalog: relative to the working directory when that is the
    repository root (a ``Makefile`` there) and the catalog lies inside it, else as given."""
    if "://" in catalog_url:
        return catalog_url
    path, cwd = Path(catalog_url), Path.cwd()
    if path.is_absolute() and (cwd / "Makefile").is_file() and path.is_relative_to(cwd):
        return str(path.relative_to(cwd)) or "."
    return catalog_url


def make_command(
    target: str,
    catalog_url: str | None,
    *,
    args: Sequence[str] = (),
    runs: str | None = None,
    **variables: object,
) -> str:
    """A complete ``make <target> VAR=value …`` for the context a hint is printed in.

    ``variables`` in the order given (``SYMBOLS=… START=… END=… BAR=…``; ``None``/empty left
    out), then ``CATALOG=`` (the catalog the hint is about), ``RUNS=`` (``runs``, default
    ``$NTRADER_RUNS``: where this run's folders went) and ``ARGS="…"`` (Hydra overrides, which a
    make command takes only inside ``ARGS``). Every value is quoted for the shell
    (:func:`shell_word`), so pasting the line runs exactly this command; make hands each value to
    the script byte for byte (``ntrader.runs.make_args``)."""
    words = ["make", target]
    for name, value in variables.items():
        if value is not None and str(value) != "":
            words.append(f"{name}={shell_word(str(value))}")
    if catalog_url:
        words.append(f"CATALOG={shell_word(catalog_arg(catalog_url))}")
    runs = runs if runs is not None else os.environ.get("NTRADER_RUNS", "")
    if runs:
        words.append(f"RUNS={shell_word(runs)}")
    if args:
        words.append(f"ARGS={shell_word(' '.join(args), bare=False)}")  # as README shows it
    return " ".join(words)


def example_range(
    calendar: str = "XNYS", sessions: int = EXAMPLE_SESSIONS
) -> tuple[dt.date, dt.date]:
    """The last ``sessions`` completed sessions: the dates a suggested fetch uses when the
    context names none (pick your own range in their place)."""
    from ntrader.sessions import last_completed_session, sessions_between  # pandas: when needed

    last = last_completed_session(calendar)
    span = sessions_between(calendar, last - dt.timedelta(days=2 * sessions + 14), last)
    return span.date_list()[-min(sessions, len(span))], last


def missing_catalog_error(
    catalog_url: str, symbol: str | None = None, bar: str | None = None
) -> DataError:
    """What a reader says about a catalog that does not exist (exit 1): check the path, or
    create it with a fetch or an import (commands for this catalog)."""
    first, last = example_range()
    sym = symbol or "AAPL"
    fetch = make_command(
        "fetch", catalog_url, SYMBOLS=sym, START=first, END=last, BAR=bar or "1-MINUTE-LAST"
    )
    csv = SAMPLE_CSV if symbol is None else "path/to/bars.csv"
    imp = make_command("import", catalog_url, CSV=csv, SYMBOL=sym, BAR=bar)
    where = "" if "://" in catalog_url else f" (relative paths start at {os.getcwd()})"
    return DataError(
        f"catalog {catalog_url} does not exist",
        hint=f"check CATALOG= / NAUTILUS_PATH{where}; a fetch creates it:\n  {fetch}\n"
        f"or an import of a CSV file:\n  {imp}",
    )


# ---------------------------------------------------------------- does the catalog exist
_EXISTING: weakref.WeakSet[Catalog] = weakref.WeakSet()  # known to exist: not asked again


def require_catalog(catalog: Catalog, symbol: str | None = None, bar: str | None = None) -> None:
    """Readers (scan, check, backtest): :func:`missing_catalog_error` when the catalog root does
    not exist (a directory; on S3: any object under the prefix). A typo must not look empty."""
    if catalog not in _EXISTING and not catalog.store.exists(catalog.root):
        raise missing_catalog_error(catalog.url, symbol, bar)
    _EXISTING.add(catalog)


def create_catalog(catalog: Catalog) -> bool:
    """Writers (fetch, import, migrate; ``Catalog.locked`` calls it): create the catalog when it
    does not exist, saying so ("creating catalog …"); True when it was created."""
    if catalog in _EXISTING or catalog.store.exists(catalog.root):
        _EXISTING.add(catalog)
        return False
    logger.info(f"creating catalog {catalog.url} (it did not exist)")
    try:
        if catalog.store.local:
            os.makedirs(catalog.root, exist_ok=True)
        else:  # an S3 prefix exists once an object is under it
            marker = catalog.root / ".ntrader" / "created"
            catalog.store.write_text(marker, dt.datetime.now(dt.UTC).isoformat())
    except OSError as exc:
        if is_not_writable(exc):
            raise not_writable(catalog.url, exc) from exc
        raise
    _EXISTING.add(catalog)
    return True
