"""The headline numbers of a backtest, JSON-ready, consistent with the reports the run writes.

``summarize`` returns plain numbers: report row counts (counted as Nautilus builds the reports,
without building them), account balances, the analyzer's statistics and a drawdown. It does not
need ``run_analysis=True``: statistics missing on the analyzer are computed with
:mod:`ntrader.backtest.analysis` (identical to Nautilus' own). ``combine_venues`` totals several
venues' summaries.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.core.nautilus_pyo3 import OrderFilled as Pyo3OrderFilled
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import Venue

from ntrader.backtest.analysis import ensure_statistics, venue_account
from ntrader.backtest.performance import account_currency, drawdown_pct, equity_series

SHARPE = "Sharpe Ratio (252 days)"
SORTINO = "Sortino Ratio (252 days)"
MAX_DRAWDOWN = "Max Drawdown"

_DAILY = "daily marked-to-market equity at session closes"
BASIS = {
    "pnl": "marked to market: final_equity - starting_balance",
    "return_pct": "marked to market: pnl / starting_balance",
    "final_equity": "cash + open positions valued at the last bar's close",
    "realized_pnl": "closed trades, commissions included (pnl - unrealized_pnl)",
    "unrealized_pnl": "open positions at the last bar's close vs their average entry price",
    "ending_balance": "the account's cash balance (a CASH account's cash is net of shares held)",
    "sharpe": f"{_DAILY}, annualised with 252 sessions",
    "sortino": f"{_DAILY}, annualised with 252 sessions",
    "volatility_pct": f"{_DAILY}, annualised with 252 sessions",
    "max_drawdown_pct": _DAILY,
    "win_rate": "closed positions (NautilusTrader's PnL statistics)",
    "expectancy": "closed positions (NautilusTrader's PnL statistics)",
    "profit_factor": "closed positions' realized PnL: gross profit / gross loss",
}


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, non-finite floats to None, dicts recursively."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _stat(stats: dict[str, Any], name: str) -> float | None:
    value = stats.get(name)
    return _clean(float(value)) if isinstance(value, int | float) else None


def summarize(engine: BacktestEngine, venue: Venue) -> dict[str, Any]:
    """Headline numbers of ``venue``'s run, consistent with the CSVs ``write_reports`` writes.

    ``orders``/``fills``/``positions`` are the row counts of orders.csv/fills.csv/positions.csv
    (all venues of the engine, as Nautilus reports them). Balances, ``pnl`` (ending - starting,
    as Nautilus' ``PnL (total)``), ``return_pct`` and ``commissions`` (total paid, >= 0) are in
    the account's base currency (``currency``). ``sharpe``/``sortino`` are Nautilus' returns
    statistics; ``win_rate``/``expectancy`` its PnL statistics; ``profit_factor`` is trade-based
    (gross profit / gross loss of realized PnLs; Nautilus' own ``Profit Factor`` is returns-based
    and stays in ``nautilus_stats``). ``max_drawdown_pct`` is the largest peak-to-trough fall in
    percent (>= 0): Nautilus' ``Max Drawdown`` if registered, else from :func:`equity_series`.
    Non-finite values are ``None``.
    """
    analyzer = ensure_statistics(engine, venue)
    return _summary(engine, venue, analyzer, report_counts(engine))


def report_counts(engine: BacktestEngine) -> dict[str, int]:
    """Rows of orders/fills/positions reports, counted the way Nautilus builds them (without
    building them: the orders report alone takes ~0.4 s for a few thousand orders)."""
    cache = engine.cache
    orders = cache.orders()
    fills = sum(1 for o in orders for e in o.events if isinstance(e, OrderFilled | Pyo3OrderFilled))
    positions = len(cache.positions()) + len(cache.position_snapshots())
    return {"orders": len(orders), "fills": fills, "positions": positions}


def _summary(
    engine: BacktestEngine, venue: Venue, analyzer: Any, counts: dict[str, int]
) -> dict[str, Any]:
    account = venue_account(engine, venue)
    currency = account_currency(engine, venue)
    starting = account.starting_balances().get(currency)
    ending = account.balances_total().get(currency)
    start_f = starting.as_double() if starting is not None else 0.0
    end_f = ending.as_double() if ending is not None else 0.0
    pnl = float(ending.as_decimal() - starting.as_decimal()) if starting and ending else 0.0
    commission = account.commissions().get(currency)

    stats_pnls = {c.code: analyzer.get_performance_stats_pnls(c) for c in analyzer.currencies}
    stats_returns = analyzer.get_performance_stats_returns()
    stats_general = analyzer.get_performance_stats_general()
    pnls_main = stats_pnls.get(currency.code, {})

    realized = analyzer.realized_pnls(currency)
    profit_factor: float | None = None
    closed = realized is not None and len(realized) > 0  # else no position was ever closed
    if realized is not None and len(realized):
        values = realized.to_numpy(dtype=np.float64)
        gross_loss = -values[values < 0].sum()
        gross_profit = values[values > 0].sum()
        profit_factor = _clean(float(gross_profit / gross_loss)) if gross_loss > 0 else None

    if MAX_DRAWDOWN in stats_returns and _stat(stats_returns, MAX_DRAWDOWN) is not None:
        max_dd = abs(float(stats_returns[MAX_DRAWDOWN])) * 100.0
    else:
        dd = drawdown_pct(equity_series(engine, venue))
        max_dd = float(-dd.min()) if len(dd) else 0.0

    return _clean(
        {
            "currency": currency.code,
            "bars": int(engine.iteration),
            "orders": counts["orders"],
            "fills": counts["fills"],
            "positions": counts["positions"],
            "starting_balance": start_f,
            "ending_balance": end_f,
            "pnl": pnl,
            "return_pct": pnl / start_f * 100.0 if start_f else 0.0,
            "sharpe": _stat(stats_returns, SHARPE),
            "sortino": _stat(stats_returns, SORTINO),
            "max_drawdown_pct": max_dd + 0.0,  # no -0.0
            "win_rate": _stat(pnls_main, "Win Rate") if closed else None,
            "profit_factor": profit_factor,
            "expectancy": _stat(pnls_main, "Expectancy") if closed else None,
            "commissions": commission.as_double() if commission is not None else 0.0,
            "nautilus_stats": {
                "pnls": stats_pnls,
                "returns": stats_returns,
                "general": stats_general,
            },
        }
    )


def mark_to_market(
    summary: dict[str, Any],
    curve: Any,
    open_positions: dict[str, dict[str, float]],
    risk: dict[str, Any],
) -> None:
    """Put ``summary`` on one basis: the marked-to-market ledger of ``curve`` (daily equity).

    ``pnl``/``return_pct`` become total (realized + unrealized) like Sharpe and drawdown;
    ``realized_pnl``, ``unrealized_pnl`` and ``final_equity`` say how much is which; ``basis``
    labels every statistic; ``unavailable`` gives the reason of every statistic that is null."""
    start = float(summary["starting_balance"])
    final = float(curve.iloc[-1]) if len(curve) else float(summary["ending_balance"])
    unrealized = float(sum(p["unrealized_pnl"] for p in open_positions.values()))
    pnl = final - start
    why = dict(risk.pop("unavailable", {}))
    summary.update(risk)
    if summary.get("win_rate") is None:
        why.setdefault("win_rate", "no closed position")
        why.setdefault("expectancy", "no closed position")
    if summary.get("profit_factor") is None:
        why.setdefault("profit_factor", "no losing closed position (or none closed)")
    summary.update(
        final_equity=final,
        pnl=pnl,
        return_pct=pnl / start * 100.0 if start else None,
        realized_pnl=pnl - unrealized,
        unrealized_pnl=unrealized,
        open_positions=open_positions,
        basis=BASIS,
        unavailable={k: v for k, v in why.items() if summary.get(k) is None},
    )


def combine_venues(per_venue: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals over several venues' summaries (counts, balances, PnL; return on the total)."""
    keys = (
        "orders_rejected",
        "orders_denied",
        "pnl",
        "realized_pnl",
        "unrealized_pnl",
        "final_equity",
        "commissions",
        "starting_balance",
        "ending_balance",
    )
    out: dict[str, Any] = {k: sum((v.get(k) or 0) for v in per_venue.values()) for k in keys}
    first = next(iter(per_venue.values()), {})
    for k in ("bars", "orders", "fills", "positions"):  # engine-wide already: not summed
        out[k] = first.get(k)
    start = out["starting_balance"]
    out["return_pct"] = 100.0 * out["pnl"] / start if start else None
    out["basis"] = BASIS
    reasons = [r for v in per_venue.values() for r in v.get("rejection_reasons") or []]
    out["rejection_reasons"] = sorted(reasons, key=lambda r: -r["count"])[:3]
    return out
