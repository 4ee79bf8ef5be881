"""A backtest run folder's outputs: CSV reports, an equity PNG and the HTML tearsheet.

``write_reports`` writes, from a finished ``BacktestEngine``:

* ``fills.csv`` — ``trader.generate_fills_report()``: one row per ``OrderFilled`` event (a
  partially filled order appears once per fill; ``generate_order_fills_report`` would give one
  row per order instead);
* ``positions.csv`` — ``generate_positions_report()`` (positions + NETTING snapshots, one row per
  position cycle; ``is_snapshot`` marks the snapshots);
* ``orders.csv`` — ``generate_orders_report()``; ``account.csv`` — ``generate_account_report``;
* ``equity.png`` — equity (in the account currency) and drawdown panels under a headline from
  the summary (matplotlib Agg canvas, no display needed);
* ``tearsheet.html`` — ntrader's own plotly page (:mod:`ntrader.backtest.tearsheet`) from the
  same summary and equity curve (skipped with a warning if it fails).

A report without rows is still a CSV with the header Nautilus uses when it has rows. The numbers
of ``summary.json`` come from :mod:`ntrader.backtest.summary`; pass them as ``summary=`` so that
the pictures show the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from loguru import logger
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.identifiers import Venue

from ntrader.backtest.analysis import ensure_statistics
from ntrader.backtest.performance import account_currency, drawdown_pct, equity_series
from ntrader.backtest.tearsheet import headline
from ntrader.errors import InputError
from ntrader.sessions import calendar_for_venue, calendar_timezone

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


def _venue_calendar(venue: Venue) -> str | None:
    """The exchange calendar of ``venue`` (``None`` for a venue without one, e.g. ``SIM``)."""
    try:
        return calendar_for_venue(venue.value)
    except InputError:
        return None


def equity_headline(summary: Mapping[str, Any] | None) -> str:
    """One line of the summary — return, max drawdown, Sharpe — as the tearsheet shows them."""
    if not summary:
        return ""
    shown = {item["key"]: item["text"] for item in headline(summary)}
    return (
        f"Return {shown['return_pct']} · max drawdown {shown['max_drawdown_pct']} · "
        f"Sharpe {shown['sharpe']}"
    )


def write_equity_png(
    equity: pd.Series,
    path: Path,
    title: str = "",
    *,
    currency: str = "",
    headline: str = "",
    tz: str = "UTC",
) -> None:
    """Equity (top) and drawdown (bottom) as a PNG, drawn on an Agg canvas (headless).

    ``currency`` labels the equity axis (tick labels with thousands separators); ``headline``
    is a line under the title (:func:`equity_headline`); times are shown in ``tz``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    fig = Figure(figsize=(11, 6.5), dpi=100)
    FigureCanvasAgg(fig)
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    if equity.empty:
        ax_eq.text(0.5, 0.5, "no account data", ha="center", va="center", transform=ax_eq.transAxes)
    else:
        x = pd.DatetimeIndex(equity.index).tz_convert(tz).tz_localize(None)
        dd = drawdown_pct(equity)
        ax_eq.step(x, equity.to_numpy(), where="post", lw=1.0, color="tab:blue")
        ax_dd.fill_between(x, dd.to_numpy(), 0.0, step="post", color="tab:red", alpha=0.4)
        ax_dd.step(x, dd.to_numpy(), where="post", lw=0.8, color="tab:red")
        locator = AutoDateLocator()
        ax_dd.xaxis.set_major_locator(locator)
        ax_dd.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    span = float(equity.max() - equity.min()) if len(equity) else 0.0
    decimals = 0 if span >= 50 else 2  # a nearly flat curve needs cents to tell ticks apart
    ax_eq.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.{decimals}f}"))
    ax_dd.yaxis.set_major_formatter(PercentFormatter(100.0))
    ax_eq.set_ylabel(f"equity ({currency})" if currency else "equity")
    ax_eq.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown")
    ax_dd.set_xlabel(tz)
    ax_dd.grid(alpha=0.3)
    fig.suptitle(title or "Equity and drawdown", fontsize=12)
    if headline:
        ax_eq.set_title(headline, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def write_tearsheet(
    path: Path,
    *,
    equity: pd.Series,
    summary: Mapping[str, Any] | None,
    positions: pd.DataFrame | None,
    title: str = "",
    calendar: str | None = None,
) -> bool:
    """ntrader's tearsheet (:func:`ntrader.backtest.tearsheet.write_tearsheet`); on any failure
    log a warning, leave no file, return False."""
    try:
        from ntrader.backtest.tearsheet import write_tearsheet as write_page

        write_page(
            path,
            equity=equity,
            summary=summary,
            positions=positions,
            title=title,
            calendar=calendar,
        )
        if not path.exists() or path.stat().st_size == 0:
            raise RuntimeError("the tearsheet writer wrote no file")
        return True
    except Exception as exc:
        logger.warning(f"tearsheet not written: {type(exc).__name__}: {exc}")
        if path.is_file():  # no half-written page
            path.unlink()
        return False


def _venue_positions(positions: pd.DataFrame | None, venue: Venue) -> pd.DataFrame | None:
    """The rows of ``venue``'s instruments (the report holds every venue's positions)."""
    if positions is None or positions.empty or "instrument_id" not in positions:
        return positions
    return positions[positions["instrument_id"].astype(str).str.endswith(f".{venue}")]


def write_reports(
    engine: BacktestEngine,
    venue: Venue,
    out_dir: Path,
    *,
    tearsheet: bool = True,
    equity_png: bool = True,
    title: str = "",
    equity: pd.Series | None = None,
    frames: dict[str, pd.DataFrame] | None = None,
    summary: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Write the run folder outputs for ``venue``; returns ``{name: path}`` of files written.

    ``equity``: the curve to plot (e.g. daily mark-to-market, first point the starting
    balance); default :func:`equity_series`. ``frames``: the reports if already generated
    (:func:`generate_reports`). ``summary``: the venue's summary (``summary.json``'s
    ``result``), whose numbers the PNG's headline and the tearsheet show; without it they show
    none (the tearsheet says "n/a").
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_statistics(engine, venue)
    written: dict[str, str] = {}
    reports = frames if frames is not None else generate_reports(engine, venue)
    for name, frame in reports.items():
        path = out_dir / f"{name}.csv"
        write_csv(frame, path, name)
        written[name] = str(path)
    curve = equity if equity is not None else equity_series(engine, venue)
    path = out_dir / "equity.csv"  # the curve the metrics and pictures use (a sweep page reads it)
    curve.rename("equity").rename_axis("ts").to_frame().to_csv(path)
    written["equity_csv"] = str(path)
    if not (equity_png or tearsheet):
        return written
    calendar = _venue_calendar(venue)
    if equity_png:
        path = out_dir / "equity.png"
        currency = str((summary or {}).get("currency") or account_currency(engine, venue).code)
        write_equity_png(
            curve,
            path,
            title,
            currency=currency,
            headline=equity_headline(summary),
            tz=calendar_timezone(calendar) if calendar else "UTC",
        )
        written["equity"] = str(path)
    if tearsheet:
        path = out_dir / "tearsheet.html"
        positions = _venue_positions(reports.get("positions"), venue)
        if write_tearsheet(
            path, equity=curve, summary=summary, positions=positions, title=title, calendar=calendar
        ):
            written["tearsheet"] = str(path)
    return written
