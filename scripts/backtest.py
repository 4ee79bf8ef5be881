"""Run a NautilusTrader backtest from the catalog.

make backtest SYMBOL=AAPL [START=2024-01-02 END=2024-03-28 | DATES=2024q1] [STRATEGY=…]
make sweep SYMBOLS=AAPL,MSFT DATES=2024q1,2024q2 JOBS=2      (Hydra multirun)
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ntrader import runs
from ntrader.backtest.engine import (
    BacktestSpec,
    FeeSpec,
    MissingData,
    StrategySpec,
    VenueSpec,
    analyse,
    build_engine,
    check_and_load,
    run_engine,
    timed,
)
from ntrader.backtest.performance import daily_equity, risk_metrics, with_starting_point
from ntrader.backtest.reports import combine_venues, summarize, write_reports
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import iso
from ntrader.errors import ConnectionFailure, InputError
from ntrader.ibkr.client import IbkrSettings
from ntrader.ibkr.fetcher import fetch_ranges
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.sessions import parse_day


def make_spec(cfg: DictConfig, ctx: runs.RunContext) -> BacktestSpec:
    symbols = [cfg.symbol] if cfg.symbol else list(cfg.instruments.symbols or [])
    if not symbols:
        raise InputError(
            "no instrument to backtest", hint="pass SYMBOL=AAPL, or SET=<conf/instruments set>"
        )
    venues = cfg.instruments.venues
    bar_types = [
        bar_type_for(resolve_instrument_id(s, cfg.instruments.default_venue, venues), cfg.bars.spec)
        for s in symbols
    ]
    st, v = cfg.strategy, cfg.venue
    params = OmegaConf.to_container(st.params, resolve=True) or {}
    return BacktestSpec(
        bar_types=bar_types,
        strategy=StrategySpec(str(st.path), str(st.config_path), dict(params)),  # type: ignore[arg-type]
        venue=VenueSpec(
            account_type=str(v.account_type),
            oms_type=str(v.oms_type),
            base_currency=str(v.base_currency),
            starting_balance=float(v.starting_balance),
            leverage=float(v.leverage),
            fees=FeeSpec(float(v.fees.per_share), float(v.fees.minimum), float(v.fees.max_pct)),
        ),
        start=parse_day(cfg.dates.start, "START"),
        end=parse_day(cfg.dates.end, "END"),
        allow_missing_sessions=bool(cfg.data.allow_missing_sessions),
        calendar=cfg.data.calendar,
        trader_id=str(cfg.engine.trader_id),
        log_level=str(cfg.engine.log_level),
        log_level_file=cfg.engine.log_level_file,
        # NautilusTrader's Rust logger is initialized once per process: in a sweep, later jobs'
        # lines would land in the first job's file, so sweep jobs keep only ntrader's log.
        log_dir=None if _in_multirun() else ctx.run_dir,
        fast_analysis=bool(cfg.engine.fast_analysis),
    )


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return bool(HydraConfig.get().mode == RunMode.MULTIRUN)


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    catalog = Catalog(cfg.catalog.path, lock_timeout=float(cfg.catalog.lock_timeout))
    spec = make_spec(cfg, ctx)
    t = ctx.timings
    names = ", ".join(str(b) for b in spec.bar_types)
    with timed(t, "availability+load"):
        try:
            data = check_and_load(catalog, spec)
        except MissingData as missing:
            if not (cfg.ibkr.auto_fetch and missing.fetchable and missing.complete):
                raise
            _auto_fetch(catalog, cfg, missing, ctx)
            data = check_and_load(catalog, spec)
    for bt, bars in data.bars.items():
        runs.logger.info(
            f"Loaded {len(bars):,} bars of {bt} from catalog, first {iso(bars[0].ts_event)} "
            f"last {iso(bars[-1].ts_event)} ({t['availability+load']:.2f} s)"
        )
    with timed(t, "build"):
        engine, venues = build_engine(spec, data)
    runs.logger.info(f"running {spec.strategy.path.rsplit(':', 1)[-1]} on {names} …")
    try:
        with timed(t, "run"):
            run_engine(engine)
        runs.logger.info(f"run: {engine.iteration:,} bars in {t['run']:.2f} s")
        with timed(t, "analysis"):
            per_venue: dict[str, dict[str, Any]] = {}
            curves = {}
            for venue in venues:
                analyse(engine, venue, fast=spec.fast_analysis, only_venue=len(venues) == 1)
                summary = summarize(engine, venue)
                closes = {k: v for k, v in data.closes.items() if k.endswith(f".{venue}")}
                curves[venue] = daily_equity(engine, venue, closes, data.tz)
                summary.update(risk_metrics(curves[venue], summary["starting_balance"]))
                per_venue[str(venue)] = summary
        with timed(t, "reports"):
            files = write_reports(
                engine,
                venues[0],
                ctx.run_dir,
                tearsheet=bool(cfg.reports.tearsheet),
                equity_png=bool(cfg.reports.equity_png),
                title=f"{spec.strategy.path.rsplit(':', 1)[-1]} · {names}",
                equity=with_starting_point(
                    curves[venues[0]],
                    per_venue[str(venues[0])]["starting_balance"],
                    min((int(ts[0]) for ts, _ in data.closes.values() if len(ts)), default=None),
                ),
            )
        runs.logger.info(f"reports: {', '.join(sorted(files))} ({t['reports']:.2f} s)")
    finally:
        engine.dispose()
    result = per_venue[str(venues[0])] if len(venues) == 1 else combine_venues(per_venue)
    ctx.counts.update(
        bars=data.bar_count,
        orders=result.get("orders"),
        fills=result.get("fills"),
        positions=result.get("positions"),
    )
    _print_result(result, names)
    return {
        "instruments": [str(b.instrument_id) for b in spec.bar_types],
        "bar_types": [str(b) for b in spec.bar_types],
        "range": {k: [str(a), str(b)] for k, (a, b) in data.ranges.items()},
        "strategy": {"path": spec.strategy.path, "params": dict(spec.strategy.params)},
        "result": result,
        "venues": per_venue if len(venues) > 1 else None,
        "files": files,
    }


def _auto_fetch(
    catalog: Catalog, cfg: DictConfig, missing: MissingData, ctx: runs.RunContext
) -> None:
    """Fill what the backtest lacks from IBKR (ibkr.auto_fetch=true), then carry on."""
    settings = IbkrSettings.from_config(cfg.ibkr)
    wanted = ", ".join(f"{bt.instrument_id} {a}..{b}" for bt, a, b in missing.fetchable[:5])
    runs.logger.info(f"the catalog lacks {wanted}: fetching from IBKR at {settings.endpoint}")
    with ctx.step("auto_fetch"):
        try:
            reports = fetch_ranges(
                catalog,
                settings,
                missing.fetchable,
                use_rth=bool(cfg.ibkr.use_rth),
                chunk_sessions=cfg.ibkr.chunk_sessions,
            )
        except ConnectionFailure as exc:
            raise ConnectionFailure(
                f"{exc.message}; the backtest needs data the catalog lacks:\n  "
                + str(missing).replace("\n", "\n  "),
                hint=f"{exc.hint}\n(ibkr.auto_fetch=false turns fetching off)",
            ) from exc
    n = ctx.counts["fetched_bars"] = sum(r.bars for r in reports)
    runs.logger.info(
        f"Fetched {n:,} bars from IBKR in {ctx.timings['auto_fetch']:.1f} s — saved to the "
        "catalog; later runs load them from disk"
    )


def _print_result(r: dict[str, Any], names: str) -> None:
    def f(x: Any, spec: str = ",.2f") -> str:
        return "-" if x is None else format(x, spec)

    print(
        f"Backtest {names}\n"
        f"  bars {f(r.get('bars'), ',d')} · orders {f(r.get('orders'), ',d')} · fills "
        f"{f(r.get('fills'), ',d')} · positions {f(r.get('positions'), ',d')}\n"
        f"  PnL {f(r.get('pnl'))} ({f(r.get('return_pct'), '.2f')}%) · Sharpe "
        f"{f(r.get('sharpe'), '.2f')} over {f(r.get('sessions'), ',.0f')} sessions · max drawdown "
        f"{f(r.get('max_drawdown_pct'), '.2f')}% · "
        f"win rate {f(r.get('win_rate'), '.2%') if r.get('win_rate') is not None else '-'}"
    )


@hydra.main(version_base="1.3", config_path="../conf", config_name="backtest")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "backtest", body)


if __name__ == "__main__":
    runs.entry(main)
