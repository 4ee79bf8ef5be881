"""The plotly figures of ``tearsheet.html`` as HTML fragments (plotly.js itself is inlined once
by :mod:`ntrader.backtest.tearsheet`): equity with its drawdown, daily returns, rolling Sharpe.

Every x axis is a date axis whose ticks read ``YYYY-MM-DD``; amounts carry thousands separators.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ntrader.backtest.performance import drawdown_pct
from ntrader.backtest.tearsheet_panels import ROLLING_SESSIONS

_CONFIG = {"displaylogo": False, "responsive": True}
SHORT_SPAN_DAYS = 14  # up to this span, tick every date (plotly would repeat a day's date)


def _local(index: pd.Index, tz: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(index).tz_convert(tz).tz_localize(None)


def date_axis(x: pd.DatetimeIndex, hover: str = "%Y-%m-%d") -> dict[str, Any]:
    """A date x axis: ticks read ``YYYY-MM-DD``; a short run gets one tick per date, at its
    last point (plotly would repeat a date at 12-hour ticks, or show none within one day)."""
    axis: dict[str, Any] = {"type": "date", "tickformat": "%Y-%m-%d", "hoverformat": hover}
    x = pd.DatetimeIndex(x)
    if len(x) and x.max() - x.min() <= pd.Timedelta(days=SHORT_SPAN_DAYS):
        last = pd.Series(x, index=x.normalize()).groupby(level=0).last()
        axis.update(
            tickmode="array",
            tickvals=[f"{t:%Y-%m-%d %H:%M:%S}" for t in last],
            ticktext=[f"{d:%Y-%m-%d}" for d in last.index],
        )
    return axis


def _plot(fig: Any, div_id: str) -> str:
    import plotly.io as pio

    return str(
        pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG)
    )


def equity_plot(equity: pd.Series, tz: str, currency: str) -> str:
    from plotly.subplots import make_subplots

    x = _local(equity.index, tz)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.08,
        subplot_titles=("Equity, marked to market at each session's last bar", "Drawdown"),
    )
    money = f"%{{y:,.2f}} {currency}".strip()
    fig.add_scatter(
        x=x,
        y=equity.to_numpy(),
        mode="lines+markers",
        name="equity",
        line={"color": "#1f77b4"},
        hovertemplate=f"%{{x|%Y-%m-%d %H:%M}}<br>{money}<extra></extra>",
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=x,
        y=drawdown_pct(equity).to_numpy(),
        mode="lines",
        fill="tozeroy",
        name="drawdown",
        line={"color": "#d62728"},
        hovertemplate="%{x|%Y-%m-%d}<br>%{y:.2f}%<extra></extra>",
        row=2,
        col=1,
    )
    label = f"equity ({currency})" if currency else "equity"
    fig.update_yaxes(title_text=label, tickformat=",.0f", separatethousands=True, row=1, col=1)
    fig.update_yaxes(title_text="drawdown", ticksuffix="%", tickformat=".2f", row=2, col=1)
    fig.update_xaxes(**date_axis(x, "%Y-%m-%d %H:%M"))
    fig.update_xaxes(title_text=f"time ({tz})", row=2, col=1)
    fig.update_layout(height=560, showlegend=False, margin={"t": 40, "b": 40, "l": 80, "r": 20})
    return _plot(fig, "equity-plot")


def returns_plot(returns: pd.Series) -> str:
    import plotly.graph_objects as go

    pct = returns.to_numpy() * 100.0
    fig = go.Figure(
        go.Bar(
            x=pd.DatetimeIndex(returns.index),
            y=pct,
            marker_color=["#1a7f37" if v >= 0 else "#c0392b" for v in pct],
            hovertemplate="%{x|%Y-%m-%d}<br>%{y:.2f}%<extra></extra>",
        )
    )
    fig.update_xaxes(**date_axis(pd.DatetimeIndex(returns.index)), title_text="session")
    fig.update_yaxes(title_text="daily return", ticksuffix="%", tickformat=".2f")
    fig.update_layout(height=300, margin={"t": 20, "b": 40, "l": 80, "r": 20})
    return _plot(fig, "returns-plot")


def rolling_plot(rolling: pd.Series) -> str:
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scatter(
            x=pd.DatetimeIndex(rolling.index),
            y=rolling.to_numpy(),
            mode="lines",
            hovertemplate="%{x|%Y-%m-%d}<br>%{y:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(**date_axis(pd.DatetimeIndex(rolling.index)), title_text="session")
    fig.update_yaxes(title_text=f"Sharpe ({ROLLING_SESSIONS} sessions)", tickformat=".2f")
    fig.update_layout(height=300, margin={"t": 20, "b": 40, "l": 80, "r": 20})
    return _plot(fig, "rolling-sharpe-plot")
