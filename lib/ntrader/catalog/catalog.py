"""The ntrader catalog: one NautilusTrader ``ParquetDataCatalog``, written safely, read whole.

It lives on local disk or under an S3 prefix (``store``). Guarantees: one writer at a time
(a lock file, or a lease object on S3), every write atomic (``commit``), data files of a bar
type never overlap, a file name never reused for different content, files a commit removes kept
readable for ``retain_days`` (``history``), so every read sees exactly one commit (``snapshot``)
and a catalog opened ``as_of`` an older version reads that version (``asof``); readers take
no lock and never change the catalog (a corrupt file is reported and left in place;
``quarantine_corrupt`` moves it). A plain ``ParquetDataCatalog(root).bars()`` reads everything
written here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger

from ntrader.catalog import inventory as inv
from ntrader.catalog.asof import check_version
from ntrader.catalog.barframe import BarFrame, at_price_precision
from ntrader.catalog.codec import frame_to_table, table_to_frame
from ntrader.catalog.commit import Committer
from ntrader.catalog.compaction import (
    DEFAULT_PERIOD,
    DEFAULT_THRESHOLD,
    CompactionResult,
    Compactor,
    check_period,
)
from ntrader.catalog.conflict import WriteResult as WriteResult  # importable from here too
from ntrader.catalog.conflict import check_mode, merge_frames
from ntrader.catalog.corruption import Quarantined, quarantine_catalog, read_locked
from ntrader.catalog.files import DataFile, interval_file_name, ts_event_bounds
from ntrader.catalog.guard import is_not_writable, not_writable
from ntrader.catalog.history import DEFAULT_RETAIN_DAYS, History, Pruned, fresh_name
from ntrader.catalog.inventory import Availability, create_catalog, require_catalog, summarize_files
from ntrader.catalog.snapshot import Snapshots
from ntrader.catalog.store import open_store
from ntrader.errors import CatalogBusy, InputError, NtraderError, SystemFailure
from ntrader.symbols import check_bar_type_name

if TYPE_CHECKING:  # imported where Bars and instruments are decoded: scan and check never do
    import pandas as pd
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.instruments import Instrument
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

Day = str | dt.date | None  # a session date as START/END take it


class Catalog:
    """A catalog root (directory or ``s3://`` prefix). Reading needs no lock and writes nothing;
    every mutation happens under the lock."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = 600.0,
        retain_days: float = DEFAULT_RETAIN_DAYS,
        compact_threshold: int = DEFAULT_THRESHOLD,
        compact_period: str = DEFAULT_PERIOD,
        as_of: int | str | None = None,
    ):
        self.store = open_store(root)
        self.root: PurePath = self.store.root
        self.url = self.store.url  # for people: the directory, or s3://bucket/prefix
        self.lock_timeout = lock_timeout
        self.compact_threshold = int(compact_threshold)  # a write compacts above it; 0: never
        self.compact_period = check_period(compact_period)
        self._meta = self.root / ".ntrader"
        self._lock = self.store.lock("write")
        self.history = History(self.store, self._meta, retain_days)
        self._committer = Committer(self.store, self._meta, self.history)
        # a read-only view of an older catalog version, or None: the current one
        self.as_of = None if as_of is None else check_version(as_of, self.history.log.head())
        self._snap = Snapshots(self.store, self._committer, self.history, self.bar_root, self.as_of)
        self._compactor = Compactor(
            self.store, self._committer, self.history, self._snap.files, self._lock.check
        )
        self._precisions: dict[str, int] = {}  # instruments are written once: cacheable

    @classmethod
    def from_config(cls, catalog: Mapping[str, Any]) -> Catalog:
        """From the ``catalog`` config group: ``path`` (null = the default), ``lock_timeout``,
        ``retain_days``, ``compact_threshold``, ``compact_period`` and ``as_of``."""
        return cls(
            catalog["path"],
            lock_timeout=float(catalog["lock_timeout"]),
            retain_days=float(catalog.get("retain_days", DEFAULT_RETAIN_DAYS)),
            compact_threshold=int(catalog.get("compact_threshold", DEFAULT_THRESHOLD)),
            compact_period=str(catalog.get("compact_period", DEFAULT_PERIOD)),
            as_of=catalog.get("as_of"),
        )

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"Catalog({self.url!r}{'' if self.as_of is None else f', as_of={self.as_of}'})"

    def require_exists(self, symbol: str | None = None, bar: str | None = None) -> None:
        """Readers: exit 1 naming the catalog when it does not exist (``require_catalog``)."""
        require_catalog(self, symbol, bar)

    # ---------------------------------------------------------------- pandas views, paths
    def read_frame(
        self, what: BarType | str, start: Day = None, end: Day = None, **how: Any
    ) -> Any:
        """Bars as a pandas DataFrame (``frames.bars_frame``: ``bar=``, ``tz=``)."""
        from ntrader.catalog.frames import bars_frame

        return bars_frame(self, what, start, end, **how)

    def availability_frame(self) -> pd.DataFrame:
        """What the catalog holds, one row per bar type (``make scan`` as a DataFrame)."""
        from ntrader.catalog.frames import availability_frame

        return availability_frame(self)

    @property
    def snapshots(self) -> Snapshots:
        """The snapshot reader every read goes through (``stream.pin_bars`` uses it)."""
        return self._snap

    @property
    def bar_root(self) -> PurePath:
        return self.root / "data" / "bar"

    def bar_dir(self, bar_type: BarType | str) -> PurePath:
        """The bar type's directory; the name must be a valid bar type (``InputError``)."""
        return self.bar_root / check_bar_type_name(str(bar_type))

    def nautilus(self) -> ParquetDataCatalog:
        return self.store.nautilus()

    # ---------------------------------------------------------------- lock
    @contextlib.contextmanager
    def locked(self, prune: bool = True) -> Iterator[None]:
        """Hold the single-writer lock (waits ``lock_timeout`` s); first a bounded ``prune``."""
        if self.as_of is not None:
            raise InputError(
                f"catalog {self.url} is opened as of version {self.as_of}: read-only",
                hint="catalog.as_of is for reads (scan, check, backtest); drop it to write",
            )
        create_catalog(self)  # a writer creates a catalog that does not exist, and says so
        try:
            self._lock.acquire(timeout=0)
        except CatalogBusy:
            logger.info(f"catalog {self.url} is being written by {self._lock.holder()}; waiting")
            try:
                self._lock.acquire(timeout=self.lock_timeout)
            except CatalogBusy as exc:
                raise CatalogBusy(
                    f"{exc} for {self.lock_timeout:.0f} s",
                    hint="wait for the other import/fetch to finish, or raise catalog.lock_timeout",
                ) from exc
        except OSError as exc:
            if is_not_writable(exc):
                raise not_writable(self.url, exc) from exc
            raise
        try:
            self._committer.recover()
            _ = prune and self.history.prune()
            yield
        except OSError as exc:
            if is_not_writable(exc):
                raise not_writable(self.url, exc) from exc
            raise
        finally:
            self._lock.release()

    # ---------------------------------------------------------------- reading (no lock, no writes)
    def bar_types(self) -> list[str]:
        names = sorted(self.store.list_dirs(self.bar_root))
        if self.as_of is None:
            return names
        return [bt for bt in names if self._snap.files(bt)]  # those holding data at that version

    def files(self, bar_type: BarType | str) -> list[DataFile]:
        """The bar type's data files as of one commit."""
        return self._snap.files(PurePath(self.bar_dir(bar_type)).name)

    def read(
        self, bar_type: BarType | str, start_ns: int | None = None, end_ns: int | None = None
    ) -> BarFrame:
        """Bars with ``start_ns <= ts_event <= end_ns`` (both optional), ascending."""
        bt = PurePath(self.bar_dir(bar_type)).name
        return self._snap.read(lambda: self._read_once(bt, start_ns, end_ns))

    def _read_once(self, bt: str, start_ns: int | None, end_ns: int | None) -> BarFrame:
        parts: list[BarFrame] = []
        for f in self._snap.files(bt):
            if not f.overlaps(start_ns, end_ns):
                continue
            frame = table_to_frame(self._snap.table(f))
            if start_ns is not None or end_ns is not None:
                lo = 0 if start_ns is None else np.searchsorted(frame.ts_event, start_ns, "left")
                hi = (
                    len(frame)
                    if end_ns is None
                    else np.searchsorted(frame.ts_event, end_ns, "right")
                )
                frame = frame.take(slice(int(lo), int(hi)))
            parts.append(frame)
        return BarFrame.concat(parts) if parts else BarFrame.empty()

    def read_ts_event(
        self, bar_type: BarType | str, start_ns: int | None = None, end_ns: int | None = None
    ) -> np.ndarray:
        """``ts_event`` of the bars in ``[start_ns, end_ns]``, from that column alone (bounded
        memory), as of one commit like :meth:`read`."""
        bt = PurePath(self.bar_dir(bar_type)).name
        lo, hi = (
            start_ns if start_ns is not None else -(2**63),
            end_ns if end_ns is not None else 2**63 - 1,
        )

        def once() -> np.ndarray:
            files = [f for f in self._snap.files(bt) if f.overlaps(start_ns, end_ns)]
            cols = [self._snap.table(f, ["ts_event"]).column(0).to_numpy() for f in files]
            ts = np.concatenate(cols).astype(np.int64) if cols else np.empty(0, np.int64)
            return ts[(ts >= lo) & (ts <= hi)]

        return self._snap.read(once)

    def read_bars(
        self, bar_type: BarType | str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[Bar]:
        """Nautilus ``Bar`` objects for ``[start_ns, end_ns]`` (inclusive, both optional).

        Decoded by Nautilus' own Rust reader (3x faster than building Bars from numpy arrays in
        Python; measured in ``make bench``) over the files of one commit, pinned so that none can
        vanish or change under it (``snapshot``).
        """
        bt = PurePath(self.bar_dir(bar_type)).name
        return self._snap.read(lambda: self._read_bars_once(bt, start_ns, end_ns))

    def _read_bars_once(self, bt: str, start_ns: int | None, end_ns: int | None) -> list[Bar]:
        files = [f for f in self._snap.files(bt) if f.overlaps(start_ns, end_ns)]
        if not files:
            return []
        with self._snap.pinned(bt, files) as paths:
            return self._snap.decode_bars(bt, files, paths, start_ns, end_ns)

    def availability(self, bar_type: BarType | str) -> Availability:
        """Exact first/last ``ts_event`` and row count from Parquet metadata; never estimated."""
        bt = PurePath(self.bar_dir(bar_type)).name
        return self._snap.read(lambda: self._availability_many([bt])[0])

    def availability_many(self, bar_types: list[str]) -> list[Availability]:
        """``availability`` of many bar types from ONE listing of the bar tree and every footer
        read in a batch (concurrent requests on object storage)."""
        return self._snap.read(lambda: self._availability_many(bar_types))

    def _availability_many(self, bar_types: list[str]) -> list[Availability]:
        per_type = self._snap.tree(bar_types)
        files = [f for fs in per_type.values() for f in fs]
        footers = dict(zip((f.path for f in files), self._snap.footers(files), strict=True))
        out = []
        for bt, fs in per_type.items():
            out.append(summarize_files(bt, fs, [footers[f.path] for f in fs], self._measured))
        return out

    def _measured(self, f: DataFile, md: pq.FileMetaData | Exception) -> tuple[int, int, int]:
        """First/last ``ts_event`` and bytes of one data file."""
        assert not isinstance(md, Exception)  # Snapshots.footers raised for those
        read_ts = lambda: self._snap.table(f, ["ts_event"]).column(0).to_numpy()  # noqa: E731
        lo, hi = ts_event_bounds(md, read_ts)
        size = f.size if f.size is not None else self._snap.read_one(f, self.store.size)
        return lo, hi, size

    def instrument(self, instrument_id: InstrumentId | str) -> Instrument | None:
        iid = str(instrument_id)
        if not inv.instrument_files(self.store, self.root, iid):
            return None
        found = self.nautilus().instruments(instrument_ids=[iid])
        return found[0] if found else None

    # ---------------------------------------------------------------- writing
    def write_instrument(self, instrument: Instrument) -> PurePath:
        """Write an instrument the way Nautilus does, atomically (temp + rename / one PUT)."""
        from nautilus_trader.serialization.arrow.serializer import ArrowSerializer

        table = ArrowSerializer.serialize_batch([instrument], data_cls=type(instrument))
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        cls_dir = type(instrument).__name__.lower()
        final = self.root / "data" / cls_dir / str(instrument.id) / interval_file_name(0, 0)
        self._committer.put(final, table)
        return final

    def write_bars(
        self,
        bar_type: BarType | str,
        frame: BarFrame,
        *,
        mode: str = "merge",
        instrument: Instrument | Callable[[], Instrument] | None = None,
    ) -> WriteResult:
        """Write one bar type's bars under the lock, applying the conflict ``mode``.

        ``frame`` must be sorted with unique ``ts_event``. ``instrument`` (or a function making
        it: called only then) is written first when the catalog does not hold it yet (a catalog
        without the instrument is useless to a backtest); the bars take its price precision.
        """
        check_mode(mode)
        bt = PurePath(self.bar_dir(bar_type)).name
        if len(frame) and not bool(np.all(np.diff(frame.ts_event) > 0)):
            raise SystemFailure(f"bars for {bt} are not strictly increasing (a bug upstream)")
        with self.locked():
            iid = bt.rsplit("-", 4)[0]
            precision = self._precisions.get(iid)
            if precision is None:
                precision = inv.instrument_precision(self.store, self.root, iid)
            created = precision is None
            if precision is None:
                if instrument is None:
                    raise InputError(f"instrument for {bt} is not in the catalog")
                inst = instrument() if callable(instrument) else instrument
                self.write_instrument(inst)
                precision = int(inst.price_precision)
            self._precisions[iid] = precision
            frame = at_price_precision(frame, precision, f"instrument {iid}", bt)
            return self._write_locked(bt, frame, mode, created)

    def _write_locked(self, bt: str, frame: BarFrame, mode: str, created: bool) -> WriteResult:
        if not len(frame):
            return WriteResult(bt, mode, 0, 0, 0, 0, 0, 0, 0, 0, created)
        live = self._snap.files(bt)
        overlapping = [f for f in live if f.overlaps(frame.first_ns, frame.last_ns)]
        old = BarFrame.concat(
            [table_to_frame(read_locked(self.store, f, self._committer)) for f in overlapping]
        )
        if overlapping:
            size_precision = max(frame.size_precision, old.size_precision)
            old = replace(old, price_precision=frame.price_precision, size_precision=size_precision)
        merged = merge_frames(old if overlapping else None, frame, mode)
        if merged.unchanged:
            return WriteResult(bt, mode, len(frame), 0, 0, 0, merged.skipped, 0, 0, 0, created)
        out = merged.frame
        kept = [f for f in live if f not in overlapping]
        before = [f.last_ns for f in kept if f.last_ns < out.first_ns]
        after = [f.first_ns for f in kept if f.first_ns > out.last_ns]
        used = {f.path.name for f in live} | self.history.names(bt)
        name = fresh_name(
            out.first_ns, out.last_ns, used, max(before, default=None), min(after, default=None)
        )
        remove = [f.path for f in overlapping]
        self._lock.check()
        size = self._committer.replace(self.bar_dir(bt), name, frame_to_table(out, bt), remove)
        self.history.prune([bt])
        result = WriteResult(
            bt,
            mode,
            len(frame),
            merged.added,
            merged.replaced,
            merged.removed,
            merged.skipped,
            1,
            len(remove),
            size,
            created,
        )
        n = len(live) - len(remove) + 1
        if not 0 < self.compact_threshold < n:
            return result
        try:  # the write is committed: a failed compaction only leaves the files as they are
            done = self._compactor.compact(self.bar_dir(bt), self.compact_period)
        except NtraderError as exc:
            logger.warning(f"automatic compaction of {bt} failed ({exc}); run `make compact`")
            return result
        logger.info(f"{bt} had {n} files (catalog.compact_threshold={self.compact_threshold})")
        return replace(result, compacted=done.files_merged)

    # ---------------------------------------------------------------- compaction, repair, gc
    def compact(
        self, bar_types: list[str] | None = None, period: str | None = None
    ) -> CompactionResult:
        """Under the lock: merge the small files of ``bar_types`` (all when None) into one file
        per ``period`` ("month", "year", "all"; default ``compact_period``), each group in one
        ordinary commit (``compaction``). Readers see the same bars before, during and after."""
        period = check_period(period or self.compact_period)
        self.require_exists()  # compacting is no reason to create a catalog
        with self.locked():
            names = self.named(bar_types)
            done = [self._compactor.compact(self.bar_root / bt, period) for bt in names]
        return CompactionResult(self.url, period, done)

    def named(self, bar_types: list[str] | None) -> list[str]:
        """The directory names of ``bar_types`` (all as listed, when None)."""
        return self.bar_types() if bar_types is None else [self.bar_dir(b).name for b in bar_types]

    def quarantine_corrupt(self, bar_types: list[str] | None = None) -> list[Quarantined]:
        """Under the lock: fully decode every file of ``bar_types`` (all when None) and move the
        proven-corrupt ones to ``<catalog>/.corrupt/``; returns what was moved and why. A file
        unreadable for another reason (permissions, not a regular file, I/O) is never moved:
        after the others are checked, ``SystemFailure`` names it."""
        return quarantine_catalog(self, self._committer, bar_types)

    def gc(self) -> Pruned:
        """``make gc``: under the lock, delete all retained files removed ``retain_days`` ago."""
        self.require_exists()
        with self.locked(prune=False):
            return self.history.gc()
