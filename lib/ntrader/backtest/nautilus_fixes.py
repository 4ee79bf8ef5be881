"""Workarounds for NautilusTrader 1.231 performance bugs, each exact (results unchanged, a test
compares) and scoped to one engine run. Upstream reports: ``docs/upstream-nautilus-*.md``.

``snapshot_unpickle_memo``: ``Portfolio._ensure_snapshot_pnls_cached_for(instrument)`` keeps a
per-position count of the NETTING position snapshots it has summed, then prunes the counts of
every position *not of this instrument* ("stale"). The next event of another instrument finds its
count gone and unpickles that instrument's whole snapshot history again: with several instruments
each event costs O(cycles so far), a run O(events × cycles) — 16x the HEDGING cost at 5 symbols ×
1 year. The sums it rebuilds are the same every time, and the snapshots are immutable pickles in
the cache, so unpickling each one once and handing the same (read-only) ``Position`` back on the
next ``loads`` of the same bytes gives identical results without the repeated decoding.
"""

from __future__ import annotations

import contextlib
import pickle
import types
from collections.abc import Iterator
from typing import Any


class _Decoded(dict[bytes, Any]):
    """bytes -> the object they unpickle to; a miss decodes once (``__missing__``), a hit is a
    plain C-level dict lookup (no Python frame per snapshot)."""

    def __missing__(self, data: bytes) -> Any:
        obj = self[data] = pickle.loads(data)
        return obj


@contextlib.contextmanager
def snapshot_unpickle_memo() -> Iterator[dict[bytes, Any]]:
    """Inside the block, the portfolio module's ``pickle.loads`` decodes each snapshot once;
    yields the memo (one entry per distinct snapshot decoded)."""
    import nautilus_trader.portfolio.portfolio as portfolio_module

    memo = _Decoded()
    original = portfolio_module.__dict__.get("pickle")
    shim = types.ModuleType("pickle")
    shim.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
    shim.loads = memo.__getitem__  # type: ignore[attr-defined]  # the module only calls loads(b)
    portfolio_module.pickle = shim
    try:
        yield memo
    finally:
        portfolio_module.pickle = original
        memo.clear()
