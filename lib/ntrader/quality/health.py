"""Data health of one bar series: OHLC consistency, prices, timestamps, jumps, possible splits,
dead volume.

Every check is vectorized over the BarFrame's numpy columns and works on the rows in the order
given (a series with ``non_monotonic`` issues is still checked bar-to-bar as stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ntrader.catalog.barframe import BarFrame
from ntrader.errors import InputError
from ntrader.quality.splits import DEFAULT_TOLERANCE, find_possible_splits

KINDS = (
    "ohlc_inconsistent",
    "non_positive_price",
    "duplicate_timestamp",
    "non_monotonic",
    "jump",
    "possible_split",
    "zero_volume_run",
)


@dataclass(frozen=True)
class HealthIssue:
    kind: str
    count: int
    examples: list[int]  # ts_event ns of the first offending bars
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class HealthOptions:
    """The ``health.*`` settings of ``make check`` (``conf/scan.yaml``), checked."""

    jump_threshold: float = 0.10
    zero_volume_run: int = 30
    split_tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if not (self.jump_threshold > 0 and self.zero_volume_run >= 1):
            raise InputError("health.zero_volume_run must be >= 1, health.jump_threshold > 0")
        if not 0 < self.split_tolerance < 0.2:
            raise InputError(
                f"health.split_tolerance={self.split_tolerance} is out of range",
                hint="a fraction between 0 and 0.2 (0.08 = within 8 % of a split ratio)",
            )

    def thresholds(self) -> dict[str, Any]:
        """As :func:`check_health` keywords."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, cfg: Mapping[str, Any]) -> HealthOptions:
        """From a config mapping; a value that is not a number is an InputError."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in cfg:
                kind = int if f.name == "zero_volume_run" else float
                try:
                    values[f.name] = kind(cfg[f.name])
                except (TypeError, ValueError):
                    raise InputError(f"health.{f.name}={cfg[f.name]!r} is not a number") from None
        return cls(**values)


def _examples(ts: np.ndarray, mask_or_index: np.ndarray, max_examples: int) -> list[int]:
    picked = ts[mask_or_index]
    return [int(x) for x in picked[:max_examples]]


def check_health(
    bars: BarFrame,
    *,
    jump_threshold: float = 0.10,
    zero_volume_run: int = 30,
    split_tolerance: float = DEFAULT_TOLERANCE,
    tz: str | None = None,
    max_examples: int = 5,
) -> list[HealthIssue]:
    """Every data-health issue of ``bars``, in the order of ``KINDS``; [] for clean data.

    * ``ohlc_inconsistent``: high < max(open, close), low > min(open, close) or high < low;
    * ``non_positive_price``: any of open/high/low/close <= 0 or not finite;
    * ``duplicate_timestamp``: count = rows whose ts_event repeats an earlier row's;
    * ``non_monotonic``: count = rows whose ts_event is before the previous row's;
    * ``jump``: bars whose close or open moved more than ``jump_threshold`` (a fraction) from
      the previous bar's close, except possible splits;
    * ``possible_split``: session boundaries whose price ratio is within ``split_tolerance`` of a
      split ratio with the volume moving inversely (:mod:`ntrader.quality.splits`); each named
      "possible split on D (ratio R)", D in ``tz`` (default UTC);
    * ``zero_volume_run``: runs of >= ``zero_volume_run`` consecutive zero-volume bars;
      count = number of runs, examples = first bar of each run.
    """
    issues: list[HealthIssue] = []
    n = len(bars)
    if n == 0:
        return issues
    ts = np.asarray(bars.ts_event, dtype=np.int64)
    o, h, lo, c = (
        np.asarray(x, dtype=np.float64) for x in (bars.open, bars.high, bars.low, bars.close)
    )
    v = np.asarray(bars.volume, dtype=np.float64)

    with np.errstate(invalid="ignore", divide="ignore"):
        bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
    if bad.any():
        issues.append(
            HealthIssue(
                "ohlc_inconsistent",
                int(bad.sum()),
                _examples(ts, bad, max_examples),
                f"{int(bad.sum())} bars with high < max(open, close), low > min(open, close) "
                "or high < low",
            )
        )

    prices = np.stack([o, h, lo, c])
    with np.errstate(invalid="ignore"):
        non_pos = ~(np.isfinite(prices) & (prices > 0)).all(axis=0)
    if non_pos.any():
        k = int(non_pos.sum())
        issues.append(
            HealthIssue(
                "non_positive_price",
                k,
                _examples(ts, non_pos, max_examples),
                f"{k} bars with a price <= 0 or not finite",
            )
        )

    order = np.argsort(ts, kind="stable")
    sorted_ts = ts[order]
    dup_sorted = np.concatenate(([False], sorted_ts[1:] == sorted_ts[:-1]))
    if dup_sorted.any():
        k = int(dup_sorted.sum())
        dup_values = np.unique(sorted_ts[dup_sorted])
        issues.append(
            HealthIssue(
                "duplicate_timestamp",
                k,
                [int(x) for x in dup_values[:max_examples]],
                f"{k} bars repeat the ts_event of another bar "
                f"({dup_values.size} distinct timestamps)",
            )
        )

    back = np.concatenate(([False], ts[1:] < ts[:-1]))
    if back.any():
        k = int(back.sum())
        issues.append(
            HealthIssue(
                "non_monotonic",
                k,
                _examples(ts, back, max_examples),
                f"{k} bars have a ts_event earlier than the bar before them",
            )
        )

    splits = find_possible_splits(ts, o, c, v, tolerance=split_tolerance)
    split_at = np.isin(ts, [p.ts_event for p in splits])
    if n > 1:
        prev = c[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            valid = np.isfinite(prev) & (prev > 0)
            r_close = np.abs(c[1:] / prev - 1.0)
            r_open = np.abs(o[1:] / prev - 1.0)
            jumped = valid & ((r_close > jump_threshold) | (r_open > jump_threshold))
        jump = np.concatenate(([False], jumped)) & ~split_at
        if jump.any():
            k = int(jump.sum())
            issues.append(
                HealthIssue(
                    "jump",
                    k,
                    _examples(ts, jump, max_examples),
                    f"{k} bars whose open or close moved more than {jump_threshold:.0%} "
                    "from the previous close",
                )
            )

    if splits:
        listed = "; ".join(p.describe(tz) for p in splits[:max_examples])
        more = f" and {len(splits) - max_examples} more" if len(splits) > max_examples else ""
        issues.append(
            HealthIssue(
                "possible_split",
                len(splits),
                [p.ts_event for p in splits[:max_examples]],
                listed + more + " — prices before it are in another scale",
            )
        )

    if zero_volume_run >= 1:
        zero = (v == 0).astype(np.int8)
        edges = np.diff(np.concatenate(([0], zero, [0])))
        run_start = np.flatnonzero(edges == 1)
        run_len = np.flatnonzero(edges == -1) - run_start
        long_runs = run_start[run_len >= zero_volume_run]
        if long_runs.size:
            k = int(long_runs.size)
            longest = int(run_len.max())
            issues.append(
                HealthIssue(
                    "zero_volume_run",
                    k,
                    _examples(ts, long_runs, max_examples),
                    f"{k} runs of >= {zero_volume_run} consecutive zero-volume bars "
                    f"(longest {longest})",
                )
            )
    return issues
