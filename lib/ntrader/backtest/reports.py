"""A backtest run folder's outputs: CSV reports, an equity PNG, a tearsheet, and the summary.

``write_reports`` writes, from a finished ``BacktestEngine``:

* ``fills.csv`` — ``trader.generate_fills_report()``: one row per ``OrderFilled`` event (a
  partially filled order appears once per fill; ``generate_order_fills_report`` would give one
  row per order instead);
* ``positions.csv`` — ``generate_positions_report()`` (positions + NETTING snapshots, one row per
  position cycle; ``is_snapshot`` marks the snapshots);
* ``orders.csv`` — ``generate_orders_report()``; ``account.csv`` — ``generate_account_report``;
* ``equity.png`` — equity and drawdown panels (matplotlib Agg canvas, no display needed);
* ``tearsheet.html`` — NautilusTrader's plotly tearsheet (skipped with a warning if it fails).

A report without rows is still a CSV with the header Nautilus uses when it has rows.

``summarize`` returns plain JSON-ready numbers: report row counts (counted as Nautilus builds the
reports), account balances, the analyzer's statistics and a drawdown from the equity curve.
Neither needs ``run_analysis=True``: statistics missing on the analyzer are computed with
:mod:`ntrader.backtest.analysis` (identical to Nautilus' own).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.core.nautilus_pyo3 import OrderFilled as Pyo3OrderFilled
from nautilus_trader.model.enums import AccountType, OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Currency

from ntrader.backtest.analysis import ensure_statistics, venue_account

# Headers of the reports as Nautilus 1.231.0 writes them when they have rows (index first).
EMPTY_HEADERS: dict[str, list[str]] = {
    "fills": [
        "client_order_id",
        "trader_id",
        "strategy_id",
        "instrument_id",
        "venue_order_id",
        "account_id",
        "trade_id",
        "position_id",
        "order_side",
        "order_type",
        "last_qty",
        "last_px",
        "currency",
        "commission",
        "liquidity_side",
        "event_id",
        "ts_event",
        "ts_init",
        "info",
        "reconciliation",
    ],
    "positions": [
        "position_id",
        "trader_id",
        "strategy_id",
        "instrument_id",
        "account_id",
        "opening_order_id",
        "closing_order_id",
        "entry",
        "side",
        "quantity",
        "peak_qty",
        "ts_init",
        "ts_opened",
        "ts_last",
        "ts_closed",
        "duration_ns",
        "avg_px_open",
        "avg_px_close",
        "commissions",
        "realized_return",
        "realized_pnl",
        "is_snapshot",
    ],
    "orders": [
        "client_order_id",
        "trader_id",
        "strategy_id",
        "instrument_id",
        "venue_order_id",
        "position_id",
        "account_id",
        "last_trade_id",
        "type",
        "side",
        "quantity",
        "time_in_force",
        "is_reduce_only",
        "is_quote_quantity",
        "filled_qty",
        "liquidity_side",
        "avg_px",
        "slippage",
        "commissions",
        "emulation_trigger",
        "status",
        "contingency_type",
        "order_list_id",
        "linked_order_ids",
        "parent_order_id",
        "exec_algorithm_id",
        "exec_algorithm_params",
        "exec_spawn_id",
        "tags",
        "init_id",
        "ts_init",
        "ts_last",
    ],
    "account": [
        "ts_event",
        "total",
        "locked",
        "free",
        "currency",
        "account_id",
        "account_type",
        "base_currency",
        "margins",
        "reported",
        "info",
    ],
}

SHARPE = "Sharpe Ratio (252 days)"
SORTINO = "Sortino Ratio (252 days)"
MAX_DRAWDOWN = "Max Drawdown"


def generate_reports(engine: BacktestEngine, venue: Venue) -> dict[str, pd.DataFrame]:
    """The four Nautilus reports (may be empty frames without columns)."""
    trader = engine.trader
    try:
        account = trader.generate_account_report(venue)
    except Exception as exc:  # no account for the venue: Nautilus raises
        logger.warning(f"no account report for {venue}: {exc}")
        account = pd.DataFrame()
    if not account.empty:
        account.index.name = "ts_event"
    return {
        "fills": trader.generate_fills_report(),
        "positions": trader.generate_positions_report(),
        "orders": trader.generate_orders_report(),
        "account": account,
    }


def write_csv(frame: pd.DataFrame, path: Path, name: str) -> None:
    if frame.empty and len(frame.columns) == 0:
        header = EMPTY_HEADERS[name]
        frame = pd.DataFrame(columns=header[1:]).rename_axis(header[0])
    frame.to_csv(path)


def _currency(engine: BacktestEngine, venue: Venue) -> Currency:
    account = venue_account(engine, venue)
    if account.base_currency is not None:
        return account.base_currency
    currencies = list(account.starting_balances()) or list(account.balances_total())
    if not currencies:
        raise ValueError(f"account of {venue} holds no balances")
    return currencies[0]


def equity_series(engine: BacktestEngine, venue: Venue) -> pd.Series:
    """Account equity after each account state time (UTC DatetimeIndex, unique, float values).

    MARGIN accounts: the total balance (realized equity). CASH accounts: the total cash balance
    plus open holdings valued at each instrument's latest fill price — the raw cash balance of a
    cash account drops by the full cost of every purchase, which is not a loss.
    """
    account = venue_account(engine, venue)
    currency = _currency(engine, venue)
    states = sorted(account.events, key=lambda state: state.ts_event)
    times: list[int] = []
    cash: list[float] = []
    for state in states:
        for balance in state.balances:
            if balance.currency == currency:
                ts = int(state.ts_event)
                if times and times[-1] == ts:  # keep the last state of a timestamp: the one
                    cash[-1] = balance.total.as_double()  # after all fills at that time
                else:
                    times.append(ts)
                    cash.append(balance.total.as_double())
                break
    values = np.asarray(cash, dtype=np.float64)
    if account.type == AccountType.CASH and times:
        values = values + _holdings_value(engine, venue, currency, np.asarray(times, np.int64))
    index = pd.DatetimeIndex(np.asarray(times, dtype=np.int64).view("datetime64[ns]"))
    return pd.Series(values, index=index.tz_localize("UTC"), name="equity", dtype=np.float64)


def _holdings_value(
    engine: BacktestEngine, venue: Venue, currency: Currency, times: np.ndarray
) -> np.ndarray:
    """Value of open holdings at each of ``times`` (fills at or before the time count)."""
    cache = engine.cache
    fills: list[tuple[int, Any, float, float]] = []
    for order in cache.orders():
        if order.instrument_id.venue != venue:
            continue
        for event in order.events:
            if isinstance(event, OrderFilled):
                sign = 1.0 if event.order_side == OrderSide.BUY else -1.0
                fills.append(
                    (
                        int(event.ts_event),
                        event.instrument_id,
                        sign * event.last_qty.as_double(),
                        event.last_px.as_double(),
                    )
                )
    fills.sort(key=lambda f: f[0])
    multipliers: dict[Any, float] = {}
    qty: dict[Any, float] = {}
    last_px: dict[Any, float] = {}
    out = np.zeros(len(times), dtype=np.float64)
    j = 0
    for i, t in enumerate(times):
        while j < len(fills) and fills[j][0] <= t:
            _, iid, signed_qty, px = fills[j]
            if iid not in multipliers:
                instrument = cache.instrument(iid)
                same = instrument is not None and instrument.quote_currency == currency
                multipliers[iid] = float(instrument.multiplier) if same else 0.0
            qty[iid] = qty.get(iid, 0.0) + signed_qty
            last_px[iid] = px
            j += 1
        out[i] = sum(q * last_px[iid] * multipliers[iid] for iid, q in qty.items() if q)
    return out


def drawdown_pct(equity: pd.Series) -> pd.Series:
    """Percent below the running peak (<= 0)."""
    if equity.empty:
        return equity.copy()
    return (equity / equity.cummax() - 1.0) * 100.0


def write_equity_png(equity: pd.Series, path: Path, title: str = "") -> None:
    """Equity (top) and drawdown (bottom) as a PNG, drawn on an Agg canvas (headless)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 6.5), dpi=100)
    FigureCanvasAgg(fig)
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    if equity.empty:
        ax_eq.text(0.5, 0.5, "no account data", ha="center", va="center", transform=ax_eq.transAxes)
    else:
        x = pd.DatetimeIndex(equity.index).tz_convert(None)
        dd = drawdown_pct(equity)
        ax_eq.step(x, equity.to_numpy(), where="post", lw=1.0, color="tab:blue")
        ax_dd.fill_between(x, dd.to_numpy(), 0.0, step="post", color="tab:red", alpha=0.4)
        ax_dd.step(x, dd.to_numpy(), where="post", lw=0.8, color="tab:red")
    ax_eq.set_ylabel("equity")
    ax_eq.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown %")
    ax_dd.set_xlabel("UTC")
    ax_dd.grid(alpha=0.3)
    ax_eq.set_title(title or "Equity and drawdown")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")


def write_tearsheet(engine: BacktestEngine, path: Path, title: str = "") -> bool:
    """Nautilus' plotly tearsheet; on any failure log a warning, leave no file, return False."""
    try:
        from nautilus_trader.analysis.tearsheet import create_tearsheet

        kwargs: dict[str, Any] = {"title": title} if title else {}
        create_tearsheet(engine, output_path=str(path), **kwargs)
        if not path.exists() or path.stat().st_size == 0:
            raise RuntimeError("create_tearsheet wrote no file")
        return True
    except Exception as exc:
        logger.warning(f"tearsheet not written: {type(exc).__name__}: {exc}")
        path.unlink(missing_ok=True)
        return False


def write_reports(
    engine: BacktestEngine,
    venue: Venue,
    out_dir: Path,
    *,
    tearsheet: bool = True,
    equity_png: bool = True,
    title: str = "",
    equity: pd.Series | None = None,
) -> dict[str, str]:
    """Write the run folder outputs for ``venue``; returns ``{name: path}`` of files written.

    ``equity``: the curve to plot (e.g. daily mark-to-market); default :func:`equity_series`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_statistics(engine, venue)
    written: dict[str, str] = {}
    for name, frame in generate_reports(engine, venue).items():
        path = out_dir / f"{name}.csv"
        write_csv(frame, path, name)
        written[name] = str(path)
    if equity_png:
        path = out_dir / "equity.png"
        curve = equity if equity is not None else equity_series(engine, venue)
        write_equity_png(curve, path, title)
        written["equity"] = str(path)
    if tearsheet:
        path = out_dir / "tearsheet.html"
        if write_tearsheet(engine, path, title):
            written["tearsheet"] = str(path)
    return written


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
    currency = _currency(engine, venue)
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
            "win_rate": _stat(pnls_main, "Win Rate"),
            "profit_factor": profit_factor,
            "expectancy": _stat(pnls_main, "Expectancy"),
            "commissions": commission.as_double() if commission is not None else 0.0,
            "nautilus_stats": {
                "pnls": stats_pnls,
                "returns": stats_returns,
                "general": stats_general,
            },
        }
    )


def combine_venues(per_venue: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals over several venues' summaries (counts, balances, PnL; return on the total)."""
    keys = (
        "orders",
        "fills",
        "positions",
        "pnl",
        "commissions",
        "starting_balance",
        "ending_balance",
        "bars",
    )
    out: dict[str, Any] = {k: sum((v.get(k) or 0) for v in per_venue.values()) for k in keys}
    start = out["starting_balance"]
    out["return_pct"] = 100.0 * out["pnl"] / start if start else None
    return out
