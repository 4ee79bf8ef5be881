"""Migrate a legacy PostgreSQL bars table into the catalog, then validate it against the source.

make migrate DSN=postgresql://user:pass@host:5432/db [SYMBOLS=AAPL,MSFT] [BAR=1-MINUTE-LAST]
DATABASE_URL=postgresql://… python scripts/migrate.py 'symbols=[AAPL]' source.timezone=UTC

The DSN comes from the environment (DATABASE_URL); its password is never printed or written.
NautilusTrader is imported by ``migrate_table`` only once the server's statistics pass runs.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from ntrader import runs
from ntrader.errors import InputError
from ntrader.legacy_pg import MigrateSpec, migrate_table, scrub_hydra_files


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    scrub_hydra_files(ctx.run_dir, cfg.dsn)
    if cfg.catalog.get("as_of") is not None:  # a writer: refused before the database is asked
        raise InputError(
            f"catalog.as_of={cfg.catalog.as_of}: a catalog read as of a version is read-only",
            hint="catalog.as_of is for reads (scan, check, backtest); drop it to migrate",
        )
    spec = MigrateSpec.from_config(cfg)
    result = migrate_table(
        spec,
        cfg.catalog.path,
        ctx.run_dir,
        lock_timeout=float(cfg.catalog.lock_timeout),
        retain_days=float(cfg.catalog.retain_days),
        timings=ctx.timings,
    )
    ctx.counts.update(result.counts())
    print(result.text)
    result.check()
    return {"migrate": result.summary()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="migrate")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "migrate", body)


if __name__ == "__main__":
    runs.entry(main)
