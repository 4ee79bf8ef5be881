"""ntrader's ``tearsheet.html``: one self-contained page (plotly.js inline, loads offline) built
from the same data as ``summary.json`` and ``equity.png`` — the run's summary dict and its daily
marked-to-market equity — plus the positions report.

The page shows the headline numbers (each on an element with ``data-key="<summary key>"`` and
``data-value`` holding the raw number, so tests and tools read what the page shows; a statistic
that is ``None`` reads "n/a" with the reason from ``summary["unavailable"]``), the equity curve
and its drawdown, daily returns, a rolling Sharpe, monthly returns, a trade summary and the
exposure. A panel that cannot be computed says why instead of staying empty. NautilusTrader's
own tearsheet is not used: its equity comes from position returns, not from the account.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ntrader.backtest.tearsheet_panels import (
    ROLLING_SESSIONS,
    Month,
    daily_returns,
    exposure,
    monthly_returns,
    rolling_sharpe,
    session_equity,
    trade_stats,
)
from ntrader.backtest.tearsheet_plots import equity_plot, returns_plot, rolling_plot
from ntrader.sessions import calendar_timezone

# (summary key, label, kind): what the headline shows, in order.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("return_pct", "Return", "pct"),
    ("pnl", "PnL", "money"),
    ("final_equity", "Final equity", "money"),
    ("max_drawdown_pct", "Max drawdown", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("win_rate", "Win rate", "fraction"),
    ("profit_factor", "Profit factor", "ratio"),
    ("commissions", "Commissions", "money"),
    ("realized_pnl", "Realized PnL", "money"),
    ("unrealized_pnl", "Unrealized PnL", "money"),
)
NO_SUMMARY = "no summary was given to the report writer"
NOT_IN_SUMMARY = "not in this run's summary"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;font-size:13px}.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:130px}
.label{font-size:12px;color:#666}.value{font-size:20px;font-weight:600}
.na{color:#999}.reason{font-size:11px;color:#a33;max-width:200px}
.note{color:#555;font-size:13px;font-style:italic}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right}th{background:#f5f5f5}td.l{text-align:left}.pos{color:#1a7f37}.neg{color:#c0392b}
"""


def format_value(kind: str, value: float, currency: str = "") -> str:
    """A headline number as the page shows it (two decimals, thousands separators)."""
    shown = value * 100.0 if kind == "fraction" else value
    if round(shown, 2) == 0:
        shown = 0.0  # no "-0.00"
    if kind in ("pct", "fraction"):
        return f"{shown:,.2f}%"
    if kind == "money":
        return f"{shown:,.2f} {currency}".strip()
    return f"{shown:,.2f}"


def duration(value: pd.Timedelta | None) -> str:
    """A holding time for people: ``2 h 50 min``, ``3 d 4 h``, ``45 s``."""
    if value is None or pd.isna(value):
        return "n/a"
    seconds = round(value.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def headline(summary: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per headline key: label, displayed text, raw value and the reason for an "n/a"."""
    currency = str(summary.get("currency") or "") if summary else ""
    why: Mapping[str, Any] = (summary or {}).get("unavailable") or {}
    items = []
    for key, label, kind in HEADLINE:
        basis = ((summary or {}).get("basis") or {}).get(key)
        item: dict[str, Any] = {"key": key, "label": label, "value": None, "reason": None}
        item["basis"] = None if basis is None else str(basis)
        if summary is None or key not in summary:
            item["reason"] = NO_SUMMARY if summary is None else NOT_IN_SUMMARY
        elif isinstance(summary[key], int | float) and not isinstance(summary[key], bool):
            if math.isfinite(summary[key]):
                item["value"] = float(summary[key])
            else:
                item["reason"] = f"not finite: {summary[key]!r}"
        elif summary[key] is not None:
            item["reason"] = f"not a number: {summary[key]!r}"
        else:
            item["reason"] = None if why.get(key) is None else str(why[key])
        item["text"] = (
            "n/a" if item["value"] is None else format_value(kind, item["value"], currency)
        )
        items.append(item)
    return items


def _headline_html(items: list[dict[str, Any]]) -> str:
    cards = []
    for it in items:
        raw = "" if it["value"] is None else repr(it["value"])
        cls = "value na" if it["value"] is None else "value"
        reason = (
            f'<div class="reason" data-reason-for="{it["key"]}">{html.escape(it["reason"])}</div>'
            if it["value"] is None and it["reason"]
            else ""
        )
        tip = f' title="{html.escape(it["basis"])}"' if it["basis"] else ""
        cards.append(
            f'<div class="card"{tip}><div class="label">{html.escape(it["label"])}</div>'
            f'<div class="{cls}" data-key="{it["key"]}" data-value="{raw}">'
            f"{html.escape(it['text'])}</div>{reason}</div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _note(text: str, panel: str) -> str:
    return f'<p class="note" data-panel="{panel}">{html.escape(text)}</p>'


def _signed(value: float) -> str:
    cls = "pos" if value > 0 else "neg" if value < 0 else ""
    return f'<span class="{cls}">{format_value("pct", value)}</span>'


def _monthly_html(months: list[Month]) -> str:
    if not months:
        return _note("No monthly returns: the run has no session.", "monthly")
    years = sorted({m.year for m in months})
    by = {(m.year, m.month): m for m in months}
    head = "".join(f"<th>{m}</th>" for m in MONTHS)
    rows = []
    for year in years:
        cells, total = [], 1.0
        for month in range(1, 13):
            m = by.get((year, month))
            if m is None:
                cells.append("<td></td>")
                continue
            total *= 1.0 + m.return_pct / 100.0
            star = "*" if m.partial else ""
            cells.append(
                f'<td data-month="{year}-{month:02d}" data-value="{m.return_pct!r}" '
                f'title="{m.sessions} sessions">{_signed(m.return_pct)}{star}</td>'
            )
        rows.append(
            f"<tr><th>{year}</th>{''.join(cells)}"
            f'<td data-year="{year}">{_signed((total - 1.0) * 100.0)}</td></tr>'
        )
    partial = [m for m in months if m.partial]
    foot = "; ".join(
        f"{m.year}-{m.month:02d}: {m.sessions} of {m.calendar_sessions} sessions" for m in partial
    )
    note = _note(f"* partial month ({foot}).", "monthly-partial") if partial else ""
    if months[0].calendar_sessions is None:
        note += _note(
            "Partial months are not marked: no trading calendar for this venue.", "monthly-calendar"
        )
    return f"<table><tr><th></th>{head}<th>Year</th></tr>{''.join(rows)}</table>{note}"


def _rows(pairs: list[tuple[str, str, str]]) -> str:
    body = "".join(
        f'<tr><td class="l">{html.escape(label)}</td>'
        f'<td data-key="{key}">{html.escape(text)}</td></tr>'
        for key, label, text in pairs
    )
    return f"<table>{body}</table>"


def _trades_html(stats: dict[str, Any] | str, currency: str) -> str:
    if isinstance(stats, str):
        return _note(stats, "trades")

    def cash(v: float | None) -> str:
        return "n/a" if v is None else format_value("money", v, currency)

    held = stats["avg_held"]
    return _rows(
        [
            ("trades.closed", "Closed trades", f"{stats['trades']:,}"),
            ("trades.open", "Still open at the end", f"{stats['open']:,}"),
            ("trades.winners", "Winners", f"{stats['winners']:,}"),
            ("trades.losers", "Losers", f"{stats['losers']:,}"),
            ("trades.breakeven", "Break-even", f"{stats['breakeven']:,}"),
            ("trades.long", "Long / short", f"{stats['long']} / {stats['short']}"),
            ("trades.win_rate", "Winners / closed", format_value("fraction", stats["win_rate"])),
            ("trades.avg_win", "Average win", cash(stats["avg_win"])),
            ("trades.avg_loss", "Average loss", cash(stats["avg_loss"])),
            ("trades.best", "Best trade", cash(stats["best"])),
            ("trades.worst", "Worst trade", cash(stats["worst"])),
            ("trades.gross_profit", "Gross profit", cash(stats["gross_profit"])),
            ("trades.gross_loss", "Gross loss", cash(stats["gross_loss"])),
            ("trades.net", "Net realized (after commissions)", cash(stats["net"])),
            ("trades.avg_held", "Average holding time", duration(held)),
        ]
    )


def _exposure_html(exp: dict[str, Any] | str) -> str:
    if isinstance(exp, str):
        return _note(exp, "exposure")
    n, k = exp["sessions"], exp["sessions_in_market"]
    share = exp["time_share"]
    time_text = (
        f"n/a ({exp.get('time_note')})" if share is None else format_value("fraction", share)
    )
    return _rows(
        [
            ("exposure.sessions", "Sessions with a position open", f"{k:,} of {n:,} ({k / n:.1%})"),
            ("exposure.time", "Regular trading hours with a position open", time_text),
            ("exposure.hours", "Hours with a position open", f"{exp['hours']:,.1f}"),
        ]
    )


def tearsheet_html(
    *,
    equity: pd.Series,
    summary: Mapping[str, Any] | None,
    positions: pd.DataFrame | None,
    title: str = "",
    calendar: str | None = None,
) -> str:
    """The page as a string. ``equity``: the curve ``equity.png`` plots (first point = the
    starting balance); ``summary``: the dict of ``summary.json``'s ``result`` for this venue;
    ``positions``: the venue's positions report; ``calendar``: its exchange calendar (session
    dates, partial months, trading hours; ``None``: UTC dates, those left out)."""
    import plotly.offline

    tz = calendar_timezone(calendar) if calendar else "UTC"
    currency = str((summary or {}).get("currency") or "")
    items = headline(summary)
    _, daily = session_equity(equity, tz)
    returns = daily_returns(equity, tz)
    rolling = rolling_sharpe(returns)
    title = title or "Backtest tearsheet"
    period = (
        f"{daily.index[0]:%Y-%m-%d} .. {daily.index[-1]:%Y-%m-%d} · {len(daily):,} sessions"
        if len(daily)
        else "no sessions"
    )
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="meta">{html.escape(period)} · {html.escape(currency or "?")} · session '
        f"dates in {html.escape(tz)} · the numbers are those of summary.json</div>",
        _headline_html(items),
        "<h2>Equity and drawdown</h2>",
        equity_plot(equity, tz, currency)
        if len(equity) > 1
        else _note("No equity curve: the run has fewer than two equity points.", "equity"),
        "<h2>Daily returns</h2>",
        returns_plot(returns) if len(returns) else _note("No session returns.", "returns"),
        f"<h2>Rolling Sharpe ({ROLLING_SESSIONS} sessions)</h2>",
        _note(rolling, "rolling-sharpe") if isinstance(rolling, str) else rolling_plot(rolling),
        "<h2>Monthly returns</h2>",
        _monthly_html(monthly_returns(equity, tz, calendar)),
        "<h2>Trades</h2>",
        _trades_html(trade_stats(positions), currency),
        "<h2>Exposure</h2>",
        _exposure_html(exposure(positions, equity, tz, calendar)),
        _note(
            "Equity is cash plus open positions marked at each session's last bar; returns, "
            "Sharpe and Sortino (annualized over 252 sessions) and the drawdown come from that "
            "curve; trades are the closed position cycles of positions.csv.",
            "about",
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        f"</head><body>{''.join(parts)}</body></html>\n"
    )


def write_tearsheet(
    path: Path,
    *,
    equity: pd.Series,
    summary: Mapping[str, Any] | None,
    positions: pd.DataFrame | None,
    title: str = "",
    calendar: str | None = None,
) -> None:
    """Write :func:`tearsheet_html` to ``path`` (UTF-8)."""
    page = tearsheet_html(
        equity=equity, summary=summary, positions=positions, title=title, calendar=calendar
    )
    Path(path).write_text(page, encoding="utf-8")
