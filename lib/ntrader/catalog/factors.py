"""Dividend (total-return) factors: per instrument and session, the multiplier that turns a stored
(split-adjusted) price into the dividend-adjusted one, versioned next to the data.

IB's ADJUSTED_LAST bars are TRADES bars adjusted for dividends too (TWS API, "Historical data
types": https://interactivebrokers.github.io/tws-api/historical_bars.html), as of the request:
each session before an ex-date is multiplied by ``1 - amount / previous close`` — the usual
back-adjustment, so the newest session's factor is 1. A CSV's ``Adj Close`` next to its
``Close`` is the same thing. :func:`derive_factors` recovers the step function from the two
daily series, and :func:`store_factors` keeps each computation as a version in
``<catalog>/.ntrader/factors/<INSTRUMENT_ID>/v<N>.json`` (outside ``data/``: plain Nautilus
readers never see it)::

    {"format": 1, "instrument": "AAPL.NASDAQ", "version": 2, "computed_at": "2024-06-17T…",
     "source": "ibkr: ADJUSTED_LAST / TRADES 1 day, regular hours", "first": "2024-01-02",
     "last": "2024-06-14",
     "dividends": [{"ex_date": "2024-05-10", "amount": 0.24, "prev_close": 183.05,
                    "step": 0.998689, "exact": true}],
     "segments": [{"first": "2024-01-02", "last": "2024-05-09", "factor": 0.998689},
                  {"first": "2024-05-10", "last": "2024-06-14", "factor": 1.0}]}

A new dividend changes every older factor, so a computation whose content differs from the
latest version is written as the next version (older versions stay, with the date they were
computed); an identical one reuses the latest. ``segments`` is the per-session series in
run-length form: the factor of a session ``first <= d <= last`` is that of its segment; a
session outside ``first .. last`` has no factor (a backtest refuses rather than guess).

Recovery is exact where the data allows it. Both series are rounded (IB: to the cent), so each
session bounds its factor to an interval; sessions whose intervals intersect share a factor,
and a session whose interval does not meet the running intersection starts an older segment (an
ex-date), its factor estimated by least squares within those bounds. A dividend's amount is
``prev_close * (1 - step)``; when the prices pin it to within half a cent (or a tenth, a
hundredth of a cent) and a whole cent (…) lies inside, the amount is snapped to it and the step
recomputed from it — exactly the factors IB (and the simulator) applied; else the estimate is
kept (``"exact": false``). A dividend below the rounding noise of one
session's prices can be found a few sessions late; that noise is half a tick over the price.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from ntrader.errors import DataError
from ntrader.symbols import check_bar_type_name

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog

FORMAT = 1
_GRIDS = (0.01, 0.001, 0.0001)  # dividend amounts are declared in cents, rarely finer


@dataclass(frozen=True)
class Dividend:
    """A step of the factor series: sessions before ``ex_date`` are multiplied by ``step``."""

    ex_date: dt.date
    amount: float  # per share, in the stored (split-adjusted) scale
    prev_close: float  # the close of the session before the ex-date the step is relative to
    step: float  # 1 - amount / prev_close
    exact: bool  # the amount was pinned to a grid (cents …), not an interval's midpoint

    def as_json(self) -> dict[str, Any]:
        return {
            "ex_date": self.ex_date.isoformat(),
            "amount": self.amount,
            "prev_close": self.prev_close,
            "step": self.step,
            "exact": self.exact,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Dividend:
        return cls(
            dt.date.fromisoformat(str(d["ex_date"])),
            float(d["amount"]),
            float(d["prev_close"]),
            float(d["step"]),
            bool(d.get("exact", False)),
        )


@dataclass(frozen=True)
class FactorSeries:
    """One version of an instrument's dividend factors over the sessions ``first .. last``."""

    instrument: str
    first: dt.date
    last: dt.date
    dividends: tuple[Dividend, ...]
    source: str
    computed_at: dt.datetime
    version: int = 0  # 0: not stored yet

    def factor_on(self, sessions: np.ndarray) -> np.ndarray:
        """The factor of each session (``datetime64[D]``); NaN outside ``first .. last``."""
        days = np.asarray(sessions, dtype="datetime64[D]")
        out = np.ones(len(days))
        for d in self.dividends:
            out[days < np.datetime64(d.ex_date)] *= d.step
        out[(days < np.datetime64(self.first)) | (days > np.datetime64(self.last))] = np.nan
        return out

    def segments(self) -> list[dict[str, Any]]:
        """The series in run-length form: ``{"first", "last", "factor"}`` from oldest."""
        edges = [self.first, *(d.ex_date for d in self.dividends), self.last + dt.timedelta(1)]
        out = []
        for a, b in itertools.pairwise(edges):
            if b > a:
                f = float(self.factor_on(np.array([np.datetime64(a)]))[0])
                out.append(
                    {"first": a.isoformat(), "last": (b - dt.timedelta(1)).isoformat(), "factor": f}
                )
        return out

    def same_content(self, other: FactorSeries) -> bool:
        if (self.first, self.last, len(self.dividends)) != (
            other.first,
            other.last,
            len(other.dividends),
        ):
            return False
        return all(
            a.ex_date == b.ex_date and math.isclose(a.step, b.step, rel_tol=0, abs_tol=1e-12)
            for a, b in zip(self.dividends, other.dividends, strict=True)
        )

    def describe(self) -> str:
        n = len(self.dividends)
        return (
            f"{self.instrument}: dividend factors v{self.version} ({n} dividend(s), sessions "
            f"{self.first} .. {self.last}, computed {self.computed_at:%Y-%m-%d %H:%M} UTC)"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "instrument": self.instrument,
            "version": self.version,
            "computed_at": self.computed_at.isoformat(),
            "source": self.source,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "dividends": [d.as_json() for d in self.dividends],
            "segments": self.segments(),
        }

    def summary(self) -> dict[str, Any]:
        """What a run's summary.json records of the factors it used."""
        return {
            "version": self.version,
            "computed_at": self.computed_at.isoformat(),
            "source": self.source,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "dividends": len(self.dividends),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FactorSeries:
        return cls(
            instrument=str(d["instrument"]),
            first=dt.date.fromisoformat(str(d["first"])),
            last=dt.date.fromisoformat(str(d["last"])),
            dividends=tuple(Dividend.from_json(x) for x in d.get("dividends") or []),
            source=str(d.get("source", "")),
            computed_at=dt.datetime.fromisoformat(str(d["computed_at"])),
            version=int(d.get("version", 0)),
        )


# ------------------------------------------------------------------------------ derivation
def _bounds(
    base: np.ndarray,
    adjusted: np.ndarray,
    half_base: float | np.ndarray,
    half_adjusted: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per session (rows), the factor interval every price (columns) allows: the adjusted price
    was rounded from ``base * factor`` where ``base`` itself may be rounded."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = (adjusted - half_adjusted) / (base + half_base)
        hi = (adjusted + half_adjusted) / (base - half_base)
    ok = np.isfinite(base) & np.isfinite(adjusted) & (base - half_base > 0)
    lo = np.where(ok, lo, -np.inf).max(axis=1)
    hi = np.where(ok, hi, np.inf).min(axis=1)
    return lo, hi


def _per_price(half: float | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A half unit for every price: one for all, one per session (row) or one per price."""
    h = np.asarray(half, dtype=np.float64)
    return np.broadcast_to(h.reshape(-1, 1) if h.ndim == 1 else h, shape)


def _estimate(b: np.ndarray, a: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """A segment's factor interval narrowed by its prices: ``[lo, hi]`` bounds it for certain
    (the base's own rounding included), and the rounding errors of many prices average out —
    least squares ``sum(a * b) / sum(b * b)`` with four standard errors either side."""
    ok = np.isfinite(a) & np.isfinite(b) & (b > 0)
    bv, av = b[ok], a[ok]
    if len(bv) < 8:
        return lo, hi
    f = float(np.dot(av, bv) / np.dot(bv, bv))
    se = float(np.std(av / bv, ddof=1) / np.sqrt(len(bv)))
    n_lo, n_hi = max(lo, f - 4 * se), min(hi, f + 4 * se)
    return (n_lo, n_hi) if n_lo <= n_hi else (lo, hi)


def _snap(lo: float, hi: float) -> tuple[float, bool]:
    """An amount in ``[lo, hi]``: the point of the coarsest grid inside it when the interval is
    at most half a grid step wide (one candidate at most), else the midpoint."""
    for grid in _GRIDS:
        if hi - lo <= grid / 2:
            k = round((lo + hi) / 2 / grid)
            if lo - 1e-12 <= k * grid <= hi + 1e-12:
                return round(k * grid, 10), True
    return (lo + hi) / 2, False


def derive_factors(
    instrument: str,
    sessions: list[dt.date],
    base: np.ndarray,
    adjusted: np.ndarray,
    *,
    half_base: float | np.ndarray,
    half_adjusted: float | np.ndarray,
    source: str,
    computed_at: dt.datetime | None = None,
) -> FactorSeries:
    """The dividend factors of ``sessions`` (ascending) from the ``base`` (split-adjusted)
    prices and the ``adjusted`` (split- and dividend-adjusted) ones, one row per session and the
    close in the LAST column (more columns — open, high, low — tighten the bounds). ``half_*``:
    half the rounding unit of each series (IB: half a cent)."""
    n = len(sessions)
    if n == 0:
        raise DataError(f"{instrument}: no session to derive dividend factors from")
    b = np.asarray(base, dtype=np.float64).reshape(n, -1)
    a = np.asarray(adjusted, dtype=np.float64).reshape(n, -1)
    hb, ha = _per_price(half_base, b.shape), _per_price(half_adjusted, a.shape)
    lo, hi = _bounds(b, a, hb, ha)
    bad = ~(lo <= hi)  # contradictory prices: the close alone
    if bad.any():
        clo, chi = _bounds(b[:, -1:], a[:, -1:], hb[:, -1:], ha[:, -1:])
        lo[bad], hi[bad] = clo[bad], chi[bad]
    # segments, newest first: a session whose interval misses the running one is an older one
    segments: list[tuple[int, float, float]] = []  # (index of the segment's first session, lo, hi)
    run_lo, run_hi, start = lo[-1], hi[-1], n - 1
    for i in range(n - 2, -1, -1):
        if lo[i] <= run_hi and hi[i] >= run_lo:
            run_lo, run_hi, start = max(run_lo, lo[i]), min(run_hi, hi[i]), i
        else:
            segments.append((start, run_lo, run_hi))
            run_lo, run_hi, start = lo[i], hi[i], i
    segments.append((start, run_lo, run_hi))
    ends = [n, *(s for s, _, _ in segments[:-1])]  # one past each segment's last session
    segments = [
        (s, *_estimate(b[s:e], a[s:e], s_lo, s_hi))
        for (s, s_lo, s_hi), e in zip(segments, ends, strict=True)
    ]
    newest_lo, newest_hi = segments[0][1], segments[0][2]
    factor = 1.0 if newest_lo <= 1.0 <= newest_hi else (newest_lo + newest_hi) / 2
    dividends: list[Dividend] = []
    for j in range(1, len(segments)):
        _, s_lo, s_hi = segments[j]
        ex_index = segments[j - 1][0]  # the newer segment's first session: the ex-date
        prev = float(b[ex_index - 1, -1])  # the close of the session before the ex-date
        step_lo, step_hi = s_lo / factor, s_hi / factor
        amount, exact = _snap(prev * (1 - step_hi), prev * (1 - step_lo))
        step = 1.0 - amount / prev
        factor *= step
        dividends.append(Dividend(sessions[ex_index], round(amount, 10), prev, step, exact))
    return FactorSeries(
        instrument,
        sessions[0],
        sessions[-1],
        tuple(sorted(dividends, key=lambda d: d.ex_date)),
        source,
        computed_at or dt.datetime.now(dt.UTC),
    )


# ------------------------------------------------------------------------------ storage
def _dir(catalog: Catalog, instrument_id: str) -> PurePath:
    check_bar_type_name(f"{instrument_id}-1-DAY-LAST-EXTERNAL")  # a hostile id never escapes
    return catalog.root / ".ntrader" / "factors" / instrument_id


def versions(catalog: Catalog, instrument_id: str) -> list[int]:
    """The stored versions of ``instrument_id``'s factors, ascending."""
    out = []
    for name in catalog.store.list_names(_dir(catalog, instrument_id)):
        stem = name.removesuffix(".json")
        if name.endswith(".json") and stem[:1] == "v" and stem[1:].isdigit():
            out.append(int(stem[1:]))
    return sorted(out)


def load_factors(
    catalog: Catalog, instrument_id: str, version: int | None = None
) -> FactorSeries | None:
    """One version (the latest by default) of ``instrument_id``'s factors; None if none."""
    if version is None:
        have = versions(catalog, instrument_id)
        if not have:
            return None
        version = have[-1]
    text = catalog.store.read_text(_dir(catalog, instrument_id) / f"v{version:04d}.json")
    if text is None:
        return None
    return FactorSeries.from_json(json.loads(text))


@dataclass
class StoredFactors:
    series: FactorSeries
    new: bool  # a new version was written (False: identical to the latest)


def store_factors(catalog: Catalog, series: FactorSeries) -> StoredFactors:
    """Keep ``series`` as the next version unless the latest has the same content."""
    latest = load_factors(catalog, series.instrument)
    if latest is not None and latest.same_content(series):
        return StoredFactors(latest, False)
    version = (latest.version if latest else 0) + 1
    stored = FactorSeries(
        series.instrument,
        series.first,
        series.last,
        series.dividends,
        series.source,
        series.computed_at,
        version,
    )
    path = _dir(catalog, series.instrument) / f"v{version:04d}.json"
    catalog.store.write_text(path, json.dumps(stored.as_json(), indent=1))
    return StoredFactors(stored, True)
