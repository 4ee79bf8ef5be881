"""Synthetic inputs for ``bench/run.py``: a minute-bar CSV and two catalogs (scan and check).

Everything is seeded, so two runs of the benchmark see byte-identical inputs. Prices are whole
cents (2 decimals) in a reflected random walk between 100 and 200, with consistent OHLC
(``low <= min(open, close) <= max(open, close) <= high``) and integer volumes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ntrader.catalog import BarFrame, Catalog
from ntrader.catalog.barframe import random_walk_frame
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.sessions import expected_bar_closes, sessions_between

MINUTE_NS = 60_000_000_000
LOW_CENTS, HIGH_CENTS = 10_000, 20_000  # the walk stays in [100.00, 200.00]


@dataclass(frozen=True)
class Ohlcv:
    """Prices in integer cents, volume in shares."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def frame(self, ts_event: np.ndarray) -> BarFrame:
        c = 100.0
        return BarFrame(
            np.asarray(ts_event, dtype=np.int64),
            self.open / c,
            self.high / c,
            self.low / c,
            self.close / c,
            self.volume.astype(np.float64),
            price_precision=2,
            size_precision=0,
        )


def ohlcv(n: int, rng: np.random.Generator, start_cents: int = 15_000) -> Ohlcv:
    """``n`` consistent OHLCV bars: a random walk of closes reflected into [100, 200]."""
    span = HIGH_CENTS - LOW_CENTS
    walk = (start_cents - LOW_CENTS) + np.cumsum(rng.integers(-6, 7, n + 1))
    m = np.mod(walk, 2 * span)
    path = LOW_CENTS + np.where(m <= span, m, 2 * span - m)
    open_, close = path[:-1], path[1:]
    high = np.maximum(open_, close) + rng.integers(0, 8, n)
    low = np.minimum(open_, close) - rng.integers(0, 8, n)
    volume = rng.integers(100, 10_000, n)
    return Ohlcv(open_, high, low, close, volume)


def _cents_text(cents: np.ndarray) -> pa.Array:
    """Integer cents -> ``"123.45"`` strings (always two decimals)."""
    c = pa.array(cents, pa.int64())
    whole = pc.cast(pc.divide(c, 100), pa.string())
    frac = pc.utf8_lpad(
        pc.cast(pc.subtract(c, pc.multiply(pc.divide(c, 100), 100)), pa.string()), 2, "0"
    )
    return pc.binary_join_element_wise(whole, frac, ".")


def minute_csv(path: Path, *, start: str = "2024-01-01", days: int = 366, seed: int = 1) -> int:
    """A 24x7 1-minute CSV (``timestamp,open,high,low,close,volume``, UTC ISO with ``Z``, the
    timestamp marking the bar OPEN). Returns the number of data rows."""
    n = days * 1440
    rng = np.random.default_rng(seed)
    opens = np.datetime64(start, "s") + np.arange(n, dtype=np.int64) * np.timedelta64(60, "s")
    stamps = pc.strftime(pa.array(opens, pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
    b = ohlcv(n, rng)
    table = pa.table(
        {
            "timestamp": stamps,
            "open": _cents_text(b.open),
            "high": _cents_text(b.high),
            "low": _cents_text(b.low),
            "close": _cents_text(b.close),
            "volume": pa.array(b.volume, pa.int64()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, fh, opts)
    return n


def scan_catalog(
    root: Path,
    *,
    instruments: int = 500,
    first_day: dt.date = dt.date(2024, 3, 4),
    last_day: dt.date = dt.date(2024, 3, 8),
    seed: int = 2,
) -> tuple[Catalog, int]:
    """``SYM000.NASDAQ`` … one 1-minute bar type per instrument, RTH bars of a few XNYS sessions,
    each written with ``Catalog.write_bars``. Returns the catalog and the total number of bars."""
    rng = np.random.default_rng(seed)
    ts = expected_bar_closes(sessions_between("XNYS", first_day, last_day), MINUTE_NS)
    catalog = Catalog(root)
    for i in range(instruments):
        iid = resolve_instrument_id(f"SYM{i:03d}.NASDAQ")
        bars = ohlcv(ts.size, rng, start_cents=int(rng.integers(11_000, 19_000))).frame(ts)
        catalog.write_bars(bar_type_for(iid, "1-MINUTE-LAST"), bars, instrument=make_equity(iid, 2))
    return catalog, instruments * int(ts.size)


@dataclass(frozen=True)
class CheckData:
    catalog: Catalog
    symbol: str
    start: dt.date
    end: dt.date
    sessions: int  # XNYS sessions in [start, end]
    dropped_sessions: list[dt.date]
    missing_session_ranges: int  # dropped sessions merged into runs of consecutive sessions
    intraday_runs: int  # runs of missing bars inside kept sessions
    intraday_bars: int
    bars_expected: int
    bars_written: int
    files: int


def check_catalog(
    root: Path,
    *,
    symbol: str = "CHK.NASDAQ",
    start: dt.date = dt.date(2019, 1, 2),
    end: dt.date = dt.date(2023, 12, 29),
    drop_sessions: int = 6,
    drop_runs: int = 12,
    seed: int = 3,
) -> CheckData:
    """RTH 1-minute bars of one symbol over the real XNYS calendar with a few whole sessions and a
    few intraday runs removed; written one calendar year per ``write_bars`` call (one file each)."""
    rng = np.random.default_rng(seed)
    sessions = sessions_between("XNYS", start, end)
    n_sess = len(sessions)
    per_session = expected_bar_closes(sessions, MINUTE_NS)
    # Session index of every expected close (closes are sorted, sessions too).
    session_of = np.searchsorted(sessions.close_ns, per_session, side="left")
    counts = np.bincount(session_of, minlength=n_sess)

    inner = np.arange(1, n_sess - 1)  # keep the first and last session so the range is fixed
    dropped = np.sort(rng.choice(inner, size=min(drop_sessions, inner.size), replace=False))
    keep = np.ones(per_session.size, dtype=bool)
    keep[np.isin(session_of, dropped)] = False

    candidates = np.setdiff1d(inner, dropped)
    run_sessions = rng.choice(candidates, size=min(drop_runs, candidates.size), replace=False)
    run_bars = 0
    starts = np.cumsum(counts) - counts
    for s in run_sessions.tolist():
        length = int(rng.integers(1, 31))
        offset = int(rng.integers(1, counts[s] - length - 1))  # strictly inside the session
        keep[starts[s] + offset : starts[s] + offset + length] = False
        run_bars += length

    ts = per_session[keep]
    bars = ohlcv(ts.size, rng).frame(ts)
    catalog = Catalog(root)
    iid = resolve_instrument_id(symbol)
    bar_type = bar_type_for(iid, "1-MINUTE-LAST")
    years = (ts.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970).tolist()
    year_arr = np.asarray(years)
    files = 0
    for year in sorted(set(years)):
        part = bars.take(np.flatnonzero(year_arr == year))
        catalog.write_bars(bar_type, part, instrument=make_equity(iid, 2))
        files += 1
    ranges = int(np.count_nonzero(np.diff(dropped) != 1)) + 1 if dropped.size else 0
    return CheckData(
        catalog=catalog,
        symbol=symbol,
        start=start,
        end=end,
        sessions=n_sess,
        dropped_sessions=[sessions.dates[i].item() for i in dropped.tolist()],
        missing_session_ranges=ranges,
        intraday_runs=int(run_sessions.size),
        intraday_bars=run_bars,
        bars_expected=int(per_session.size),
        bars_written=int(ts.size),
        files=files,
    )


def backtest_catalog(
    root: Path,
    *,
    symbol: str = "BTX.NASDAQ",
    start: dt.date = dt.date(2024, 1, 1),
    end: dt.date = dt.date(2024, 12, 31),
    seed: int = 4,
) -> tuple[Catalog, str, int]:
    """RTH 1-minute bars of one symbol on every XNYS session in ``[start, end]`` (holidays and
    early closes included), one ``write_bars`` call. Returns the catalog, bar type and bar count."""
    closes = expected_bar_closes(sessions_between("XNYS", start, end), MINUTE_NS)
    iid = resolve_instrument_id(symbol)
    bar_type = bar_type_for(iid, "1-MINUTE-LAST")
    catalog = Catalog(root)
    catalog.write_bars(
        bar_type, random_walk_frame(closes, seed=seed), instrument=make_equity(iid, 2)
    )
    return catalog, str(bar_type), int(closes.size)
