"""Dividend factors and the backtest's price view (issue 14 §4, §5), against the TWS simulator.

The simulator's ADJUSTED_LAST answers are its TRADES answers back-adjusted for its cash dividends
as of its clock ("now"); :func:`ntrader.ibkr.sim.corporate.adjustment` is that ground truth. A
fetch with ``corporate_actions.dividends=true`` must store exactly those factors, versioned; a
backtest with ``data.adjust=total_return`` must trade as the same strategy does on bars adjusted
independently from the ground truth; ``data.adjust=none`` must show the prices as they traded.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.factors import load_factors, versions
from ntrader.ibkr.sim import run_simulator
from ntrader.ibkr.sim.corporate import Dividend, adjustment
from ntrader.ibkr.sim.market import DEFAULT_HEAD
from ntrader.sessions import local_dates

from .test_fetch import fetch
from .test_sim_corporate import BT, SPLIT, TRUTH, Clock, evening, ground_truth, scaled

DAILY_BT = "AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"
DIVIDENDS = [
    Dividend("AAPL", dt.date(2024, 2, 9), 0.24),
    Dividend("AAPL", dt.date(2024, 5, 10), 0.25),
]
ON = "corporate_actions.dividends=true"
# a daily-bar backtest of the CSV catalogs below that trades (short EMAs), from the disk alone
DAILY_BACKTEST = (
    "bars=daily",
    "ibkr.auto_fetch=false",
    "strategy.params.fast_ema_period=3",
    "strategy.params.slow_ema_period=8",
)


def truth_factors(sessions: np.ndarray, now: dt.date, actions=DIVIDENDS) -> np.ndarray:
    _, factor = adjustment(actions, "AAPL", DEFAULT_HEAD, sessions, now, "ADJUSTED_LAST")
    return factor


def stored_sessions(root: Path, bar_type: str = DAILY_BT) -> np.ndarray:
    return local_dates(Catalog(root).read(bar_type).ts_event - 1, "America/New_York")


def test_factors_equal_the_simulators_and_a_new_dividend_is_a_new_version(run_script, tmp_path):
    root = tmp_path / "catalog"
    daily = "bars.spec=1-DAY-LAST"
    clock = Clock(evening("2024-03-28"))
    with run_simulator(wall_clock=clock, corporate_actions=DIVIDENDS) as sim:
        first = fetch(run_script, sim, root, "2024-01-02", "2024-03-27", daily, ON)
        s = first.summary()  # each run's summary right after it: summary() takes the latest
        asked = [(q.what_to_show, q.end_date_time, q.bar_size) for q in sim.requests]
        again = fetch(run_script, sim, root, "2024-01-02", "2024-03-27", daily, ON)
        s_again = again.summary()
        off = fetch(run_script, sim, root, "2024-01-02", "2024-03-27", daily)
        s_off = off.summary()
        clock.set(evening("2024-06-28"))
        later = fetch(run_script, sim, root, "2024-03-28", "2024-06-27", daily, ON)
    for r in (first, again, off, later):
        assert r.code == 0, r.stderr
    assert asked[-2:] == [("TRADES", "", "1 day"), ("ADJUSTED_LAST", "", "1 day")]
    assert s["counts"]["factor_requests"] == 2
    f1 = s["corporate_actions"]["factors"]["AAPL.NASDAQ"]
    assert (f1["version"], f1["dividends"], f1["new_version"]) == (1, 1, True)
    assert "Dividend factors of AAPL.NASDAQ: v1 (new version; 1 dividend(s) in 2024-01-02" in (
        first.stdout
    )
    # a rerun with nothing new keeps v1; without the flag nothing is asked for the factors
    assert s_again["corporate_actions"]["factors"]["AAPL.NASDAQ"]["new_version"] is False
    assert "v1 (unchanged" in again.stdout
    assert s_off["counts"]["factor_requests"] == 0 and s_off["counts"]["requests"] == 0
    assert versions(Catalog(root), "AAPL.NASDAQ") == [1, 2]

    cat = Catalog(root)
    v1, v2 = load_factors(cat, "AAPL.NASDAQ", 1), load_factors(cat, "AAPL.NASDAQ")
    assert v1 is not None and v2 is not None and v2.version == 2
    assert [(d.ex_date, d.amount, d.exact) for d in v1.dividends] == [
        (dt.date(2024, 2, 9), 0.24, True)
    ]
    assert [(d.ex_date, d.amount) for d in v2.dividends] == [
        (dt.date(2024, 2, 9), 0.24),
        (dt.date(2024, 5, 10), 0.25),
    ]
    assert v1.computed_at < v2.computed_at and (v1.first, v2.first) == (dt.date(2024, 1, 2),) * 2
    days = stored_sessions(root)
    q1 = days[days <= np.datetime64("2024-03-27")]
    np.testing.assert_array_equal(v1.factor_on(q1), truth_factors(q1, dt.date(2024, 3, 28)))
    np.testing.assert_array_equal(v2.factor_on(days), truth_factors(days, dt.date(2024, 6, 28)))
    # the May dividend changed every older factor: v1 keeps what was true on 2024-03-28
    assert np.all(v2.factor_on(q1) < v1.factor_on(q1))
    stored = json.loads((root / ".ntrader/factors/AAPL.NASDAQ/v0001.json").read_text())
    assert stored["segments"][0] == {
        "first": "2024-01-02",
        "last": "2024-02-08",
        "factor": v1.dividends[0].step,
    }
    assert not list((root / "data").rglob("*.json"))  # plain Nautilus readers see only bars


def _fills(run_dir: Path) -> list[tuple[str, ...]]:
    with open(run_dir / "fills.csv") as fh:
        rows = list(csv.DictReader(fh))
    keys = ("ts_event", "order_side", "last_qty", "last_px")
    return [tuple(r[k] for k in keys) for r in rows]


def test_total_return_backtest_equals_independently_adjusted_bars(run_script, tmp_path):
    """Catalog A: IB's bars; the backtest's auto-fetch derives the factors its view needs.
    Catalog B: the same bars times the simulator's own factors, written as plain bars. A on
    total_return trades as B as stored, fill for fill."""
    a, b = tmp_path / "a", tmp_path / "b"
    start, end = "2024-04-22", "2024-05-31"  # across the 2024-05-10 ex-date
    clock = Clock(evening("2024-06-28"))
    common = ("symbol=AAPL", f"dates.start={start}", f"dates.end={end}")
    with run_simulator(wall_clock=clock, corporate_actions=DIVIDENDS) as sim:
        assert fetch(run_script, sim, a, start, end).code == 0  # bars only: no factors yet
        raw = Catalog(a).read(BT)
        n = len(sim.requests)
        # the backtest's auto-fetch asks IB for the factors the view needs: 2 daily requests
        viewed = run_script(
            "backtest",
            f"catalog.path={a}",
            *common,
            "data.adjust=total_return",
            env={"IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(sim.port)},
        )
        sv = viewed.summary()
        asked = [(q.what_to_show, q.bar_size) for q in sim.requests[n:]]
    assert viewed.code == 0, viewed.stderr
    assert asked == [("TRADES", "1 day"), ("ADJUSTED_LAST", "1 day")]
    assert "data.adjust=total_return: fetching the dividend factors of AAPL.NASDAQ" in (
        viewed.stderr
    )
    f = truth_factors(local_dates(raw.ts_event - 1, "America/New_York"), dt.date(2024, 6, 28))
    assert 0.99 < f.min() < f.max() == 1.0  # the view has something to do

    def adj(x: np.ndarray) -> np.ndarray:
        return np.maximum(1, np.round(np.round(x * 100) * f)) / 100

    o, h, lo, c = (adj(getattr(raw, k)) for k in ("open", "high", "low", "close"))
    h, lo = np.maximum.reduce([h, o, c]), np.minimum.reduce([lo, o, c])
    adjusted = BarFrame(raw.ts_event, o, h, lo, c, raw.volume, 2, 0)
    Catalog(b).write_bars(
        BT, adjusted, mode="overwrite", instrument=Catalog(a).instrument(BT.split("-")[0])
    )

    common = (*common, "ibkr.auto_fetch=false")
    independent = run_script("backtest", f"catalog.path={b}", *common)
    assert independent.code == 0, independent.stderr
    si = independent.summary()
    as_stored = run_script("backtest", f"catalog.path={a}", *common)
    assert as_stored.code == 0, as_stored.stderr
    ss = as_stored.summary()

    fills = _fills(Path(sv["run_dir"]))
    assert len(fills) > 10 and fills == _fills(Path(si["run_dir"]))
    for k in ("pnl", "return_pct", "fills", "ending_balance"):
        assert sv["result"][k] == si["result"][k], k
    assert ss["result"]["pnl"] != sv["result"]["pnl"]  # the view changed what was traded
    assert sv["adjustment"]["view"] == "total_return" and ss["adjustment"]["view"] == "splits"
    used = sv["adjustment"]["instruments"]["AAPL.NASDAQ"]["factors"]
    assert used["version"] == 1 and used["dividends"] == 1  # 2024-02-09 is before the stored range
    assert "x dividend factors v1" in viewed.stderr
    assert "prices: data.adjust=total_return (AAPL.NASDAQ factors v1)" in viewed.stdout
    assert np.array_equal(Catalog(a).read(BT).close, raw.close)  # stored bars never changed


def test_adjust_none_shows_the_prices_as_traded_through_a_recorded_split(run_script, tmp_path):
    from ntrader.backtest.data import check_and_load
    from ntrader.backtest.spec import BacktestSpec, StrategySpec

    root = tmp_path / "catalog"
    clock = Clock(evening("2024-06-07"))
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT]) as sim:
        assert fetch(run_script, sim, root, "2024-06-03", "2024-06-07").code == 0
        clock.set(evening("2024-06-10"))  # the nightly fetch pins the split date
        assert fetch(run_script, sim, root, "2024-06-10", "2024-06-10").code == 0
        clock.set(evening("2024-06-14"))
        assert fetch(run_script, sim, root, "2024-06-11", "2024-06-14").code == 0
    strategy = StrategySpec("x:Y", "x:YConfig")
    truth = ground_truth(*TRUTH)
    after = truth["ts_open_ns"] >= dt.datetime(2024, 6, 10, 4).timestamp() * 1e9
    for view, volume_before in (("none", 1), ("splits", 4)):
        spec = BacktestSpec.of("AAPL", strategy, start="2024-06-03", end="2024-06-14", adjust=view)
        with check_and_load(Catalog(root), spec) as data:
            (pinned,) = data.sources.values()
            bars = [bar for chunk in pinned.chunks(700) for bar in chunk]
            assert [bar.close.as_double() for bar in bars] == list(pinned.close_px)
            assert len(pinned.bars()) == len(bars)
            summary = data.adjustment()
        closes = np.array([x.close.as_double() for x in bars])
        volumes = np.array([x.volume.as_double() for x in bars])
        np.testing.assert_array_equal(
            volumes, np.where(after, truth["volume"] * 4, truth["volume"] * volume_before)
        )
        new_scale = scaled(truth, 4, "close")
        np.testing.assert_array_equal(closes[after], new_scale[after])
        if view == "splits":
            np.testing.assert_array_equal(closes, new_scale)
        else:  # as traded, to within the rescale's rounding: ratio x half a cent
            assert np.abs(closes[~after] - truth["close"][~after]).max() <= 0.02 + 1e-9
            np.testing.assert_allclose(closes[~after], new_scale[~after] * 4, rtol=0, atol=1e-9)
        if view == "none":
            undone = summary["instruments"]["AAPL.NASDAQ"]["splits_undone"]
            assert undone == [{"ratio": "4:1", "effective_on": "2024-06-10", "source": "recorded"}]


# ------------------------------------------------------------------------------ CSV Adj Close
def yahoo_csv(path: Path, adj_scale_from: dt.date | None = None) -> np.ndarray:
    """A Yahoo-style daily export of the simulator's AAPL 2024-01-02 .. 06-28: Close as traded
    (no split), Adj Close = Close x the simulator's dividend factor as of 2024-06-28, 6 decimals.
    ``adj_scale_from``: Adj Close also divided by 4 before that day (a split Close ignores)."""
    truth = ground_truth("AAPL", dt.date(2024, 1, 2), dt.date(2024, 6, 28), bar_minutes=1440)
    days = local_dates(truth["ts_open_ns"], "America/New_York")
    f = truth_factors(days, dt.date(2024, 6, 28))
    if adj_scale_from is not None:
        f = np.where(days < np.datetime64(adj_scale_from), f / 4, f)
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for i, d in enumerate(days):
        o, h, lo, c = (truth[k][i] for k in ("open", "high", "low", "close"))
        lines.append(f"{d},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{c * f[i]:.6f},{truth['volume'][i]}")
    path.write_text("\n".join(lines) + "\n")
    return days


def test_import_with_adj_close_stores_the_dividend_factors(run_script, tmp_path):
    root, csv_path = tmp_path / "catalog", tmp_path / "AAPL.csv"
    days = yahoo_csv(csv_path)
    args = (f"catalog.path={root}", f"csv.path={csv_path}", "symbol=AAPL", "bars=daily")
    r = run_script("import_csv", *args)
    assert r.code == 0, r.stderr
    f = load_factors(Catalog(root), "AAPL.NASDAQ")
    assert f is not None and f.version == 1 and f.source == "csv: AAPL.csv Adj Close"
    assert [(d.ex_date, d.amount, d.exact) for d in f.dividends] == [
        (dt.date(2024, 2, 9), 0.24, True),
        (dt.date(2024, 5, 10), 0.25, True),
    ]
    np.testing.assert_allclose(
        f.factor_on(days), truth_factors(days, dt.date(2024, 6, 28)), rtol=1e-12
    )
    assert (
        "dividend factors from Adj Close: v1 (new version; 2 dividend(s) in 2024-01-02 .. "
        "2024-06-28)" in r.stdout
    )
    again = run_script("import_csv", *args)
    assert again.code == 0 and "v1 (unchanged" in again.stdout
    assert versions(Catalog(root), "AAPL.NASDAQ") == [1]


def test_an_adj_close_with_a_split_step_is_refused_and_nothing_is_written(run_script, tmp_path):
    root, csv_path = tmp_path / "catalog", tmp_path / "AAPL.csv"
    yahoo_csv(csv_path, adj_scale_from=dt.date(2024, 4, 1))
    r = run_script(
        "import_csv", f"catalog.path={root}", f"csv.path={csv_path}", "symbol=AAPL", "bars=daily"
    )
    assert r.code == 2, r.stderr
    assert "Adj Close / Close steps by 0.2500 on 2024-04-01: no dividend does that" in r.stderr
    assert not (root / "data").exists() or not list((root / "data").rglob("*.parquet"))
    assert not (root / ".ntrader" / "factors").exists()


def test_the_backtest_refuses_a_view_it_cannot_give(run_script, tmp_path):
    """total_return without factors / beyond them; none across a split of unknown date —
    each a clear exit 1 naming the fix; data.splits names the date and the run goes ahead."""
    import datetime as _dt
    from fractions import Fraction

    from ntrader.catalog.corporate import SplitEvent, record_event

    root, csv_path = tmp_path / "catalog", tmp_path / "AAPL.csv"
    yahoo_csv(csv_path)
    plain = tmp_path / "plain.csv"  # the same bars without the Adj Close column
    plain.write_text(
        "\n".join(
            ",".join(x for i, x in enumerate(line.split(",")) if i != 5)
            for line in csv_path.read_text().splitlines()
        )
        + "\n"
    )
    assert (
        run_script(
            "import_csv", f"catalog.path={root}", f"csv.path={plain}", "symbol=AAPL", "bars=daily"
        ).code
        == 0
    )
    bt = (
        "backtest",
        f"catalog.path={root}",
        "symbol=AAPL",
        *DAILY_BACKTEST,
        "dates.start=2024-01-02",
        "dates.end=2024-06-28",
    )
    r = run_script(*bt, "data.adjust=total_return")
    assert r.code == 1
    assert "AAPL.NASDAQ: data.adjust=total_return needs dividend factors" in r.stderr
    assert 'ARGS="corporate_actions.dividends=true"' in r.stderr
    bad = run_script(*bt, "data.adjust=dividends")
    assert bad.code == 2 and "data.adjust must be one of none, splits, total_return" in bad.stderr

    # factors over part of the range only
    head = csv_path.read_text().splitlines()
    part = tmp_path / "part.csv"
    part.write_text("\n".join(head[:60]) + "\n")
    assert (
        run_script(
            "import_csv",
            f"catalog.path={root}",
            f"csv.path={part}",
            "symbol=AAPL",
            "bars=daily",
            "mode=merge",
        ).code
        == 0
    )
    short = run_script(*bt, "data.adjust=total_return")
    assert short.code == 1 and "the dividend factors (v1, computed" in short.stderr
    assert "the backtest reads 2024-01-02 .. 2024-06-28" in short.stderr

    record_event(
        Catalog(root),
        SplitEvent(
            "AAPL.NASDAQ",
            Fraction(4),
            _dt.date(2024, 3, 1),
            _dt.date(2024, 3, 15),
            _dt.datetime(2024, 3, 15, tzinfo=_dt.UTC),
            "test",
            "rescale",
            {},
            False,
        ),
    )
    unknown = run_script(*bt, "data.adjust=none")
    assert unknown.code == 1
    assert "must undo the split 4:1 recorded after 2024-03-01, by 2024-03-15" in unknown.stderr
    assert 'data.splits=["AAPL:YYYY-MM-DD:4"]' in unknown.stderr
    named = run_script(
        *bt, "data.adjust=none", "data.splits=[AAPL:2024-03-11:4]", "strategy.params.trade_size=10"
    )
    assert named.code == 0, named.stderr
    undone = named.summary()["adjustment"]["instruments"]["AAPL.NASDAQ"]["splits_undone"]
    assert undone == [{"ratio": "4:1", "effective_on": "2024-03-11", "source": "data.splits"}]
    assert (
        "data.adjust=none undoes the splits ntrader recorded or data.splits lists: AAPL.NASDAQ "
        "4:1 on 2024-03-11" in named.stderr
    )
