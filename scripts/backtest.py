"""Run a NautilusTrader backtest from the catalog.

make backtest SYMBOL=AAPL [START=2024-01-02 END=2024-03-28 | DATES=2024q1] [STRATEGY=…]
make sweep SYMBOLS=AAPL,MSFT DATES=2024q1,2024q2 JOBS=2      (Hydra multirun)
"""

from __future__ import annotations

from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ntrader import runs
from ntrader.backtest import AutoFetch, BacktestSpec, run_backtest
from ntrader.backtest.rerun import prepare_rerun, verify_rerun
from ntrader.catalog import Catalog


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    # NautilusTrader's Rust logger is initialized once per process: in a sweep, later jobs' lines
    # would land in the first job's file, so sweep jobs keep only ntrader's log.
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    spec = BacktestSpec.from_config(cfg, log_dir=None if multirun else ctx.run_dir)
    catalog = Catalog.from_config(cfg.catalog)
    auto_fetch = AutoFetch.from_config(cfg.ibkr, cfg.get("corporate_actions"))
    if cfg.get("rerun_of"):  # make rerun: as of the original's catalog version if data changed
        setup = prepare_rerun(cfg.rerun_of, catalog)
        catalog, auto_fetch = setup.catalog, None if setup.as_of is not None else auto_fetch
    result = run_backtest(
        spec,
        catalog,
        out_dir=ctx.run_dir,
        auto_fetch=auto_fetch,
        tearsheet=bool(cfg.reports.tearsheet),
        equity_png=bool(cfg.reports.equity_png),
        timings=ctx.timings,
    )
    ctx.counts.update(result.counts())
    ctx.manifest.update(result.manifest)
    print(result.render())
    result.raise_for_problems()  # stopped early / orders rejected: exit 1, status incomplete
    summary = {**result.as_summary(), "counts": ctx.counts}
    if cfg.get("rerun_of"):  # make rerun: same data and numbers as the original run?
        verdict = verify_rerun(cfg.rerun_of, summary, result.manifest, runs.code(), setup)
        print(verdict.render())
        verdict.raise_for_difference(summary)
        summary["rerun"] = verdict.as_dict()
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="backtest")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "backtest", body)


if __name__ == "__main__":
    runs.entry(main)
