"""The data-health findings of ``make report``: ``make check``'s health checks
(:func:`ntrader.quality.health.check_health`) over every bar type of the report, one finding per
bar type, kind and session, so the page can link each one to its heatmap cell.

The counts are the checks' own: summed over a bar type's sessions, a kind's findings add up to the
count ``make check SYMBOL=… FORMAT=json`` reports for it (a zero-volume run counts once, on the
session it starts in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from ntrader.catalog.barframe import BarFrame
from ntrader.quality.coverage import OfBarType
from ntrader.quality.health import KINDS, HealthOptions, check_health
from ntrader.quality.splits import find_possible_splits
from ntrader.sessions import calendar_for_venue, calendar_timezone, local_dates
from ntrader.symbols import instrument_of

DETAIL = {
    "ohlc_inconsistent": "{n} bar(s) with high < max(open, close), low > min(open, close) or "
    "high < low",
    "non_positive_price": "{n} bar(s) with a price <= 0 or not finite",
    "duplicate_timestamp": "{n} bar(s) repeat the ts_event of another bar",
    "non_monotonic": "{n} bar(s) earlier than the bar before them",
    "jump": "{n} bar(s) whose open or close moved more than {jump:.0%} from the previous close",
    "zero_volume_run": "{n} run(s) of >= {zero} consecutive zero-volume bars",
}


@dataclass(frozen=True)
class Finding(OfBarType):
    bar_type: str
    kind: str  # one of ntrader.quality.health.KINDS
    session: dt.date  # the exchange-local session date of its bars
    count: int
    first_ts: int  # ts_event (ns) of its first bar
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "session": self.session.isoformat()}


def bar_type_findings(bar_type: str, bars: BarFrame, options: HealthOptions) -> list[Finding]:
    """The findings of one bar series, by kind (``KINDS`` order), then session."""
    tz = calendar_timezone(calendar_for_venue(instrument_of(bar_type).rsplit(".", 1)[1]))
    # every offending bar (max_examples): they are grouped by session here
    issues = check_health(bars, **options.thresholds(), tz=tz, max_examples=max(1, len(bars)))
    out: list[Finding] = []
    for issue in issues:
        if issue.kind == "possible_split":
            out += _splits(bar_type, bars, options, tz)
            continue
        ts = np.asarray(issue.examples, dtype=np.int64)
        if issue.kind == "duplicate_timestamp":  # examples: the distinct values; count: rows
            ts = _repeats(np.asarray(bars.ts_event, dtype=np.int64))
        days = local_dates(ts - 1, tz)  # a bar's session: the local date of its close - 1 ns
        uniq, first, counts = np.unique(days, return_index=True, return_counts=True)
        for day, i, n in zip(uniq.tolist(), first.tolist(), counts.tolist(), strict=True):
            text = DETAIL[issue.kind].format(
                n=n, jump=options.jump_threshold, zero=options.zero_volume_run
            )
            out.append(Finding(bar_type, issue.kind, day, int(n), int(ts[i]), text))
    return out


def _repeats(ts: np.ndarray) -> np.ndarray:
    """The ts_event of each bar that repeats an earlier bar's (as check_health counts them)."""
    s = np.sort(ts, kind="stable")
    return s[1:][s[1:] == s[:-1]]


def _splits(bar_type: str, bars: BarFrame, options: HealthOptions, tz: str) -> list[Finding]:
    arrays = (np.asarray(x, dtype=np.float64) for x in (bars.open, bars.close, bars.volume))
    ts = np.asarray(bars.ts_event, dtype=np.int64)
    splits = find_possible_splits(ts, *arrays, tolerance=options.split_tolerance)
    return [
        Finding(bar_type, "possible_split", s.day(tz), 1, s.ts_event, s.describe(tz))
        for s in splits
    ]


def health_findings(
    bar_types: Iterable[str],
    read: Callable[[str], BarFrame],
    options: HealthOptions | None = None,
) -> list[Finding]:
    """Every finding of ``bar_types`` (``read(bt)``: its bars over the report's range), sorted by
    bar type, session and kind."""
    opts = options or HealthOptions()
    found: list[Finding] = []
    for bt in bar_types:
        found += bar_type_findings(bt, read(bt), opts)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(found, key=lambda f: (f.bar_type, f.session, order[f.kind]))
