"""Files of a Nautilus Parquet catalog: names, intervals and durable writes.

Nautilus names each data file ``<first ts_init>_<last ts_init>.parquet`` (ISO time with ``:`` and
``.`` replaced by ``-``) and selects files for a query by that interval. A name is never reused for
different content (``history.fresh_name`` widens the stated interval by a few nanoseconds instead).
Temp files end in ``.tmp``: Nautilus' ``*.parquet`` globs never see them.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger

from ntrader.catalog.guard import is_not_writable
from ntrader.errors import SystemFailure

TMP_SUFFIX = ".tmp"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def ns_to_file_stamp(ns: int) -> str:
    """1700000060000000000 -> ``2023-11-14T22-14-20-000000000Z`` (Nautilus' file-name stamp)."""
    seconds, nanos = divmod(int(ns), 1_000_000_000)
    ts = _EPOCH + dt.timedelta(seconds=seconds)
    return ts.strftime("%Y-%m-%dT%H-%M-%S-") + f"{nanos:09d}Z"


def file_stamp_to_ns(stamp: str) -> int:
    date_part, time_part = stamp.split("T")
    hh, mm, ss, nanos = time_part.rstrip("Z").split("-")
    when = dt.datetime.fromisoformat(f"{date_part}T{hh}:{mm}:{ss}").replace(tzinfo=dt.UTC)
    ns = (when - _EPOCH) // dt.timedelta(seconds=1) * 1_000_000_000 + int(nanos)
    if not -(2**63) <= ns < 2**63:  # what pandas.Timestamp (int64 ns) could hold
        raise ValueError(f"file stamp {stamp!r} out of range")
    return ns


def interval_file_name(first_ns: int, last_ns: int) -> str:
    return f"{ns_to_file_stamp(first_ns)}_{ns_to_file_stamp(last_ns)}.parquet"


@dataclass(frozen=True)
class DataFile:
    """One catalog data file and the [first, last] ``ts_init`` interval its name states."""

    path: PurePath
    first_ns: int
    last_ns: int
    size: int | None = None  # bytes, when the listing told (object storage) — else stat it
    alt: tuple[PurePath, ...] = ()  # where else the same bytes are: retained copy, commit temp

    @property
    def sources(self) -> tuple[PurePath, ...]:
        """Where to read this file's bytes, in order (the live path first)."""
        return (self.path, *self.alt)

    def also_at(self, *paths: PurePath) -> DataFile:
        return replace(self, alt=(*self.alt, *paths))

    def overlaps(self, start_ns: int | None, end_ns: int | None) -> bool:
        return (start_ns is None or start_ns <= self.last_ns) and (
            end_ns is None or self.first_ns <= end_ns
        )


def list_data_files(directory: PurePath, entries: Mapping[str, int | None]) -> list[DataFile]:
    """The ``*.parquet`` files among a directory's ``entries`` (name -> size), by interval."""
    out: list[DataFile] = []
    for name, size in entries.items():
        if not name.endswith(".parquet") or name.startswith("."):
            continue
        stem = name[: -len(".parquet")]
        first, _, last = stem.partition("_")
        try:
            first_ns, last_ns = file_stamp_to_ns(first), file_stamp_to_ns(last)
            out.append(DataFile(directory / name, first_ns, last_ns, size))
        except (ValueError, IndexError):
            logger.warning(f"ignoring {directory / name}: not a Nautilus interval file name")
    out.sort(key=lambda f: (f.first_ns, f.last_ns))
    return out


def temp_path_in(root: PurePath, final: PurePath) -> PurePath:
    """A temp name for ``final`` under ``<catalog>/.ntrader/tmp`` (same filesystem as the data, so
    a rename is atomic; one directory to clear after a crash instead of every bar type's)."""
    return root / ".ntrader" / "tmp" / f"{final.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


BAR_WRITE_OPTIONS = {
    # Timestamps are unique: dictionary-encoding them is wasted work (~30% of the write time).
    "use_dictionary": ["open", "high", "low", "close", "volume"],
    "write_statistics": ["ts_event", "ts_init"],  # exact first/last without reading the data
    "compression": "snappy",
    "row_group_size": 1_000_000,
}


def write_table_durably(table: pa.Table, path: Path, **options: object) -> int:
    """Write a Parquet file and fsync it; returns its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as fh:
            pq.write_table(table, fh, **options)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        if is_not_writable(exc):
            raise  # the catalog says "not writable by this user" with its URL
        raise SystemFailure(
            f"could not write {path}: {exc}", hint="check free disk space and permissions"
        ) from exc
    return path.stat().st_size


def ts_event_bounds(md: pq.FileMetaData, read_ts: Callable[[], Any]) -> tuple[int, int]:
    """Exact min/max ``ts_event`` from row-group statistics (``read_ts()`` reads the column
    when they are absent)."""
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    idx = names.index("ts_event")
    lo: int | None = None
    hi: int | None = None
    for g in range(md.num_row_groups):
        stats = md.row_group(g).column(idx).statistics
        if stats is None or not stats.has_min_max:
            col = read_ts()
            return (int(col.min()), int(col.max())) if len(col) else (0, 0)
        lo = int(stats.min) if lo is None else min(lo, int(stats.min))
        hi = int(stats.max) if hi is None else max(hi, int(stats.max))
    return (lo or 0, hi or 0)
