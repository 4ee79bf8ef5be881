"""BarFrame: the column form of one bar type's bars that flows between ntrader modules.

Columns are numpy arrays of equal length. Prices and volumes are float64 holding values that are
exact at ``price_precision`` / ``size_precision`` decimals (``rint(x * 10**p)`` is the integer).
``ts_event`` is the bar CLOSE in UTC nanoseconds (int64), strictly increasing once validated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ntrader.errors import InputError

COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class BarFrame:
    ts_event: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    price_precision: int
    size_precision: int

    def __len__(self) -> int:
        return int(self.ts_event.shape[0])

    @property
    def first_ns(self) -> int:
        return int(self.ts_event[0])

    @property
    def last_ns(self) -> int:
        return int(self.ts_event[-1])

    def take(self, index: np.ndarray | slice) -> BarFrame:
        """Rows selected by an integer index or boolean mask, in that order."""
        return BarFrame(
            self.ts_event[index],
            self.open[index],
            self.high[index],
            self.low[index],
            self.close[index],
            self.volume[index],
            self.price_precision,
            self.size_precision,
        )

    @staticmethod
    def empty(price_precision: int = 2, size_precision: int = 0) -> BarFrame:
        f = np.empty(0, dtype=np.float64)
        return BarFrame(np.empty(0, dtype=np.int64), f, f, f, f, f, price_precision, size_precision)

    @staticmethod
    def concat(frames: list[BarFrame]) -> BarFrame:
        """Concatenate frames (no sorting); precision is the maximum of the parts."""
        frames = [f for f in frames if len(f)] or frames[:1]
        if not frames:
            return BarFrame.empty()
        return BarFrame(
            np.concatenate([f.ts_event for f in frames]),
            np.concatenate([f.open for f in frames]),
            np.concatenate([f.high for f in frames]),
            np.concatenate([f.low for f in frames]),
            np.concatenate([f.close for f in frames]),
            np.concatenate([f.volume for f in frames]),
            max(f.price_precision for f in frames),
            max(f.size_precision for f in frames),
        )


def random_walk_frame(
    ts_event: np.ndarray, *, seed: int, start_price: float = 180.0, vol: float = 0.0008
) -> BarFrame:
    """Synthetic bars for tests and benchmarks: a geometric random walk of closes at 2 decimals,
    open = previous close, valid OHLC (low <= open, close <= high), integer volume."""
    n = len(ts_event)
    rng = np.random.default_rng(seed)
    close = np.round(start_price * np.exp(np.cumsum(rng.normal(0.0, vol, n))), 2)
    open_ = np.r_[close[:1], close[:-1]]
    wick = np.round(rng.uniform(0.0, 0.05, n), 2) + 0.01
    high = np.round(np.maximum(open_, close) + wick, 2)
    low = np.round(np.minimum(open_, close) - wick, 2)
    volume = rng.integers(100, 5_000, n).astype(np.float64)
    return BarFrame(ts_event.astype(np.int64), open_, high, low, close, volume, 2, 0)


def at_price_precision(frame: BarFrame, precision: int, owner: str, what: str) -> BarFrame:
    """``frame`` stored at ``precision`` decimals (``owner``'s, e.g. the catalog's instrument);
    refuses data finer than that (``what`` names the bar type in the error)."""
    p = int(precision)
    if frame.price_precision > p:
        prices = np.concatenate([frame.open, frame.high, frame.low, frame.close])
        if not np.array_equal(np.round(prices, p), prices):
            raise InputError(
                f"prices for {what} have {frame.price_precision} decimals but {owner} "
                f"in the catalog has price precision {p}",
                hint="round the data to the instrument's precision, or re-create the instrument",
            )
    return BarFrame(
        frame.ts_event,
        frame.open,
        frame.high,
        frame.low,
        frame.close,
        frame.volume,
        p,
        frame.size_precision,
    )
