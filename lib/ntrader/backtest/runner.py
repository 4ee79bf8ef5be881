"""One backtest from a spec, start to finish: check and load the catalog data (fetching what is
missing from IBKR when asked), build and run the engine, analyse every venue, write the reports.

:func:`run_backtest` is what ``scripts/backtest.py`` calls and what a notebook calls::

    result = run_backtest(BacktestSpec.of("AAPL", strategy, start="2024-05-01"), "data/catalog")
    result.summary["pnl"], result.equity, result.fills

Every number of :attr:`BacktestResult.summary` (what ``summary.json`` holds under ``result``)
comes from the same engine as the reports and the equity curve.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from loguru import logger
from nautilus_trader.model.identifiers import Venue

from ntrader.backtest.autofetch import AutoFetch
from ntrader.backtest.checks import engine_stop, order_outcomes, problems
from ntrader.backtest.data import LackingFactors, LoadedData, MissingData, check_and_load
from ntrader.backtest.engine import analyse, build_engine, run_engine, stream_chunk
from ntrader.backtest.performance import (
    daily_equity,
    open_positions,
    risk_metrics,
    with_starting_point,
)
from ntrader.backtest.reports import generate_reports, write_reports
from ntrader.backtest.spec import BacktestSpec
from ntrader.backtest.summary import combine_venues, mark_to_market, summarize
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.corporate import ratio_label
from ntrader.catalog.inventory import iso
from ntrader.errors import ConnectionFailure, IncompleteRun
from ntrader.ibkr import nodata


@dataclass
class BacktestResult:
    """What a backtest gives back: the summary (one venue: its numbers; several: totals, with
    each venue's in :attr:`venues`), the daily mark-to-market equity of the first venue, the
    Nautilus reports as DataFrames and the files written (none without an ``out_dir``)."""

    spec: BacktestSpec
    summary: dict[str, Any]
    venues: dict[str, dict[str, Any]]
    equity: pd.Series
    reports: dict[str, pd.DataFrame]
    ranges: dict[str, tuple[Any, Any]]
    bars: int
    fetched_bars: int | None = None
    files: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    engine_stop: dict[str, Any] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    # splits the auto-fetch found in the stored history and repaired before the run
    corporate_actions: list[dict[str, Any]] = field(default_factory=list)
    # data.adjust: the price view and, per instrument, the splits undone / factor version used
    adjustment: dict[str, Any] = field(default_factory=dict)
    # manifest.json's data part: the files read, their hashes (ntrader.catalog.manifest)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every check passed (:mod:`ntrader.backtest.checks`)."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`IncompleteRun` (exit 1, ``status: incomplete``; ``summary.json`` keeps
        the result) when a check failed."""
        if self.problems:
            raise IncompleteRun(
                "; ".join(p["message"] for p in self.problems),
                hint="\n".join(p["hint"] for p in self.problems),
                result=self.as_summary(),
                problems=self.problems,
            )

    @property
    def fills(self) -> pd.DataFrame:
        """One row per fill (``fills.csv``)."""
        return self.reports["fills"]

    @property
    def positions(self) -> pd.DataFrame:
        return self.reports["positions"]

    @property
    def orders(self) -> pd.DataFrame:
        return self.reports["orders"]

    def counts(self) -> dict[str, Any]:
        """The ``counts`` of ``summary.json``."""
        out = {k: self.summary.get(k) for k in ("orders", "fills", "positions")}
        out = {"bars": self.bars, **out}
        if self.fetched_bars is not None:
            out["fetched_bars"] = self.fetched_bars
            out["splits_repaired"] = len(self.corporate_actions)
        return out

    def as_summary(self) -> dict[str, Any]:
        """The run's part of ``summary.json``."""
        s = self.spec
        return {
            "instruments": [str(b.instrument_id) for b in s.bar_types],
            "bar_types": [str(b) for b in s.bar_types],
            "range": {k: [str(a), str(b)] for k, (a, b) in self.ranges.items()},
            "strategy": {"path": s.strategy.path, "params": dict(s.strategy.params)},
            "result": self.summary,
            "engine": self.engine_stop,
            "venues": self.venues if len(self.venues) > 1 else None,
            "files": self.files,
            **({"corporate_actions": self.corporate_actions} if self.corporate_actions else {}),
            "adjustment": self.adjustment,
        }

    def render(self) -> str:
        """The console lines of a finished backtest."""
        r = self.summary

        def f(x: Any, spec: str = ",.2f") -> str:
            return "-" if x is None else format(x, spec)

        win = f"{r['win_rate']:.2%}" if r.get("win_rate") is not None else "-"
        stop = self.engine_stop
        bars = f(r.get("bars"), ",d")
        if stop.get("stopped_early"):
            bars = f"{stop['bars_processed']:,} of {stop['bars_loaded']:,} (STOPPED EARLY)"
        bad = (r.get("orders_rejected") or 0) + (r.get("orders_denied") or 0)
        lines = [
            f"Backtest {self.spec.names}",
            f"  bars {bars} · orders {f(r.get('orders'), ',d')}"
            + (f" ({bad:,} rejected/denied)" if bad else "")
            + f" · fills {f(r.get('fills'), ',d')} · positions {f(r.get('positions'), ',d')}",
            f"  PnL {f(r.get('pnl'))} ({f(r.get('return_pct'), '.2f')}%, marked to market: "
            f"realized {f(r.get('realized_pnl'))}, unrealized {f(r.get('unrealized_pnl'))}) · "
            f"final equity {f(r.get('final_equity'))} {r.get('currency', '')}",
            f"  Sharpe {f(r.get('sharpe'), '.2f')} over {f(r.get('sessions'), ',.0f')} sessions · "
            f"max drawdown {f(r.get('max_drawdown_pct'), '.2f')}% · win rate {win}",
        ]
        if r.get("sharpe") is None and (r.get("unavailable") or {}).get("sharpe"):
            lines.append(f"  (Sharpe n/a: {r['unavailable']['sharpe']})")
        view = self.adjustment.get("view")
        if view and view != "splits":
            used = [
                f"{iid} factors v{a['factors']['version']}"
                if "factors" in a
                else f"{iid} {len(a.get('splits_undone', []))} split(s) undone"
                for iid, a in self.adjustment.get("instruments", {}).items()
            ]
            lines.append(f"  prices: data.adjust={view} ({', '.join(used)})")
        lines += [f"  INCOMPLETE: {p['message']}" for p in self.problems]
        return "\n".join(lines)


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record how long the block took as ``timings[name]`` (seconds), also when it fails."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - t0, 4)


def run_backtest(
    spec: BacktestSpec,
    catalog: Catalog | str | os.PathLike[str],
    *,
    out_dir: Path | None = None,
    auto_fetch: AutoFetch | None = None,
    tearsheet: bool = True,
    equity_png: bool = True,
    timings: dict[str, float] | None = None,
    manifest_data: bool = True,
) -> BacktestResult:
    """Run ``spec`` on ``catalog`` (a :class:`Catalog` or its root).

    ``manifest_data``: hash the files the run reads (``result.manifest``, cached by name).

    ``out_dir``: where the reports (CSV, ``equity.png``, ``tearsheet.html``) go; ``None`` writes
    no file. ``timings`` is filled step by step (also when a step fails), as ``summary.json``
    shows it. Raises :class:`MissingData` (exit 1) when the catalog lacks data and
    ``auto_fetch`` is off or could not fill it."""
    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    t = timings if timings is not None else {}
    fetched: Fetched | None = None
    with timed(t, "availability+load"):
        try:
            data = check_and_load(
                cat,
                spec,
                retry_nodata=bool(auto_fetch and auto_fetch.retry_nodata),
                nodata_expiry_days=auto_fetch.nodata_expiry_days
                if auto_fetch
                else nodata.DEFAULT_EXPIRY_DAYS,
            )
        except MissingData as missing:
            if not (auto_fetch and missing.fetchable and missing.complete):
                raise
            fetched = _auto_fetch(cat, auto_fetch, missing, t)
            data = _load_with_factors(cat, spec, auto_fetch, t)
        except LackingFactors as lacking:
            if not auto_fetch:
                raise
            _auto_fetch_factors(cat, auto_fetch, lacking, t)
            data = check_and_load(cat, spec)
    with data:
        with timed(t, "manifest"):
            manifest = data.manifest(cat.url) if manifest_data else {}
        result = _run(spec, data, out_dir, tearsheet, equity_png, t, fetched)
        result.manifest = manifest
        return result


def _load_with_factors(
    cat: Catalog, spec: BacktestSpec, auto: AutoFetch, t: dict[str, float]
) -> LoadedData:
    """Load after an auto-fetch of bars: the factors too, if the view still lacks them."""
    try:
        return check_and_load(cat, spec)
    except LackingFactors as lacking:
        _auto_fetch_factors(cat, auto, lacking, t)
        return check_and_load(cat, spec)


def _auto_fetch_factors(
    catalog: Catalog, auto: AutoFetch, lacking: LackingFactors, timings: dict[str, float]
) -> None:
    """data.adjust=total_return without (enough) dividend factors: ask IB for them."""
    names = ", ".join(sorted({str(bt.instrument_id) for bt, _, _ in lacking.fetchable}))
    logger.info(f"data.adjust=total_return: fetching the dividend factors of {names} from IBKR")
    ask = dataclasses.replace(
        auto, corporate_actions=dataclasses.replace(auto.corporate_actions, dividends=True)
    )
    with timed(timings, "auto_fetch_factors"):
        try:
            ask.fetch(catalog, lacking.fetchable)
        except ConnectionFailure as exc:
            raise ConnectionFailure(
                f"{exc.message}; the backtest needs dividend factors:\n  "
                + lacking.message.replace("\n", "\n  "),
                hint=f"{exc.hint}\n(ibkr.auto_fetch=false turns fetching off)",
            ) from exc


def _run(
    spec: BacktestSpec,
    data: LoadedData,
    out_dir: Path | None,
    tearsheet: bool,
    equity_png: bool,
    t: dict[str, float],
    fetched: Fetched | None,
) -> BacktestResult:
    each = stream_chunk(spec.stream_chunk, len(data.sources))
    for bt, source in data.sources.items():
        logger.info(
            f"{source.count:,} bars of {bt} in the catalog, first {iso(source.first_ns)} "
            f"last {iso(source.last_ns)} ({t['availability+load']:.2f} s; streamed "
            + (f"{each:,} at a time)" if spec.stream_chunk else "all at once)")
        )
    if spec.adjust != "splits":
        logger.info(f"prices: data.adjust={spec.adjust}: " + _view_note(data))
    with timed(t, "build"):
        engine, venues = build_engine(spec, data)
    logger.info(f"running {spec.strategy.name} on {spec.names} …")
    try:
        with timed(t, "run"):
            account_errors = run_engine(engine, data)
        stop = engine_stop(engine, data.bar_count, account_errors)
        logger.info(f"run: {engine.iteration:,} bars in {t['run']:.2f} s")
        if stop["stopped_early"]:
            logger.error(
                f"NautilusTrader stopped the backtest at {stop['stopped_at']} after "
                f"{stop['bars_processed']:,} of {stop['bars_loaded']:,} bars: {stop['stop_reason']}"
            )
        with timed(t, "analysis"):
            per_venue, curves = _analyse(engine, venues, data, spec, stop.get("stopped_at_ns"))
        first = venues[0]
        equity = with_starting_point(
            curves[first],
            per_venue[str(first)]["starting_balance"],
            min((int(ts[0]) for ts, _ in data.closes.values() if len(ts)), default=None),
        )
        with timed(t, "reports"):
            frames = generate_reports(engine, first)
            files = {}
            if out_dir is not None:
                files = write_reports(
                    engine,
                    first,
                    out_dir,
                    tearsheet=tearsheet,
                    equity_png=equity_png,
                    title=f"{spec.strategy.name} · {spec.names}",
                    equity=equity,
                    frames=frames,
                    summary=per_venue[str(first)],
                )
        if files:
            logger.info(f"reports: {', '.join(sorted(files))} ({t['reports']:.2f} s)")
    finally:
        engine.dispose()
    summary = per_venue[str(first)] if len(venues) == 1 else combine_venues(per_venue)
    return BacktestResult(
        spec,
        summary,
        per_venue,
        equity,
        frames,
        dict(data.ranges),
        data.bar_count,
        fetched.bars if fetched else None,
        files,
        t,
        stop,
        problems(summary, stop, spec.checks),
        fetched.corporate_actions if fetched else [],
        data.adjustment(),
    )


def _view_note(data: LoadedData) -> str:
    parts = []
    for iid, v in sorted(data.views.items()):
        if v.factors is not None:
            parts.append(
                f"{iid} x dividend factors v{v.factors.version} ({len(v.factors.dividends)} "
                f"dividend(s), computed {v.factors.computed_at:%Y-%m-%d})"
            )
        elif v.mode == "none":
            undone = ", ".join(f"{ratio_label(x.ratio)} on {x.effective}" for x in v.splits)
            parts.append(f"{iid} splits undone: {undone or 'none recorded'}")
    return "; ".join(parts)


def _analyse(
    engine: Any, venues: list[Venue], data: LoadedData, spec: BacktestSpec, stop_ns: int | None
) -> tuple[dict[str, dict[str, Any]], dict[Venue, pd.Series]]:
    """Per venue: the summary (statistics + account-based risk metrics, on one marked-to-market
    basis) and the daily equity — up to where the engine stopped (``stop_ns``), not beyond."""
    per_venue: dict[str, dict[str, Any]] = {}
    curves: dict[Venue, pd.Series] = {}
    for venue in venues:
        analyse(engine, venue, fast=spec.fast_analysis, only_venue=len(venues) == 1)
        summary = summarize(engine, venue)
        summary.update(order_outcomes(engine, venue))
        closes = {k: v for k, v in data.closes.items() if k.endswith(f".{venue}")}
        if stop_ns is not None:
            # The bar the engine stopped on left a fill in the cache that the account never
            # booked (the error rejected the balance update): the ledger is consistent up to the
            # bar before it, so the equity, PnL and marks end there.
            closes = {k: (ts[ts < stop_ns], px[ts < stop_ns]) for k, (ts, px) in closes.items()}
        curves[venue] = daily_equity(engine, venue, closes, data.tz)
        risk = risk_metrics(
            curves[venue], summary["starting_balance"], spec.checks.min_sessions_for_ratios
        )
        mark_to_market(summary, curves[venue], open_positions(engine, venue, closes), risk)
        per_venue[str(venue)] = summary
    return per_venue, curves


def _auto_fetch(
    catalog: Catalog, auto: AutoFetch, missing: MissingData, timings: dict[str, float]
) -> Fetched:
    """Fill what the backtest lacks from IBKR, then carry on; the bars fetched and the splits
    repaired on the way."""
    wanted = ", ".join(f"{bt.instrument_id} {a}..{b}" for bt, a, b in missing.fetchable[:5])
    logger.info(f"the catalog lacks {wanted}: fetching from IBKR at {auto.settings.endpoint}")
    with timed(timings, "auto_fetch"):
        try:
            reports = auto.fetch(catalog, missing.fetchable)
        except ConnectionFailure as exc:
            raise ConnectionFailure(
                f"{exc.message}; the backtest needs data the catalog lacks:\n  "
                + str(missing).replace("\n", "\n  "),
                hint=f"{exc.hint}\n(ibkr.auto_fetch=false turns fetching off)",
            ) from exc
    n = sum(r.bars for r in reports)
    logger.info(
        f"Fetched {n:,} bars from IBKR in {timings['auto_fetch']:.1f} s — saved to the "
        "catalog; later runs load them from disk"
    )
    return Fetched(n, [e for r in reports for e in r.corporate_actions])


@dataclass(frozen=True)
class Fetched:
    """What a backtest's auto-fetch did: bars fetched, split events repaired."""

    bars: int
    corporate_actions: list[dict[str, Any]]
