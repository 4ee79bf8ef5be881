"""Split-like moves in one bar series: an overnight price ratio close to a split ratio, with the
volume moving inversely.

A forward split N:1 divides the price by N and multiplies the volume by about N from one session
to the next; a reverse split 1:N the other way. So at each session boundary (a pause of more than
``boundary`` between two bars: the night for intraday bars, every bar for daily ones) the ratio
*previous close / next open* is compared with :data:`SPLIT_RATIOS`; within ``tolerance`` (a
fraction, 8 % by default — an ordinary overnight move on the day of a split) it is a candidate,
and it is reported when the median session volume of the ``window`` (10) sessions after the
boundary against the 10 before moved at least halfway (geometrically) the other way: volume
ratio >= sqrt(N) for N:1. A series without volume is judged on the price alone (said so).

Ordinary earnings gaps (10–20 %) are below the smallest ratio listed (3:2, a 33 % fall), and a
holiday is just a longer boundary. The ratios are the catalog's (``ntrader.catalog.corporate``).
NumPy only: used by ``make check`` (no NautilusTrader).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np

from ntrader.catalog.corporate import SPLIT_RATIOS as SPLIT_RATIOS
from ntrader.catalog.corporate import nearest_split_ratio, ratio_label

DEFAULT_TOLERANCE = 0.08
BOUNDARY_NS = 4 * 3600 * 10**9  # a pause longer than this between two bars ends a session
WINDOW = 10  # sessions of volume compared on each side (medians)
_RATIOS = np.array([float(r) for r in SPLIT_RATIOS])


@dataclass(frozen=True)
class PossibleSplit:
    ts_event: int  # the first bar after the boundary
    ratio: Fraction  # price before / price after, as a split ratio: 4 for 4:1, 1/10 for 1:10
    price_ratio: float  # measured previous close / next open
    volume_ratio: float | None  # median session volume after / before (None: no volume)

    @property
    def label(self) -> str:
        """``4:1``, ``3:2``, ``1:10``: new shares for old."""
        return ratio_label(self.ratio)

    def day(self, tz: str | None = None) -> dt.date:
        when = dt.datetime.fromtimestamp(self.ts_event / 1e9, ZoneInfo(tz or "UTC"))
        return when.date()

    def describe(self, tz: str | None = None) -> str:
        vol = (
            "no volume to confirm"
            if self.volume_ratio is None
            else f"volume x{self.volume_ratio:.2g}"
        )
        return (
            f"possible split on {self.day(tz)} (ratio {self.label}: close/open "
            f"{self.price_ratio:.3g}, {vol})"
        )


def find_possible_splits(
    ts: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    boundary_ns: int = BOUNDARY_NS,
    window: int = WINDOW,
) -> list[PossibleSplit]:
    """Every split-like boundary of a series sorted by ``ts`` (see the module doc)."""
    n = len(ts)
    if n < 2:
        return []
    ts = np.asarray(ts, dtype=np.int64)
    o, c = np.asarray(open_, dtype=np.float64), np.asarray(close, dtype=np.float64)
    v = np.nan_to_num(np.asarray(volume, dtype=np.float64), nan=0.0)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ts) > boundary_ns) + 1))
    if len(starts) < 2:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = c[starts[1:] - 1] / o[starts[1:]]
    session_volume = np.add.reduceat(v, starts)
    # Only a boundary within tolerance of some split ratio can be one (vectorised; most are
    # ordinary nights): nearest_split_ratio, exact in Fractions, decides for those alone.
    near = np.zeros(ratios.size, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for split_ratio in _RATIOS:
            near |= np.abs(ratios / split_ratio - 1.0) <= tolerance + 1e-9
    found: list[PossibleSplit] = []
    for k in np.flatnonzero(near).tolist():
        r = float(ratios[k])
        k += 1  # the session after the boundary
        split = nearest_split_ratio(r, tolerance)
        if split is None:
            continue
        before = session_volume[max(0, k - window) : k]
        after = session_volume[k : k + window]
        vb, va = float(np.median(before)), float(np.median(after))
        if vb <= 0 or va <= 0:
            vr = None  # no volume (or none on one side): judged on the price alone
        else:
            vr = va / vb
            inverse = vr >= math.sqrt(split) if split > 1 else vr <= math.sqrt(split)
            if not inverse:
                continue
        found.append(PossibleSplit(int(ts[starts[k]]), split, r, vr))
    return found
