"""Split-like jumps (issue 14 §3): ``make check`` names a possible split with its date and ratio,
separately from ordinary jumps, and flags nothing on a year of ordinary overnight moves, 10–20 %
earnings gaps with volume spikes, and holidays."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.corporate import nearest_split_ratio
from ntrader.errors import InputError
from ntrader.quality.health import HealthOptions, check_health
from ntrader.quality.splits import find_possible_splits
from ntrader.sessions import expected_bar_closes, sessions_between

from .test_scan import write

HALF_HOUR = 30 * 60_000_000_000
TZ = "America/New_York"
EARNINGS = {  # session -> overnight move (10-20 %), each with a volume spike
    dt.date(2023, 2, 2): 0.14,
    dt.date(2023, 4, 27): -0.18,
    dt.date(2023, 7, 27): 0.11,
    dt.date(2023, 10, 26): -0.20,
}


def year(
    split_day: dt.date | None = None,
    ratio: float = 4.0,
    *,
    daily: bool = False,
    volume: bool = True,
    seed: int = 3,
) -> BarFrame:
    """2023 on XNYS (30-minute RTH bars, or daily): overnight moves ~1.5 %, the earnings gaps
    above, volume x3 on their day; before ``split_day`` prices x ``ratio`` and volume / ratio, as
    bars fetched before an N:1 split are."""
    rng = np.random.default_rng(seed)
    sessions = sessions_between("XNYS", dt.date(2023, 1, 3), dt.date(2023, 12, 29))
    ts = expected_bar_closes(sessions, HALF_HOUR)  # 13 a session, 7 on the half days
    days = pd.DatetimeIndex(ts, tz="UTC").tz_convert(TZ).date
    last = np.concatenate((days[1:] != days[:-1], [True]))
    if daily:  # one bar per session, at its close
        ts, days = ts[last], days[last]
    first = np.concatenate(([True], days[1:] != days[:-1]))
    assert first.sum() == len(sessions) == 250
    move = rng.normal(0, 0.002, len(ts))
    move[first] = rng.normal(0, 0.015, int(first.sum()))
    vol = rng.uniform(5e4, 1.5e5, len(ts))
    for d, gap in EARNINGS.items():
        i = np.flatnonzero(days == d)
        move[i[0]] = gap
        vol[i] *= 3
    gap = np.where(first, move, 0.0)  # open = previous close x (1 + overnight move)
    body = np.where(first, rng.normal(0, 0.002, len(ts)), move)
    close = 50.0 * np.cumprod((1 + gap) * (1 + body))
    open_ = close / (1 + body)
    if split_day is not None:
        before = days < split_day
        scale = np.where(before, ratio, 1.0)
        close, open_ = close * scale, open_ * scale
        vol = np.where(before, vol / ratio, vol)
    if not volume:
        vol = np.zeros(len(ts))
    px = np.round(np.stack([open_, close]), 2)
    high, low = px.max(axis=0) + 0.01, px.min(axis=0) - 0.01
    return BarFrame(ts, px[0], high, low, px[1], np.round(vol), 2, 0)


def kinds(issues) -> dict[str, object]:
    return {i.kind: i for i in issues}


def test_a_year_of_earnings_gaps_and_holidays_has_no_possible_split() -> None:
    for daily in (False, True):
        issues = kinds(check_health(year(daily=daily), tz=TZ))
        assert "possible_split" not in issues
        assert issues["jump"].count >= len(EARNINGS)  # the gaps are there, as ordinary jumps


@pytest.mark.parametrize(
    ("ratio", "label"), [(4.0, "4:1"), (2.0, "2:1"), (1.5, "3:2"), (0.1, "1:10"), (20.0, "20:1")]
)
@pytest.mark.parametrize("daily", [False, True])
def test_a_split_is_named_with_its_day_and_ratio(ratio: float, label: str, daily: bool) -> None:
    day = dt.date(2023, 8, 21)
    bars = year(day, ratio, daily=daily)
    issues = kinds(check_health(bars, tz=TZ))
    split = issues["possible_split"]
    assert split.count == 1
    assert f"possible split on {day} (ratio {label}" in split.message
    local_days = pd.DatetimeIndex(bars.ts_event, tz="UTC").tz_convert(TZ).date
    first_after = int(bars.ts_event[np.flatnonzero(local_days >= day)[0]])
    assert split.examples == [first_after]
    assert first_after not in issues["jump"].examples  # not also an ordinary jump
    assert issues["jump"].count == kinds(check_health(year(daily=daily), tz=TZ))["jump"].count


def test_a_price_fall_without_the_inverse_volume_is_an_ordinary_jump() -> None:
    bars = year(dt.date(2023, 8, 21), 2.0)
    v = bars.volume.copy()
    after = pd.DatetimeIndex(bars.ts_event, tz="UTC").tz_convert(TZ).date >= dt.date(2023, 8, 21)
    v[after] /= 2.0  # volume falls with the price: a crash, not a split
    crash = BarFrame(bars.ts_event, bars.open, bars.high, bars.low, bars.close, v, 2, 0)
    issues = kinds(check_health(crash, tz=TZ))
    assert "possible_split" not in issues
    assert issues["jump"].count == kinds(check_health(year(), tz=TZ))["jump"].count + 1


def test_without_volume_the_price_alone_is_judged_and_said() -> None:
    issues = kinds(check_health(year(dt.date(2023, 8, 21), 4.0, volume=False), tz=TZ))
    assert issues["possible_split"].count == 1
    assert "no volume to confirm" in issues["possible_split"].message


def test_split_ratios_and_tolerance() -> None:
    assert nearest_split_ratio(4.1, 0.08) == 4
    assert nearest_split_ratio(0.098, 0.08) == Fraction(1, 10)
    assert nearest_split_ratio(1.2, 0.08) is None  # a 17 % earnings fall
    assert nearest_split_ratio(3.5, 0.08) is None
    assert nearest_split_ratio(float("nan"), 0.08) is None
    assert find_possible_splits(np.array([1]), np.ones(1), np.ones(1), np.ones(1)) == []
    with pytest.raises(InputError):
        HealthOptions(split_tolerance=0.5)
    with pytest.raises(InputError, match="not a number"):
        HealthOptions.of({"split_tolerance": "abc"})
    assert HealthOptions.of({"jump_threshold": "0.2"}).jump_threshold == 0.2


def test_make_check_reports_the_possible_split(catalog, run_script) -> None:
    bars = year(dt.date(2023, 8, 21), 4.0)
    write(catalog, "AAPL", bars, "30-MINUTE-LAST")
    args = (f"catalog.path={catalog.root}", "symbol=AAPL", "bars.spec=30-MINUTE-LAST")
    r = run_script("scan", *args, "format=json")
    health = {h["kind"]: h for h in json.loads(r.stdout)["health"]}
    assert health["possible_split"]["count"] == 1
    assert "possible split on 2023-08-21 (ratio 4:1" in health["possible_split"]["message"]
    table = run_script("scan", *args)
    assert "possible_split: possible split on 2023-08-21 (ratio 4:1" in table.stdout
    summary = json.loads(sorted(r.runs.glob("scan/*/summary.json"))[-1].read_text())
    assert summary["counts"]["possible_splits"] == 1
    tight = run_script("scan", *args, "format=json", "health.split_tolerance=0.001")
    assert "possible_split" not in {h["kind"] for h in json.loads(tight.stdout)["health"]}
