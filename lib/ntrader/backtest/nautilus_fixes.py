"""Workarounds for NautilusTrader 1.231 performance bugs, each exact (results unchanged, a test
compares) and scoped to one engine run. Upstream reports: ``docs/upstream-nautilus-*.md``.

NETTING snapshots (``docs/upstream-nautilus-netting-snapshots.md``):
``Portfolio._ensure_snapshot_pnls_cached_for(instrument)`` keeps, per position, how many of its
NETTING snapshots it has summed (and the sum, the last PnL, the account), then prunes those
entries of every position *not of this instrument*. The next event of another instrument finds
its entries gone and unpickles and re-sums that instrument's whole snapshot history: each event
costs O(cycles so far), a multi-instrument run O(events × cycles) — 16x the HEDGING cost at 5
symbols × 1 year.

* :class:`SnapshotCountersCache` (the exact fix): the method starts by asking the cache for the
  instrument's snapshot position ids — a ``cpdef`` method, which Cython dispatches to a Python
  override. The override first saves the portfolio's current entries (the ones the coming prune
  may drop, all up to date) and puts back the saved entries of *this* instrument's positions, so
  the method continues from where it stopped: each snapshot is unpickled and summed once. The
  values are the same left fold the shipped rebuild computes, and every reader of the entries
  runs the method for its instrument first, so results are identical; the prune still runs, so
  the PnL cache is invalidated exactly as before. The kernel builds this cache when the engine
  is constructed inside :func:`counters_cache_in_kernel` (only NETTING runs of several
  instruments need it: a Python subclass makes every cache call a little dearer).
* :func:`snapshot_unpickle_memo` (fallback when the portfolio's layout is not the one verified):
  the portfolio module's ``pickle.loads`` decodes each snapshot's bytes once; the re-walk remains.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import types
from collections.abc import Callable, Iterator
from typing import Any

import nautilus_trader
from loguru import logger
from nautilus_trader.cache.cache import Cache

VERIFIED_VERSION = "1.231.0"  # the portfolio layout below was read from this release's source
# gc.get_referents(Portfolio) in field order (portfolio.pxd): ..., _cache, _accounts, _config,
# _unrealized_pnls, _realized_pnls, then the four snapshot dicts, _net_positions, ...
_LAYOUT = ("AccountsManager", "PortfolioConfig", *("dict",) * 8, "defaultdict")
_CACHE_AT, _SNAPSHOT_DICTS = 4, slice(9, 13)


class SnapshotCountersCache(Cache):
    """A Nautilus ``Cache`` whose ``position_snapshot_ids(instrument)`` first runs ``restore``
    (set for one run by :func:`keep_snapshot_counters`) on the ids it returns."""

    __slots__ = ("restore",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.restore: Callable[[set[Any]], None] | None = None

    def position_snapshot_ids(self, instrument_id: Any = None, account_id: Any = None) -> set[Any]:
        ids: set[Any] = Cache.position_snapshot_ids(self, instrument_id, account_id)
        if self.restore is not None and instrument_id is not None and ids:
            self.restore(ids)
        return ids


@contextlib.contextmanager
def counters_cache_in_kernel(enabled: bool = True) -> Iterator[None]:
    """Inside the block, a ``BacktestEngine`` constructed gets a :class:`SnapshotCountersCache`
    (the kernel module looks its ``Cache`` class up when it builds one)."""
    import nautilus_trader.system.kernel as kernel_module

    original = kernel_module.Cache
    if enabled:
        kernel_module.Cache = SnapshotCountersCache
    try:
        yield
    finally:
        kernel_module.Cache = original


def _snapshot_dicts(engine: Any) -> tuple[dict[Any, Any], ...] | str:
    """The portfolio's snapshot sum, last PnL, processed count and account dicts (empty: before
    the run), or why they cannot be trusted to be those."""
    if nautilus_trader.__version__ != VERIFIED_VERSION:
        return f"NautilusTrader {nautilus_trader.__version__} is not {VERIFIED_VERSION}"
    refs = gc.get_referents(engine.portfolio)
    names = tuple(type(o).__name__ for o in refs[_CACHE_AT + 1 : _CACHE_AT + 1 + len(_LAYOUT)])
    dicts = tuple(refs[_SNAPSHOT_DICTS])
    if refs[_CACHE_AT] is not engine.cache or names != _LAYOUT or any(dicts):
        return "the portfolio's fields are not where they were verified"
    return dicts


class _Keeper:
    """Saved copies of the portfolio's per-position snapshot entries."""

    def __init__(self, live: tuple[dict[Any, Any], ...]) -> None:
        self.live = live
        self.saved: tuple[dict[Any, Any], ...] = tuple({} for _ in live)
        self.restored = 0  # entries put back (a test checks the fix was active)

    def restore(self, ids: set[Any]) -> None:
        for live, saved in zip(self.live, self.saved, strict=True):
            saved.update(live)  # what is there now is current: keep it before a prune
            for pid in ids:
                if pid not in live and pid in saved:
                    live[pid] = saved[pid]
                    self.restored += 1


@contextlib.contextmanager
def keep_snapshot_counters(engine: Any) -> Iterator[str]:
    """For one ``engine.run()``: the exact fix when the engine has a
    :class:`SnapshotCountersCache` and the verified layout, else the unpickle memo for NETTING
    caches built without it; yields which ("counters", "memo" or "none")."""
    cache = engine.cache
    if not isinstance(cache, SnapshotCountersCache):
        yield "none"
        return
    dicts = _snapshot_dicts(engine)
    if isinstance(dicts, str):
        logger.warning(
            f"{dicts}: NETTING snapshot counters not kept, falling back to the unpickle memo "
            "(slower, same results)"
        )
        with snapshot_unpickle_memo():
            yield "memo"
        return
    keeper = _Keeper(dicts)
    cache.restore = keeper.restore
    try:
        yield "counters"
    finally:
        cache.restore = None


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
