"""Conflict modes: how incoming bars combine with the bars a catalog already holds.

Applied to the time range the incoming bars cover (first..last incoming ``ts_event``):
- ``skip``: keep existing bars; add only incoming timestamps that are new.
- ``overwrite``: existing bars inside the incoming range are replaced by the incoming bars
  (existing timestamps in the range that the incoming data lacks are removed).
- ``merge``: the union; the incoming bar wins on an equal timestamp.
Every mode yields strictly increasing, unique timestamps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ntrader.catalog.barframe import COLUMNS, BarFrame
from ntrader.errors import InputError

MODES = ("skip", "overwrite", "merge")


@dataclass(frozen=True)
class MergeOutcome:
    frame: BarFrame
    added: int
    replaced: int
    removed: int
    skipped: int

    @property
    def unchanged(self) -> bool:
        return self.added == 0 and self.replaced == 0 and self.removed == 0


def _member(values: np.ndarray, sorted_pool: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``values`` occur in the sorted array ``sorted_pool``."""
    if not len(sorted_pool):
        return np.zeros(len(values), dtype=bool)
    idx = np.searchsorted(sorted_pool, values)
    idx[idx == len(sorted_pool)] = 0
    return sorted_pool[idx] == values


def _differs(old: BarFrame, old_mask: np.ndarray, new: BarFrame, new_mask: np.ndarray) -> int:
    """How many equal-timestamp pairs (aligned, both sorted) differ in any OHLCV value."""
    a, b = old.take(old_mask), new.take(new_mask)
    diff = np.zeros(len(a), dtype=bool)
    for c in COLUMNS:
        diff |= getattr(a, c) != getattr(b, c)
    return int(diff.sum())


def _sorted_union(a: BarFrame, b: BarFrame) -> BarFrame:
    both = BarFrame.concat([a, b])
    order = np.argsort(both.ts_event, kind="stable")
    return both.take(order)


def check_mode(mode: str) -> str:
    """``mode`` as a conflict mode (``InputError`` naming the choices): checked before any input
    is read, so ``MODE=bogus`` fails at once, not after parsing a large file."""
    if mode not in MODES:
        raise InputError(f"unknown conflict mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    return mode


def merge_frames(old: BarFrame | None, new: BarFrame, mode: str) -> MergeOutcome:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    if old is None or not len(old):
        return MergeOutcome(new, len(new), 0, 0, 0)
    new_in_old = _member(new.ts_event, old.ts_event)
    old_in_new = _member(old.ts_event, new.ts_event)
    added = int((~new_in_old).sum())
    if mode == "skip":
        return MergeOutcome(
            _sorted_union(old, new.take(~new_in_old)), added, 0, 0, len(new) - added
        )
    replaced = _differs(old, old_in_new, new, new_in_old)
    if mode == "merge":
        return MergeOutcome(_sorted_union(old.take(~old_in_new), new), added, replaced, 0, 0)
    inside = (old.ts_event >= new.first_ns) & (old.ts_event <= new.last_ns)
    removed = int((inside & ~old_in_new).sum())
    return MergeOutcome(_sorted_union(old.take(~inside), new), added, replaced, removed, 0)


@dataclass(frozen=True)
class WriteResult:
    """What one ``Catalog.write_bars`` did (its mode applied by :func:`merge_frames`)."""

    bar_type: str
    mode: str
    rows_in: int
    rows_added: int  # timestamps not in the catalog before
    rows_replaced: int  # existing timestamps whose values the incoming rows replaced
    rows_removed: int  # existing timestamps removed (overwrite: inside the range, not incoming)
    rows_skipped: int  # incoming rows not written (skip: timestamp already present)
    files_written: int
    files_removed: int
    bytes_written: int
    instrument_created: bool
    compacted: int = 0  # data files the automatic compaction then merged (0: none ran)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
