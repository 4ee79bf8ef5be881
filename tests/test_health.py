"""check_health: each issue kind detected with exact counts and examples; clean data -> []."""

from __future__ import annotations

import numpy as np
import pytest

from ntrader.catalog.barframe import BarFrame
from ntrader.quality.health import KINDS, HealthIssue, check_health

MIN = 60_000_000_000
T0 = 1_717_421_460_000_000_000  # 2024-06-03 13:31 UTC (09:31 New York)


def clean(n: int = 200) -> BarFrame:
    """A well-formed random walk with small moves and positive volume."""
    rng = np.random.default_rng(7)
    close = 100.0 * np.cumprod(1.0 + rng.uniform(-0.002, 0.002, n))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) + 0.05
    low = np.minimum(open_, close) - 0.05
    volume = rng.integers(1, 1000, n).astype(np.float64)
    ts = T0 + MIN * np.arange(n, dtype=np.int64)
    return BarFrame(ts, open_, high, low, close, volume, 2, 0)


def modified(bars: BarFrame, **columns: np.ndarray) -> BarFrame:
    cols = {
        name: getattr(bars, name).copy()
        for name in ("ts_event", "open", "high", "low", "close", "volume")
    }
    cols.update(columns)
    return BarFrame(**cols, price_precision=2, size_precision=0)


def only(issues: list[HealthIssue], kind: str) -> HealthIssue:
    assert [i.kind for i in issues] == [kind]
    return issues[0]


def test_clean_data_has_no_issues() -> None:
    assert check_health(clean()) == []
    assert check_health(BarFrame.empty()) == []
    assert check_health(clean(1)) == []


def test_ohlc_inconsistent() -> None:
    b = clean()
    high, low = b.high.copy(), b.low.copy()
    high[10] = max(b.open[10], b.close[10]) - 0.01  # high below the body
    low[20] = min(b.open[20], b.close[20]) + 0.01  # low above the body
    high[30], low[30] = low[30] - 0.5, high[30]  # high < low (and both wrong)
    issue = only(check_health(modified(b, high=high, low=low)), "ohlc_inconsistent")
    assert issue.count == 3
    assert issue.examples == [int(b.ts_event[i]) for i in (10, 20, 30)]
    assert "3 bars" in issue.message


def test_non_positive_price() -> None:
    b = clean()
    o, lo = b.open.copy(), b.low.copy()
    lo[5] = 0.0
    o[6] = lo[6] = -1.0
    lo[7] = np.nan
    issues = check_health(modified(b, open=o, low=lo), jump_threshold=1e9)
    issue = only(issues, "non_positive_price")
    assert issue.count == 3
    assert issue.examples == [int(b.ts_event[i]) for i in (5, 6, 7)]


def test_duplicate_timestamp() -> None:
    b = clean()
    ts = b.ts_event.copy()
    ts[51] = ts[50]
    ts[52] = ts[50]  # three rows share one timestamp -> 2 duplicates
    ts[101] = ts[100]
    issues = check_health(modified(b, ts_event=ts))
    issue = only(issues, "duplicate_timestamp")
    assert issue.count == 3
    assert issue.examples == [int(ts[50]), int(ts[100])]


def test_non_monotonic() -> None:
    b = clean()
    ts = b.ts_event.copy()
    ts[[40, 41]] = ts[[41, 40]]  # one swap -> one step back
    ts[150] = ts[10]  # goes back in time and duplicates row 10
    issues = check_health(modified(b, ts_event=ts))
    assert [i.kind for i in issues] == ["duplicate_timestamp", "non_monotonic"]
    dup, back = issues
    assert (dup.count, dup.examples) == (1, [int(ts[10])])
    assert back.count == 2
    assert back.examples == [int(ts[41]), int(ts[150])]


def test_jump_on_close_and_on_open() -> None:
    b = clean()
    o, h, lo, c = b.open.copy(), b.high.copy(), b.low.copy(), b.close.copy()
    # Close jumps +20 % at bar 60 and the series continues from there (bar 61 opens there).
    c[60:] *= 1.2
    o[61:] *= 1.2
    h[60:] *= 1.2
    lo[61:] *= 1.2
    lo[60] = min(o[60], c[60]) - 0.05
    # Bar 120 opens 15 % below the previous close (a gap down) and closes back near it.
    o[120] = c[119] * 0.85
    lo[120] = o[120] - 0.05
    issue = only(check_health(modified(b, open=o, high=h, low=lo, close=c)), "jump")
    assert issue.count == 2
    assert issue.examples == [int(b.ts_event[60]), int(b.ts_event[120])]
    assert "10%" in issue.message
    # A higher threshold accepts both moves.
    assert check_health(modified(b, open=o, high=h, low=lo, close=c), jump_threshold=0.25) == []


def test_zero_volume_runs() -> None:
    b = clean(300)
    v = b.volume.copy()
    v[10:40] = 0  # 30: a run
    v[50:79] = 0  # 29: too short
    v[100:200] = 0  # 100: a run
    v[299] = 0  # 1 at the end
    issue = only(check_health(modified(b, volume=v)), "zero_volume_run")
    assert issue.count == 2
    assert issue.examples == [int(b.ts_event[10]), int(b.ts_event[100])]
    assert "longest 100" in issue.message
    assert (
        only(check_health(modified(b, volume=v), zero_volume_run=29), "zero_volume_run").count == 3
    )
    v[260:300] = 0  # a run that reaches the last bar
    assert only(check_health(modified(b, volume=v)), "zero_volume_run").count == 3


def test_max_examples_and_kind_order() -> None:
    b = clean()
    lo, v, ts = b.low.copy(), b.volume.copy(), b.ts_event.copy()
    lo[:12] = -1.0  # 12 non-positive lows, also low < min(open, close) is fine for OHLC
    v[100:140] = 0
    ts[190] = ts[189]
    issues = check_health(modified(b, low=lo, volume=v, ts_event=ts), max_examples=3)
    assert [i.kind for i in issues] == [
        "non_positive_price",
        "duplicate_timestamp",
        "zero_volume_run",
    ]
    assert issues[0].count == 12
    assert issues[0].examples == [int(t) for t in b.ts_event[:3]]
    assert all(i.kind in KINDS for i in issues)


@pytest.mark.parametrize("n", [2, 10_000])
def test_everything_at_once(n: int) -> None:
    b = clean(n)
    o, h, ts = b.open.copy(), b.high.copy(), b.ts_event.copy()
    h[1] = -5.0  # non-positive and high < low and high < body
    ts[0] = ts[1]  # duplicate (and not a step back: equal)
    v = np.zeros(n)
    issues = check_health(modified(b, open=o, high=h, ts_event=ts, volume=v), zero_volume_run=2)
    assert [(i.kind, i.count) for i in issues] == [
        ("ohlc_inconsistent", 1),
        ("non_positive_price", 1),
        ("duplicate_timestamp", 1),
        ("zero_volume_run", 1),
    ]
