"""Fetch historical bars from Interactive Brokers into the catalog (pacing-aware, resumable).

make fetch SYMBOLS=AAPL,MSFT START=2024-01-02 END=2024-03-28 [BAR=1-MINUTE-LAST]
make fetch SET=mega_caps DATES=last_session            # cron
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from ntrader import runs
from ntrader.catalog import Catalog
from ntrader.ibkr import FetchJob, run_fetch


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    catalog = Catalog.from_config(cfg.catalog)
    job = FetchJob.from_config(cfg)
    with ctx.step("fetch"):
        result = run_fetch(job, catalog)
    ctx.counts.update(result.counts())
    print(result.render())
    return result.as_summary()


@hydra.main(version_base="1.3", config_path="../conf", config_name="fetch")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "fetch", body)


if __name__ == "__main__":
    runs.entry(main)
