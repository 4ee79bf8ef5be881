"""Pinned bar streams: one bar type's bars as of one commit, read in bounded chunks.

:func:`pin_bars` lists a bar type's files once (a snapshot, see ``snapshot``) and holds them open
(pinned) until :meth:`PinnedBars.close`. Everything read from it afterwards comes from that one
commit, however long the backtest takes and whatever writers commit meanwhile: the timestamps and
closes the calendar check and the equity marks use (two columns, read by pyarrow), and the bars
the engine consumes, decoded by Nautilus' Rust reader ``chunk`` bars at a time
(:meth:`PinnedBars.chunks`) — so memory holds one chunk of ``Bar`` objects per bar type, not the
whole range.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Generator, Iterator
from pathlib import PurePath
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ntrader.catalog.codec import decode_raw
from ntrader.errors import SystemFailure

if TYPE_CHECKING:
    from nautilus_trader.model.data import Bar

    from ntrader.catalog.adjust import PriceView
    from ntrader.catalog.catalog import Catalog
    from ntrader.catalog.files import DataFile
    from ntrader.catalog.snapshot import Snapshots

DEFAULT_CHUNK = 10_000  # bars per decoded chunk
READ_BATCH = 8_192  # rows pyarrow decodes at a time at least (small chunks skip rows fast)
_MIN_NS, _MAX_NS = -(2**63), 2**63 - 1
COLUMNS = ["ts_event", "close"]


class PinnedBars:
    """One bar type's bars with ``start_ns <= ts_event <= end_ns`` in pinned files.

    Use as a context manager or call :meth:`close`. ``count``/``first_ns``/``last_ns`` are
    known after :meth:`ts_close` (called by :func:`pin_bars`)."""

    def __init__(
        self,
        snap: Snapshots,
        bar_type: str,
        files: list[DataFile],
        paths: list[str],
        stack: contextlib.ExitStack,
        start_ns: int | None,
        end_ns: int | None,
    ) -> None:
        self._snap = snap
        self.bar_type = bar_type
        self.files = files
        self.paths = paths
        self._stack = stack
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.ts = np.empty(0, np.int64)
        self.close_px = np.empty(0, np.float64)
        self.price_precision = 0
        self.view: PriceView | None = None  # data.adjust: applied to every bar read
        self._tz = "UTC"

    def set_view(self, view: PriceView, tz: str) -> None:
        """Show the bars (and the closes) in ``view`` (:mod:`ntrader.catalog.adjust`)."""
        if view.identity:
            return
        self.close_px = view.apply_closes(self.ts, self.close_px, self.price_precision, tz)
        self.view, self._tz = view, tz

    # ---------------------------------------------------------------- columns
    def _read_columns(self) -> None:
        lo = _MIN_NS if self.start_ns is None else self.start_ns
        hi = _MAX_NS if self.end_ns is None else self.end_ns
        ts_parts, px_parts = [], []
        for f, path in zip(self.files, self.paths, strict=True):  # disjoint files, in order
            try:
                table = pq.read_table(path, columns=COLUMNS, pre_buffer=False)
            except (pa.ArrowException, OSError):  # the same bytes by name: diagnosed there
                table = self._snap.table(f, COLUMNS)
            meta = table.schema.metadata or {}
            ts = table.column("ts_event").to_numpy().astype(np.int64)
            keep = (ts >= lo) & (ts <= hi)
            self.price_precision = int(meta.get(b"price_precision", b"0"))
            px = decode_raw(table.column("close"), self.price_precision)
            ts_parts.append(ts[keep])
            px_parts.append(px[keep])
        if ts_parts:
            self.ts = np.concatenate(ts_parts)
            self.close_px = np.concatenate(px_parts)

    @property
    def count(self) -> int:
        return len(self.ts)

    @property
    def first_ns(self) -> int:
        return int(self.ts[0])

    @property
    def last_ns(self) -> int:
        return int(self.ts[-1])

    # ---------------------------------------------------------------- bars
    def chunks(self, size: int = DEFAULT_CHUNK) -> Generator[list[Bar], None, None]:
        """The bars, ascending, at most ``size`` at a time: pyarrow reads the pinned files batch
        by batch (row groups outside the range skipped by their statistics) and Nautilus' own
        Arrow decoder (``ArrowSerializer`` -> ``BarDataWranglerV2``) makes the ``Bar`` objects.

        Nautilus' Rust reader (:meth:`bars`) is faster but decodes a whole row group (up to a
        million bars, ~90 MiB) before it yields the first chunk, per bar type; this holds one
        compressed column chunk and one batch. Raises :class:`SystemFailure` at the end unless
        exactly the :attr:`count` bars the columns hold came out."""
        from nautilus_trader.model.data import Bar
        from nautilus_trader.serialization.arrow.serializer import ArrowSerializer

        lo = _MIN_NS if self.start_ns is None else self.start_ns
        hi = _MAX_NS if self.end_ns is None else self.end_ns
        size = max(1, int(size))
        seen, last = 0, None
        for f, path in zip(self.files, self.paths, strict=True):
            try:
                for batch in _batches(path, lo, hi, max(size, READ_BATCH)):
                    if self.view is not None:
                        batch = self.view.apply_batch(batch, self._tz)
                    for start in range(0, batch.num_rows, size):
                        bars = ArrowSerializer.deserialize(
                            data_cls=Bar, batch=batch.slice(start, size)
                        )
                        if type(bars[0]) is not Bar:  # pyo3 bars -> the engine's Cython Bar
                            bars = Bar.from_pyo3_list(bars)
                        seen += len(bars)
                        last = bars[-1].ts_event
                        yield bars
            except (pa.ArrowException, OSError) as exc:  # diagnosed on the file by name
                self._snap.table(f)
                raise SystemFailure(f"reading {f.path} failed: {exc}") from exc
        if seen != self.count or (seen and last != self.last_ns):
            raise SystemFailure(
                f"{self.bar_type}: the bar decoder gave {seen:,} bars where the pinned files "
                f"hold {self.count:,} in the range",
                hint="a file whose ts_init differs from ts_event? rerun with data.stream_chunk=0",
            )

    def first_bar(self) -> Bar:
        """The first bar alone (engine registration)."""
        chunks = self.chunks(1)
        try:
            return next(chunks)[0]
        finally:
            chunks.close()

    def bars(self) -> list[Bar]:
        """Every bar at once, by Nautilus' Rust reader (``data.stream_chunk=0``: the engine
        loads them up front, as ``Catalog.read_bars`` does)."""
        if not self.paths or not self.count:
            return []
        if self.view is not None:  # adjusted on the way: the Arrow path, in one list
            return [b for chunk in self.chunks(max(self.count, 1)) for b in chunk]
        bars = self._snap.decode_bars(
            self.bar_type, self.files, self.paths, self.start_ns, self.end_ns
        )
        if len(bars) != self.count:
            raise SystemFailure(
                f"{self.bar_type}: the bar reader gave {len(bars):,} bars where the pinned "
                f"files hold {self.count:,} in the range"
            )
        return bars

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> PinnedBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _batches(path: str, lo: int, hi: int, size: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``path`` with ``lo <= ts_event <= hi`` in record batches of about ``size``
    (row groups outside the range skipped by their statistics, the edges sliced)."""
    pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 16)
    groups = _row_groups(pf.metadata, lo, hi)
    for batch in pf.iter_batches(batch_size=size, row_groups=groups):
        # int64 on both sides: uint64 timestamps against Python ints compare as float64, which
        # rounds ``hi + 1`` back to ``hi`` and dropped a bar stamped exactly at ``hi`` (a daily
        # bar's close at midnight after the last session)
        ts = batch.column("ts_event").to_numpy().astype(np.int64, copy=False)
        a = int(np.searchsorted(ts, np.int64(lo), side="left"))
        b = int(np.searchsorted(ts, np.int64(hi), side="right"))
        if a < b:
            yield batch.slice(int(a), int(b - a)) if a or b < len(ts) else batch


def _row_groups(md: pq.FileMetaData, lo: int, hi: int) -> list[int]:
    """The row groups whose ``ts_event`` statistics overlap ``[lo, hi]`` (all without them)."""
    col = md.schema.names.index("ts_event")
    out = []
    for i in range(md.num_row_groups):
        stats = md.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max or (stats.min <= hi and stats.max >= lo):
            out.append(i)
    return out


def _descriptors_for(n: int, bar_type: str, url: str) -> None:
    """Room for ``n`` more open files (a pin holds each file open until the run ends): the soft
    limit is raised up to the hard one when needed; beyond that, a clear error."""
    if not os.path.isdir("/proc/self/fd"):
        return
    needed = len(os.listdir("/proc/self/fd")) + n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed <= soft:
        return
    if hard == resource.RLIM_INFINITY or needed <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return
    raise SystemFailure(
        f"{bar_type} has {n:,} data files in {url}: more than this process may hold open at once "
        f"(limit {hard:,} with the other bar types' files)",
        hint="merge them: make compact (catalog.compact_period=year), then rerun",
    )


def pin_bars(
    catalog: Catalog, bar_type: str, start_ns: int | None = None, end_ns: int | None = None
) -> PinnedBars:
    """Pin ``bar_type``'s files overlapping ``[start_ns, end_ns]`` (one commit) and read their
    timestamps and closes; close the result when done."""
    bt = PurePath(catalog.bar_dir(bar_type)).name
    snap = catalog.snapshots

    def once() -> PinnedBars:
        files = [f for f in snap.files(bt) if f.overlaps(start_ns, end_ns)]
        _descriptors_for(len(files), bt, catalog.url)
        stack = contextlib.ExitStack()
        try:
            paths = stack.enter_context(snap.pinned(bt, files))
            pinned = PinnedBars(snap, bt, files, paths, stack, start_ns, end_ns)
            pinned._read_columns()
        except BaseException:
            stack.close()
            raise
        return pinned

    return snap.read(once)
