"""Compaction: merging a bar type's many small data files into one file per period.

Daily appends add one file per session and bar type; after a year of them a read opens hundreds of
files and every commit links them all. Compaction groups a bar type's live files by the UTC
``period`` ("month", "year" or "all") of their first bar and merges every group of two or more
into one file, one ordinary commit per group (``Committer.replace`` under the catalog lock, a
fresh name, the merged files kept in the retained history): atomic, crash-safe, snapshot-safe for
readers, on local disk and on S3 alike. The merged file holds the input tables concatenated as
they are (same rows, schema and Nautilus metadata; files whose schemas differ, e.g. another size
precision, are not merged with each other), so every reader — ``Catalog.read``/``read_bars`` or a
plain ``ParquetDataCatalog`` — sees exactly the same bars before and after. A group is a run of
consecutive files (they never overlap), so the merged file overlaps none outside it. Content that
is already one file per period is left alone: compacting twice commits nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import pyarrow as pa
from loguru import logger

from ntrader.catalog.commit import Committer
from ntrader.catalog.corruption import read_locked
from ntrader.catalog.files import DataFile, list_data_files
from ntrader.catalog.history import History, fresh_name
from ntrader.errors import InputError

PERIODS = ("month", "year", "all")
DEFAULT_PERIOD = "year"  # one file per bar type and year: reads as fast as one file
DEFAULT_THRESHOLD = 64  # live files of a bar type above which a write compacts it (0: never)


def check_period(period: str) -> str:
    if period not in PERIODS:
        raise InputError(
            f"unknown compaction period {period!r}",
            hint=f"use one of {', '.join(PERIODS)}: catalog.compact_period=year",
        )
    return period


def period_of(ns: int, period: str) -> tuple[int, ...]:
    """The UTC calendar period holding ``ns``: (year, month), (year,) or () for "all"."""
    when = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    if period == "month":
        return (when.year, when.month)
    return (when.year,) if period == "year" else ()


def plan_groups(files: list[DataFile], period: str) -> list[list[DataFile]]:
    """Runs of consecutive files (sorted, disjoint) whose first bar lies in one period; only runs
    of two or more files."""
    check_period(period)
    groups: list[list[DataFile]] = []
    for f in files:
        key = period_of(f.first_ns, period)
        if groups and period_of(groups[-1][0].first_ns, period) == key:
            groups[-1].append(f)
        else:
            groups.append([f])
    return [g for g in groups if len(g) >= 2]


@dataclass(frozen=True)
class BarTypeCompaction:
    """What compacting one bar type did."""

    bar_type: str
    files_before: int
    files_after: int
    groups_merged: int
    bytes_before: int  # of the files merged
    bytes_after: int  # of the files written
    rows: int  # bars in the files merged (the same bars, now in fewer files)

    @property
    def files_merged(self) -> int:
        return self.files_before - self.files_after + self.groups_merged

    def line(self) -> str:
        if not self.groups_merged:
            return f"{self.bar_type}: {self.files_before} file(s), already compact"
        return (
            f"{self.bar_type}: {self.files_before} -> {self.files_after} file(s) "
            f"({self.groups_merged} group(s) merged, {self.rows:,} bars, "
            f"{self.bytes_before:,} -> {self.bytes_after:,} bytes)"
        )


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did, per bar type."""

    catalog: str
    period: str
    bar_types: list[BarTypeCompaction] = field(default_factory=list)

    @property
    def groups_merged(self) -> int:
        return sum(b.groups_merged for b in self.bar_types)

    @property
    def files_before(self) -> int:
        return sum(b.files_before for b in self.bar_types)

    @property
    def files_after(self) -> int:
        return sum(b.files_after for b in self.bar_types)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, int]:
        """The ``counts`` of ``summary.json``."""
        return {
            "bar_types": len(self.bar_types),
            "files_before": self.files_before,
            "files_after": self.files_after,
            "groups_merged": self.groups_merged,
        }

    def render(self) -> str:
        """One line per bar type (files before -> after), then the total."""
        if not self.bar_types:
            return f"no bar type to compact in {self.catalog}"
        total = (
            f"compacted {self.catalog} by {self.period}: {self.files_before} -> "
            f"{self.files_after} file(s) in {len(self.bar_types)} bar type(s)"
        )
        return "\n".join([*(b.line() for b in self.bar_types), total])


class Compactor:
    """Compacts bar types of one catalog; call only while holding the catalog lock."""

    def __init__(
        self,
        store: Any,
        committer: Committer,
        history: History,
        list_files: Callable[[str], list[DataFile]],
        check_lock: Callable[[], None],
    ) -> None:
        self.store = store
        self.committer = committer
        self.history = history
        self.list_files = list_files  # the bar type's live files (one commit's listing)
        self.check_lock = check_lock  # raises when the lock (an S3 lease) was lost

    def compact(self, bar_dir: PurePath, period: str) -> BarTypeCompaction:
        """Merge every group of ``bar_dir``'s files (:func:`plan_groups`), one commit each."""
        bt = bar_dir.name
        live = self.list_files(bt)
        used = {f.path.name for f in live} | self.history.names(bt)
        current = live
        merged = written = rows = bytes_in = files_out = 0
        for group in plan_groups(live, period):
            for run in self._runs(group):
                if len(run) < 2:
                    continue
                table = pa.concat_tables([t for _, t in run])
                files = [f for f, _ in run]
                if not self._in_order(bt, table, files):
                    continue
                first, last = files[0].first_ns, files[-1].last_ns
                kept = [f for f in current if f not in files]  # stated intervals, as committed
                lo = max((f.last_ns for f in kept if f.last_ns < first), default=None)
                hi = min((f.first_ns for f in kept if f.first_ns > last), default=None)
                name = fresh_name(first, last, used, lo, hi)
                used.add(name)
                bytes_in += sum(self._size(f) for f in files)
                self.check_lock()
                size = self.committer.replace(bar_dir, name, table, [f.path for f in files])
                current = sorted([*kept, *list_data_files(bar_dir, {name: size})], key=_order)
                written += size
                merged += 1
                files_out += len(files) - 1
                rows += table.num_rows
        if merged:
            self.history.prune([bt])
            logger.info(f"compacted {bt}: {len(live)} -> {len(live) - files_out} file(s)")
        return BarTypeCompaction(
            bt, len(live), len(live) - files_out, merged, bytes_in, written, rows
        )

    def _runs(self, group: list[DataFile]) -> list[list[tuple[DataFile, pa.Table]]]:
        """The group's files with their tables, split where the schema (with its Nautilus
        metadata: precisions, bar type) changes."""
        runs: list[list[tuple[DataFile, pa.Table]]] = []
        for f in group:
            table = read_locked(self.store, f, self.committer)
            if runs and runs[-1][-1][1].schema.equals(table.schema, check_metadata=True):
                runs[-1].append((f, table))
            else:
                runs.append([(f, table)])
        return runs

    def _in_order(self, bt: str, table: pa.Table, files: list[DataFile]) -> bool:
        ts = table.column("ts_event").to_numpy()
        if len(ts) < 2 or bool(np.all(ts[1:] > ts[:-1])):
            return True
        logger.warning(
            f"not compacting {len(files)} file(s) of {bt} from {files[0].path.name}: their bars "
            "are not strictly increasing across files (written by another tool?)"
        )
        return False

    def _size(self, f: DataFile) -> int:
        return f.size if f.size is not None else int(self.store.size(f.path))


def _order(f: DataFile) -> tuple[int, int]:
    return (f.first_ns, f.last_ns)
