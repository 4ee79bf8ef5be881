"""Legacy rows -> catalog bars: timestamps to ``ts_event``, prices at precision, row rejection.

One page of source rows (an Arrow table ``ts, open, high, low, close, volume``; prices already
``float8`` from the server) becomes a ``BarFrame`` plus the rows the catalog cannot take, each with
a reason: NULL/NaN values, non-positive prices, negative volume, broken OHLC (high < low …),
naive local times that do not exist or occur twice at a DST change, duplicate timestamps
(identical copies collapse to one row; copies that differ are all rejected).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ntrader.catalog.barframe import BarFrame
from ntrader.instruments import BarStep
from ntrader.sessions import local_of, localize

DAY_NS = 86_400_000_000_000
AWARE = "timestamp with time zone"
DAILY_TZ = "America/New_York"  # local date of tz-aware daily bars when source.timezone is unset


@dataclass(frozen=True)
class TimeMap:
    """How a source timestamp becomes ``ts_event`` (the bar close, UTC ns)."""

    ts_type: str  # information_schema data_type of the timestamp column
    tz: str | None  # zone of naive timestamps (and of the local date of daily bars)
    label: str  # "open" or "close": what the source timestamp marks
    step: BarStep

    @property
    def daily_open(self) -> bool:
        return self.label == "open" and self.step.daily

    @property
    def zone(self) -> str:
        return self.tz or (DAILY_TZ if self.step.daily else "UTC")

    @property
    def dst_check(self) -> bool:
        """Whether naive local times must be checked for DST gaps/overlaps."""
        return self.ts_type == "timestamp without time zone" and not self.daily_open

    def _raw_ns(self, ts: pa.ChunkedArray | pa.Array) -> np.ndarray:
        if self.ts_type == "date":
            return np.asarray(pc.cast(ts, pa.int32()), dtype=np.int64) * DAY_NS
        return np.asarray(pc.cast(ts, pa.int64()), dtype=np.int64) * 1_000

    def ts_event(
        self, ts: pa.ChunkedArray | pa.Array
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
        """(``ts_event`` ns, [(mask of rows to reject, reason)]) for non-null source timestamps."""
        raw = self._raw_ns(ts)
        problems: list[tuple[np.ndarray, str]] = []
        aware = self.ts_type == AWARE
        if self.daily_open:
            local = local_of(raw, self.zone) if aware else raw
            midnight = np.floor_divide(local, DAY_NS) * DAY_NS + self.step.calendar_days * DAY_NS
            return localize(midnight, self.zone, "earliest", "latest"), problems
        utc = raw
        if not aware:
            try:
                utc = localize(raw, self.zone)
            except pa.ArrowInvalid:
                early = localize(raw, self.zone, "earliest", "earliest")
                late = localize(raw, self.zone, "latest", "latest")
                gap = late - early
                problems.append(
                    ((gap > 0) & (gap <= 1_000), f"nonexistent local time in {self.zone} (DST)")
                )
                problems.append((gap > 1_000, f"ambiguous local time in {self.zone} (DST)"))
                utc = early
        shift = self.step.interval_ns if self.label == "open" else 0
        return utc + shift, problems

    def source_range(self, ts_event: int) -> tuple[Any, Any]:
        """The source timestamp range [lo, hi) that maps to ``ts_event`` (for spot checks)."""
        if self.daily_open:
            local_mid = int(local_of(np.array([ts_event]), self.zone)[0])
            day0 = local_mid - self.step.calendar_days * DAY_NS
            return self._from_local(day0), self._from_local(day0 + DAY_NS)
        utc = ts_event - (self.step.interval_ns if self.label == "open" else 0)
        if self.ts_type == AWARE:
            lo = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=utc // 1_000)
            return lo, lo + dt.timedelta(microseconds=1)
        local = int(local_of(np.array([utc]), self.zone)[0])
        return self._from_local(local), self._from_local(local + 1_000)

    def _from_local(self, local_ns: int) -> Any:
        """A local wall-clock ns as the source column holds it (naive datetime/date/aware UTC)."""
        naive = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=local_ns // 1_000)
        if self.ts_type == "date":
            return naive.date()
        if self.ts_type == AWARE:
            utc = int(localize(np.array([local_ns]), self.zone, "earliest", "latest")[0])
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=utc // 1_000)
        return naive


@dataclass(frozen=True)
class Converted:
    frame: BarFrame
    rejected_index: np.ndarray  # row positions in the page
    rejected_reason: np.ndarray  # object array of reasons, aligned


def convert(page: pa.Table, tmap: TimeMap, price_precision: int, size_precision: int) -> Converted:
    """A page of source rows -> bars the catalog can take + the rejected rows with reasons.

    Each row gets the FIRST reason that applies (a small integer code while computing: object
    arrays of strings compared per row cost more than the rest of the conversion).
    """
    ts_event, problems = tmap.ts_event(page.column("ts"))
    cols = {}
    for name in ("open", "high", "low", "close", "volume"):
        col = page.column(name)
        values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        digits = size_precision if name == "volume" else price_precision
        cols[name] = np.round(values, digits)
    o, h, lo, c, v = (cols[k] for k in ("open", "high", "low", "close", "volume"))
    nan = np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c) | np.isnan(v)
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    code = np.zeros(len(ts_event), dtype=np.uint8)
    reasons = [""]

    def reject(mask: np.ndarray, why: str) -> None:
        new = mask & (code == 0)
        if new.any():
            reasons.append(why)
            code[new] = len(reasons) - 1

    for mask, why in problems:
        reject(mask, why)
    with np.errstate(invalid="ignore"):  # NaN comparisons: those rows are rejected first
        reject(nan, "NULL or NaN value")
        reject(~finite, "infinite value")
        reject(np.minimum(np.minimum(o, h), np.minimum(lo, c)) <= 0, "non-positive price")
        reject(v < 0, "negative volume")
        reject(h < lo, "high < low")
        reject(h < np.maximum(o, c), "high < max(open, close)")
        reject(lo > np.minimum(o, c), "low > min(open, close)")
    ok = np.flatnonzero(code == 0)
    t = ts_event[ok]
    order = ok if bool(np.all(t[1:] > t[:-1])) else ok[np.argsort(t, kind="stable")]
    t = ts_event[order]
    if len(t) > 1 and bool(np.any(t[1:] == t[:-1])):
        stacked = np.vstack([o, h, lo, c, v])
        same = np.r_[False, t[1:] == t[:-1]]
        group = np.cumsum(~same) - 1
        first = np.flatnonzero(~same)[group]
        differs = (stacked[:, order] != stacked[:, order[first]]).any(axis=0)
        conflict = np.bincount(group, weights=differs).astype(bool)[group]
        dup = np.r_[same[1:], False] | same  # member of a group of size > 1
        marks = np.zeros(len(code), dtype=bool)
        marks[order[conflict & dup]] = True
        reject(marks, "duplicate timestamp with different values")
        marks[:] = False
        marks[order[~conflict & same]] = True
        reject(marks, "duplicate timestamp (identical copy dropped)")
        order = order[~(conflict & dup) & ~(~conflict & same)]
    frame = BarFrame(
        ts_event[order],
        o[order],
        h[order],
        lo[order],
        c[order],
        v[order],
        price_precision,
        size_precision,
    )
    bad = np.flatnonzero(code)
    return Converted(frame, bad, np.array(reasons, dtype=object)[code[bad]])
