"""Corporate actions the catalog has been through: split ratios, the split events a fetch found
and repaired, and the rescale of stored sessions to a new split scale.

IB answers TRADES bars adjusted for every split up to the moment of the request (TWS API,
"Historical data types": https://interactivebrokers.github.io/tws-api/historical_bars.html), so
bars fetched before a split are in the old scale and bars fetched after it in the new one. When a
fetch finds the stored history in an older scale (``ntrader.ibkr.verify``), the affected sessions
are rescaled here — prices / ratio at the instrument's precision, volumes x ratio — one commit
per bar type, and the event is recorded in
``<catalog>/.ntrader/corporate_actions/<INSTRUMENT_ID>.json`` (outside ``data/``: plain Nautilus
readers see only bars)::

    {"version": 1, "events": [{"kind": "split", "instrument": "AAPL.NASDAQ", "ratio": "4:1",
      "effective_after": "2024-06-07", "effective_by": "2024-06-10",
      "effective_on": "2024-06-10", "detected_at": "…",
      "detected_by": "…", "repair": "rescale", "bar_types": {"AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL":
      {"sessions": 110, "first": "2024-01-02", "last": "2024-06-07", "bars": 42900}}}]}

IB's API does not say when a split took effect: ``effective_after`` is the last session stored in
the old scale and ``effective_by`` the last session IB had data for when the change was found, so
a nightly fetch pins the date exactly (the two are consecutive sessions: ``effective_on``).

A split ratio is new shares for one old share: 4 for a 4:1 split (prices / 4, volumes x 4), 1/10
for a 1:10 reverse split. NumPy only: ``make check`` uses the ratios too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from ntrader.catalog.barframe import BarFrame
from ntrader.sessions import local_dates
from ntrader.symbols import check_bar_type_name

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog

_FORWARD = (
    Fraction(3, 2),
    *(Fraction(n) for n in (2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 30, 40, 50, 100)),
)
SPLIT_RATIOS: tuple[Fraction, ...] = _FORWARD + tuple(1 / r for r in _FORWARD)
FORMAT_VERSION = 1


def nearest_split_ratio(price_ratio: float, tolerance: float) -> Fraction | None:
    """The split ratio within ``tolerance`` (relative) of ``price_ratio``, if any."""
    if not (math.isfinite(price_ratio) and price_ratio > 0):
        return None
    best = min(SPLIT_RATIOS, key=lambda r: abs(math.log(price_ratio / r)))
    return best if abs(price_ratio / best - 1.0) <= tolerance else None


def ratio_label(ratio: Fraction) -> str:
    """``4:1``, ``3:2``, ``1:10``: new shares for old."""
    return f"{ratio.numerator}:{ratio.denominator}"


def parse_ratio_label(text: str) -> Fraction:
    num, _, den = str(text).partition(":")
    return Fraction(int(num), int(den or 1))


@dataclass(frozen=True)
class SplitEvent:
    """A split a fetch found in the stored history of one instrument, and its repair."""

    instrument: str
    ratio: Fraction
    effective_after: dt.date  # the last session stored in the old scale
    effective_by: dt.date  # IB answered in the new scale as of this session
    detected_at: dt.datetime  # tz-aware UTC
    detected_by: str  # how: which stored session differed from IB's answer by the ratio
    repair: str  # rescale | refetch
    bar_types: dict[str, dict[str, Any]] = field(default_factory=dict)  # what was repaired
    pinned: bool = False  # effective_by is the session right after effective_after: the date

    @property
    def label(self) -> str:
        return ratio_label(self.ratio)

    def effective(self) -> str:
        """``on 2024-06-10`` when pinned, else ``after 2024-03-28, by 2024-10-01``."""
        if self.pinned:
            return f"on {self.effective_by}"
        if self.effective_by <= self.effective_after:
            return f"after {self.effective_after}"
        return f"after {self.effective_after}, by {self.effective_by}"

    def describe(self) -> str:
        n = sum(int(v.get("sessions", 0)) for v in self.bar_types.values())
        done = "rescaled" if self.repair == "rescale" else "refetched"
        return (
            f"split {self.label} of {self.instrument} (effective {self.effective()}): {n:,} "
            f"stored session(s) in the old scale {done} in {len(self.bar_types)} bar type(s)"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "split",
            "instrument": self.instrument,
            "ratio": self.label,
            "effective_after": self.effective_after.isoformat(),
            "effective_by": self.effective_by.isoformat(),
            "effective_on": self.effective_by.isoformat() if self.pinned else None,
            "detected_at": self.detected_at.isoformat(),
            "detected_by": self.detected_by,
            "repair": self.repair,
            "bar_types": self.bar_types,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SplitEvent:
        return cls(
            instrument=str(d["instrument"]),
            ratio=parse_ratio_label(str(d["ratio"])),
            effective_after=dt.date.fromisoformat(str(d["effective_after"])),
            effective_by=dt.date.fromisoformat(str(d["effective_by"])),
            detected_at=dt.datetime.fromisoformat(str(d["detected_at"])),
            detected_by=str(d.get("detected_by", "")),
            repair=str(d.get("repair", "rescale")),
            bar_types=dict(d.get("bar_types") or {}),
            pinned=d.get("effective_on") is not None,
        )


def _events_path(catalog: Catalog, instrument_id: str) -> PurePath:
    check_bar_type_name(f"{instrument_id}-1-DAY-LAST-EXTERNAL")  # a hostile id never escapes
    return catalog.root / ".ntrader" / "corporate_actions" / f"{instrument_id}.json"


def load_events(catalog: Catalog, instrument_id: str) -> list[SplitEvent]:
    """The split events recorded for ``instrument_id``, oldest first."""
    text = catalog.store.read_text(_events_path(catalog, instrument_id))
    if text is None:
        return []
    data = json.loads(text)
    return [SplitEvent.from_json(e) for e in data.get("events") or [] if e.get("kind") == "split"]


def record_event(catalog: Catalog, event: SplitEvent) -> None:
    """Append ``event`` to the instrument's record (atomic replace; the fetch lock is held)."""
    events = [*load_events(catalog, event.instrument), event]
    body = {"version": FORMAT_VERSION, "events": [e.as_json() for e in events]}
    catalog.store.write_text(_events_path(catalog, event.instrument), json.dumps(body, indent=1))


def rescale_frame(frame: BarFrame, ratios: np.ndarray) -> BarFrame:
    """``frame`` with each bar divided by its split ratio (given as an array of
    ``(numerator, denominator)`` rows, one per bar; ``(1, 1)``: unchanged): prices / ratio
    rounded at the frame's precision (never below one tick), volumes x ratio rounded at its size
    precision. The integer arithmetic (``units * den / num``) keeps a 4:1 rescale exact."""
    num = ratios[:, 0].astype(np.float64)
    den = ratios[:, 1].astype(np.float64)
    scale = 10.0**frame.price_precision

    def px(a: np.ndarray) -> np.ndarray:
        units = np.rint(a * scale)
        return np.maximum(1.0, np.rint(units * den / num)) / scale

    o, h, lo, c = px(frame.open), px(frame.high), px(frame.low), px(frame.close)
    h, lo = np.maximum.reduce([h, o, c]), np.minimum.reduce([lo, o, c])
    vol = np.round(frame.volume * num / den, frame.size_precision)
    return BarFrame(frame.ts_event, o, h, lo, c, vol, frame.price_precision, frame.size_precision)


def rescale_sessions(
    catalog: Catalog, bar_type: str, ratios: dict[dt.date, Fraction], tz: str
) -> dict[str, Any]:
    """Divide the stored bars of the sessions in ``ratios`` by their ratio, as ONE commit of
    ``bar_type`` (readers see the old or the new scale, never a mix); what was rescaled."""
    days = sorted(ratios)
    if not days:
        return {"sessions": 0, "bars": 0}
    lo = _day_start_ns(days[0], tz)
    hi = _day_start_ns(days[-1] + dt.timedelta(days=1), tz)
    frame = catalog.read(bar_type, lo + 1, hi)
    session = local_dates(frame.ts_event - 1, tz)
    keys = np.array([np.datetime64(d) for d in days], dtype="datetime64[D]")
    pos = np.searchsorted(keys, session)
    pos[pos == len(keys)] = 0
    hit = keys[pos] == session
    frame = frame.take(hit)
    table = np.array([[ratios[d].numerator, ratios[d].denominator] for d in days], dtype=np.int64)
    scaled = rescale_frame(frame, table[pos[hit]])
    catalog.write_bars(bar_type, scaled, mode="merge")
    got = sorted({d.item() for d in session[hit]})
    return {
        "sessions": len(got),
        "first": got[0].isoformat() if got else None,
        "last": got[-1].isoformat() if got else None,
        "bars": len(scaled),
    }


def _day_start_ns(day: dt.date, tz: str) -> int:
    import pandas as pd

    return int(pd.Timestamp(day, tz=tz).value)
