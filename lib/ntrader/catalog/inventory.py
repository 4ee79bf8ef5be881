"""What the catalog holds: one exact availability record per bar type (``make scan``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ntrader.tabular import csv_text, json_text, text_table

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from ntrader.catalog.catalog import Catalog
    from ntrader.catalog.files import DataFile

COLUMNS = ("bar_type", "instrument_id", "first", "last", "rows", "files", "bytes")
DISPLAY_TZ = "America/New_York"


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


def iso(ns: int | None, tz: str = DISPLAY_TZ, *, daily: bool = False) -> str | None:
    """A bar's ``ts_event`` for people: local ISO time, or the session date of a daily bar."""
    if ns is None:
        return None
    if daily:  # ts_event of a daily bar is the next local midnight: show the session's date
        return str((pd.Timestamp(ns - 1, tz="UTC").tz_convert(tz)).date())
    return pd.Timestamp(ns, tz="UTC").tz_convert(tz).isoformat()


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
    return f"catalog {catalog_url} holds no bars yet (make import … or make fetch …)"
