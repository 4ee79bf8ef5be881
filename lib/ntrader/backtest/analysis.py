"""NautilusTrader's portfolio statistics, built in bulk instead of one pandas row at a time.

``PortfolioAnalyzer.calculate_statistics`` (run by the engine when ``run_analysis=True``) grows
its Series one position at a time: ``add_trade`` does a ``pd.concat`` per position and
``add_position_return`` a ``.loc[ts] +=`` enlargement per closed position, both O(n) each, so
O(n^2) per run. During the run the portfolio also calls ``analyzer.record_trade`` once per
closed position (another ``pd.concat`` each). This module rebuilds the same analyzer state with
one Series construction per currency:

* :func:`calculate_statistics_fast` is a drop-in for ``analyzer.calculate_statistics``. It
  leaves every field the getters (``get_performance_stats_pnls/returns/general``, ``returns()``,
  ``realized_pnls()``) and the tearsheet read exactly as the reference does: same values (float
  sums of returns sharing a close timestamp accumulated in the reference's order, starting from
  ``0.0``), same index labels, dtypes and order.
* :class:`FastTradeRecorder` replaces ``record_trade`` on one analyzer instance for the duration
  of a run: it appends to plain lists and materializes ``_recorded_realized_pnls`` (and the
  timestamps) once, on first read or when statistics are calculated.

Both rely on private fields of ``PortfolioAnalyzer`` in nautilus_trader 1.231.0 (pinned in
``pyproject.toml``); ``tests/test_fast_analysis.py`` proves equality against the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer

if TYPE_CHECKING:
    from nautilus_trader.accounting.accounts.base import Account
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Currency
    from nautilus_trader.model.position import Position

# Per currency: (position id values, realized PnL as float, event timestamps as int | None).
_Columns = tuple[list[str], list[float], list[int | None]]


def _pnl_series(columns: _Columns) -> tuple[pd.Series, pd.Series]:
    """The (PnL, timestamp) Series ``_append_pnl_record`` would have grown row by row."""
    ids, values, stamps = columns
    pnls = pd.Series(values, index=pd.Index(ids, dtype=object), dtype=np.float64)
    timestamps = pd.Series(stamps, index=pd.Index(ids, dtype=object), dtype=object)
    return pnls, timestamps


def _append(
    pnls: dict[Currency, pd.Series],
    timestamps: dict[Currency, pd.Series],
    columns: dict[Currency, _Columns],
) -> None:
    for currency, cols in columns.items():
        new_pnls, new_stamps = _pnl_series(cols)
        old_pnls = pnls.get(currency)
        old_stamps = timestamps.get(currency)
        pnls[currency] = new_pnls if old_pnls is None else pd.concat([old_pnls, new_pnls])
        timestamps[currency] = (
            new_stamps if old_stamps is None else pd.concat([old_stamps, new_stamps])
        )


# Which account (and how far into its event history) the analyzer's statistics were computed
# for, with the positions list they were computed into: Nautilus' calculate_statistics and reset
# replace that list, which invalidates the mark.
_STATS_MARK = "_ntrader_stats_for"


def _account_mark(account: Account) -> tuple[int, str, int]:
    return (id(account), account.id.value, account.event_count)


def _is_marked(analyzer: PortfolioAnalyzer, account: Account) -> bool:
    mark = analyzer.__dict__.get(_STATS_MARK)
    return (
        isinstance(mark, tuple)
        and mark[0] == _account_mark(account)
        and mark[1] is analyzer._positions
    )


def calculate_statistics_fast(
    analyzer: PortfolioAnalyzer, account: Account, positions: list[Position]
) -> None:
    """Bulk equivalent of ``analyzer.calculate_statistics(account, positions)``."""
    recorder = FastTradeRecorder.installed_on(analyzer)
    if recorder is not None:
        recorder.flush()

    analyzer.__dict__.pop(_STATS_MARK, None)
    analyzer._account_balances_starting = account.starting_balances()
    analyzer._account_balances = account.balances_total()
    analyzer._positions = list(positions)
    analyzer._realized_pnls = {}
    analyzer._realized_pnl_timestamps = {}

    columns: dict[Currency, _Columns] = {}
    # Reference: `if ts not in s: s.loc[ts] = 0.0; s.loc[ts] += float(value)` in position order,
    # i.e. a left-to-right float sum starting at 0.0 per close timestamp (dict keeps first-seen
    # order, which the final sort_index makes irrelevant since labels are unique).
    return_sums: dict[int, float] = {}
    for position in positions:
        realized_pnl = position.realized_pnl
        if realized_pnl is None:
            continue  # empty shell positions, as in add_positions
        cols = columns.get(realized_pnl.currency)
        if cols is None:
            cols = columns[realized_pnl.currency] = ([], [], [])
        cols[0].append(position.id.value)
        cols[1].append(realized_pnl.as_double())
        cols[2].append(int(position.ts_last))
        ts_closed = position.ts_closed
        if ts_closed > 0:
            key = int(ts_closed)
            return_sums[key] = return_sums.get(key, 0.0) + float(position.realized_return)

    _append(analyzer._realized_pnls, analyzer._realized_pnl_timestamps, columns)

    if return_sums:
        index = pd.DatetimeIndex(
            np.fromiter(return_sums.keys(), dtype=np.int64, count=len(return_sums)).view(
                "datetime64[ns]"
            )
        ).tz_localize("UTC")
        values = np.fromiter(return_sums.values(), dtype=np.float64, count=len(return_sums))
        position_returns = pd.Series(values, index=index, dtype=np.float64)
    else:
        position_returns = analyzer._empty_returns()
    analyzer._position_returns = position_returns.sort_index()
    analyzer._portfolio_returns = analyzer._calculate_portfolio_returns(account)
    analyzer._sync_returns_alias()
    analyzer.__dict__[_STATS_MARK] = (_account_mark(account), analyzer._positions)


class FastTradeRecorder:
    """Replaces ``analyzer.record_trade`` with list appends; materializes Series once.

    Install before ``engine.run()`` (:func:`install_fast_recorder`). The portfolio (Cython) calls
    ``self.analyzer.record_trade(...)`` through normal attribute lookup, so an instance attribute
    shadows the method. ``realized_pnls`` (read by ``get_performance_stats_pnls`` and the
    tearsheet) and ``reset`` are shadowed too so that reads mid-run see every record so far and
    an engine reset drops pending ones. ``uninstall()`` flushes and restores the class methods.
    """

    _ATTR = "_ntrader_fast_recorder"

    def __init__(self, analyzer: PortfolioAnalyzer) -> None:
        self.analyzer = analyzer
        self._pending: dict[Currency, _Columns] = {}
        self.recorded = 0

    @classmethod
    def installed_on(cls, analyzer: PortfolioAnalyzer) -> FastTradeRecorder | None:
        found = analyzer.__dict__.get(cls._ATTR)
        return found if isinstance(found, FastTradeRecorder) else None

    def install(self) -> FastTradeRecorder:
        a = self.analyzer
        if self.installed_on(a) is not None:
            raise RuntimeError("a FastTradeRecorder is already installed on this analyzer")
        setattr(a, self._ATTR, self)
        a.record_trade = self.record_trade  # type: ignore[method-assign]
        a.realized_pnls = self._realized_pnls  # type: ignore[method-assign]
        a.reset = self._reset  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        self.flush()
        for name in (self._ATTR, "record_trade", "realized_pnls", "reset"):
            self.analyzer.__dict__.pop(name, None)

    def record_trade(
        self, position_id: Any, realized_pnl: Any, ts_event: int | None = None
    ) -> None:
        cols = self._pending.get(realized_pnl.currency)
        if cols is None:
            cols = self._pending[realized_pnl.currency] = ([], [], [])
        cols[0].append(position_id.value)
        cols[1].append(realized_pnl.as_double())
        cols[2].append(int(ts_event) if ts_event is not None else None)
        self.recorded += 1

    def flush(self) -> None:
        """Append pending records to the analyzer's recorded Series (one concat per currency)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        a = self.analyzer
        _append(a._recorded_realized_pnls, a._recorded_realized_pnl_timestamps, pending)

    def _realized_pnls(self, currency: Currency | None = None) -> pd.Series | None:
        self.flush()
        return PortfolioAnalyzer.realized_pnls(self.analyzer, currency)

    def _reset(self) -> None:
        self._pending = {}
        self.analyzer.__dict__.pop(_STATS_MARK, None)
        PortfolioAnalyzer.reset(self.analyzer)


def install_fast_recorder(engine: BacktestEngine) -> FastTradeRecorder:
    """Shadow ``record_trade`` on ``engine``'s portfolio analyzer; call before ``engine.run()``."""
    return FastTradeRecorder(engine.portfolio.analyzer).install()


def venue_positions(engine: BacktestEngine, venue: Venue) -> list[Position]:
    """The positions the engine's post-run analysis uses: open/closed + snapshots, one venue."""
    cache = engine.cache
    return [
        p for p in cache.positions() + cache.position_snapshots() if p.instrument_id.venue == venue
    ]


def venue_account(engine: BacktestEngine, venue: Venue) -> Account:
    account = engine.cache.account_for_venue(venue)
    if account is None:
        raise ValueError(f"engine has no account for venue {venue}")
    return account


def ensure_statistics(engine: BacktestEngine, venue: Venue) -> PortfolioAnalyzer:
    """(Re)compute ``engine``'s analyzer statistics for ``venue`` with the fast path.

    Identical to what ``run_analysis=True`` leaves behind for a single-venue engine, so this is
    safe to call either way (for several venues the engine keeps only the last venue's state;
    this computes the requested one).
    """
    analyzer: PortfolioAnalyzer = engine.portfolio.analyzer
    account = venue_account(engine, venue)
    if _is_marked(analyzer, account):  # already computed for this account and state
        return analyzer
    calculate_statistics_fast(analyzer, account, venue_positions(engine, venue))
    return analyzer


def stats_equal(a: Any, b: Any) -> bool:
    """Exact equality of nested stats values where NaN equals NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(stats_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(stats_equal, a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


__all__ = [
    "FastTradeRecorder",
    "calculate_statistics_fast",
    "ensure_statistics",
    "install_fast_recorder",
    "stats_equal",
    "venue_account",
    "venue_positions",
]
