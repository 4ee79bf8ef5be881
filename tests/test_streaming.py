"""Streamed backtests give exactly the fills of a one-shot load (``ntrader.backtest.engine``).

Each case runs the same spec on the same catalog with ``stream_chunk=0`` (every bar loaded up
front, as before streaming existed) and with small chunks (chunk boundaries inside sessions, in
the middle of ties between symbols) and the default, and compares every Nautilus report and the
summary. The catalog has a symbol that starts trading later than the others (its first bar ties
with another symbol's bar inside a running stream) and an OpeningRange strategy whose time alerts
fire between bars and after a symbol's last bar of a session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import time

import numpy as np
import pandas as pd
import pytest

from ntrader.backtest import BacktestSpec, StrategySpec, VenueSpec, run_backtest
from ntrader.backtest.data import check_and_load
from ntrader.catalog.catalog import Catalog

from .backtest_fixtures import make_catalog

EMA = "nautilus_trader.examples.strategies.ema_cross"
ORB = "ntrader.strategies.opening_range"
FIRST, LAST = dt.date(2024, 1, 2), dt.date(2024, 1, 31)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming") / "catalog"
    make_catalog(root, "AAPL", FIRST, LAST, seed=1)
    make_catalog(root, "MSFT", FIRST, LAST, seed=1)  # same prices: simultaneous signals, ties
    make_catalog(root, "NVDA", dt.date(2024, 1, 10), LAST, seed=3, start_price=90.0)  # later
    return root


UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _comparable(result) -> dict[str, pd.DataFrame]:
    """The reports without what differs between any two runs: UUIDs (event and init ids, the
    suffix of NETTING snapshot position ids)."""
    out = {}
    for name, frame in result.reports.items():
        f = frame.reset_index()
        random = [
            c for c in f.columns if f[c].astype(str).str.contains(UUID[1:-1], regex=True).any()
        ]
        out[name] = f.drop(columns=random)
    return out


def _parquet_fds() -> int:
    """Descriptors this process holds on Parquet files (a pinned read holds its files)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            n += os.readlink(f"/proc/self/fd/{fd}").endswith(".parquet")
    return n


def _settled_fds(expected: int, wait_s: float = 5.0) -> int:
    """:func:`_parquet_fds` once it equals ``expected`` (or after ``wait_s``): pyarrow may close
    a file it read on its I/O thread a moment after the read returned."""
    deadline = time.monotonic() + wait_s
    n = _parquet_fds()
    while n != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        n = _parquet_fds()
    return n


def _summary(result) -> dict:
    return {k: v for k, v in result.summary.items() if k not in ("timings",)}


def _runs(root, strategy, venue, chunks, **kw):
    base = BacktestSpec.of(["AAPL", "MSFT", "NVDA"], strategy, venue=venue, **kw)
    return {
        c: run_backtest(dataclasses.replace(base, stream_chunk=c), root, tearsheet=False)
        for c in chunks
    }


def _assert_identical(results):
    (_, ref), *others = results.items()
    ref_reports = _comparable(ref)
    assert len(ref_reports["fills"]) > 20  # the case trades (else identical means nothing)
    for chunk, res in others:
        assert res.bars == ref.bars
        assert res.engine_stop == ref.engine_stop, chunk
        got = _comparable(res)
        for name, frame in ref_reports.items():
            pd.testing.assert_frame_equal(got[name], frame, obj=f"{name} chunk={chunk}")
        assert _summary(res) == _summary(ref), chunk
        pd.testing.assert_series_equal(res.equity, ref.equity)


def test_streamed_netting_run_equals_the_one_shot_load(root):
    strategy = StrategySpec(
        f"{EMA}:EMACross", f"{EMA}:EMACrossConfig", {"trade_size": 10, "fast_ema_period": 5}
    )
    venue = VenueSpec(account_type="MARGIN", oms_type="NETTING")
    results = _runs(root, strategy, venue, [0, 7 * 3, 389 * 3, 10_000])
    _assert_identical(results)
    assert results[21].bars == 3 * 390 * 21 - 390 * 6  # NVDA starts on the 7th session


def test_streamed_timer_strategy_equals_the_one_shot_load(root):
    strategy = StrategySpec(
        f"{ORB}:OpeningRange",
        f"{ORB}:OpeningRangeConfig",
        {"trade_size": 10, "range_minutes": 15, "exit_minutes_before_close": 5},
    )
    results = _runs(
        root,
        strategy,
        VenueSpec(),
        [0, 13 * 3, 10_000],
        start="2024-01-08",
        allow_missing_sessions=True,
    )
    _assert_identical(results)
    fills = results[39].reports["fills"]
    sells = fills["order_side"] == "SELL"
    assert (fills["order_side"] == "BUY").sum() == sells.sum() > 0  # flat every night
    local = pd.to_datetime(fills["ts_event"]).dt.tz_convert("America/New_York")
    assert (sells & (local.dt.time >= dt.time(15, 55))).any()  # the time alert exited


def test_pinned_data_is_one_commit_and_released(root, tmp_path):
    cat = Catalog(root)
    strategy = StrategySpec(f"{EMA}:EMACross", f"{EMA}:EMACrossConfig", {"trade_size": 10})
    spec = BacktestSpec.of("AAPL", strategy, start="2024-01-02", end="2024-01-05")
    assert _parquet_fds() == 0
    with check_and_load(cat, spec) as data:
        held = len(cat.files(str(spec.bar_types[0])))
        assert _settled_fds(held) == held > 0  # pinned: held
        (source,) = data.sources.values()
        assert source.count == 4 * 390 == data.bar_count
        # a writer replaces the file the run pinned: the run still reads what it checked
        bars = cat.read(str(spec.bar_types[0]))
        bumped = dataclasses.replace(bars, close=np.round(bars.close + 1.0, 2))
        bumped = dataclasses.replace(
            bumped, high=np.maximum(bumped.high, bumped.close), low=bumped.low
        )
        cat.write_bars(str(spec.bar_types[0]), bumped, mode="overwrite")
        streamed = [b for chunk in source.chunks(100) for b in chunk]
        assert [float(b.close) for b in streamed] == list(source.close_px)
        assert float(streamed[0].close) == pytest.approx(float(bars.close[0]))
    assert _settled_fds(0) == 0  # released
    # the catalog now holds the new closes
    assert cat.read(str(spec.bar_types[0])).close[0] == pytest.approx(bars.close[0] + 1.0)


def test_stream_chunk_is_validated():
    strategy = StrategySpec(f"{EMA}:EMACross", f"{EMA}:EMACrossConfig", {})
    from ntrader.errors import InputError

    for bad in (-1, "10", 1.5, True):
        with pytest.raises(InputError, match="stream_chunk"):
            BacktestSpec.of("AAPL", strategy, stream_chunk=bad)


def test_too_many_files_to_pin_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    from .conftest import REPO

    cat, bt = make_catalog(tmp_path / "src", "AAPL", dt.date(2024, 1, 2), dt.date(2024, 1, 12))
    frame, inst = cat.read(str(bt)), cat.instrument(bt.instrument_id)
    root = tmp_path / "catalog"
    daily = Catalog(root, compact_threshold=0)
    for day in range(9):  # one file per session, as daily appends write them
        part = frame.take(slice(day * 390, (day + 1) * 390))
        daily.write_bars(str(bt), part, instrument=inst)
    n = len(daily.files(str(bt)))
    assert n == 9
    code = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (60, 60))
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.stream import pin_bars
from ntrader.errors import SystemFailure
try:
    pin_bars(Catalog({str(root)!r}), {str(bt)!r})
except SystemFailure as exc:
    print(exc.message); print(exc.hint); sys.exit(3)
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 3, p.stderr
    assert f"has {n:,} data files" in p.stdout and "make compact" in p.stdout


def test_a_daily_bar_stamped_at_the_range_end_is_streamed(tmp_path):
    """A daily bar's ts_event is the midnight after its session: exactly the end bound of a
    range ending on that session. The streamed chunks once dropped it (uint64 timestamps
    against ``hi + 1`` compared as float64) and the backtest failed with "gave 123 bars where
    the pinned files hold 124"."""
    from ntrader.catalog.barframe import random_walk_frame
    from ntrader.catalog.stream import pin_bars
    from ntrader.instruments import make_equity, resolve_instrument_id
    from ntrader.sessions import day_bounds_ns

    bt = "AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"
    days = pd.bdate_range("2024-01-02", "2024-06-28")
    closes = (days + pd.Timedelta(days=1)).tz_localize("America/New_York").tz_convert("UTC")
    ts = closes.tz_localize(None).to_numpy().astype("datetime64[ns]").view(np.int64)
    cat = Catalog(tmp_path / "catalog")
    equity = make_equity(resolve_instrument_id("AAPL.NASDAQ"), 2)
    cat.write_bars(bt, random_walk_frame(ts, seed=4), mode="overwrite", instrument=equity)
    lo, hi = day_bounds_ns(days[0].date(), days[-1].date(), "America/New_York")
    assert hi == ts[-1]  # the case: the last bar sits on the bound
    with pin_bars(cat, bt, lo, hi) as pinned:
        assert pinned.count == len(ts)
        for size in (1000, 7):
            bars = [b for chunk in pinned.chunks(size) for b in chunk]
            assert [b.ts_event for b in bars] == ts.tolist()
