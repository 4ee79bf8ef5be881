"""Fetch historical bars from Interactive Brokers into the catalog (pacing-aware, resumable).

make fetch SYMBOLS=AAPL,MSFT START=2024-01-02 END=2024-03-28 [BAR=1-MINUTE-LAST]
make fetch SET=mega_caps DATES=last_session            # cron
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from ntrader import runs
from ntrader.catalog.catalog import Catalog
from ntrader.errors import InputError
from ntrader.ibkr.client import IbkrSettings
from ntrader.ibkr.fetcher import FetchTarget, fetch_ranges
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.sessions import parse_day
from ntrader.tabular import text_table

COLUMNS = (
    "bar_type",
    "requests",
    "bars",
    "sessions_fetched",
    "nodata_sessions",
    "retries",
    "seconds",
)


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    catalog = Catalog(cfg.catalog.path, lock_timeout=float(cfg.catalog.lock_timeout))
    symbols = list(cfg.symbols or []) or list(cfg.instruments.symbols or [])
    if not symbols:
        raise InputError("no symbols to fetch", hint="pass SYMBOLS=AAPL,MSFT or SET=mega_caps")
    start, end = parse_day(cfg.dates.start, "START"), parse_day(cfg.dates.end, "END")
    if start is None or end is None:
        raise InputError("fetch needs a date range", hint="pass START=… END=… or DATES=…")
    if start > end:
        raise InputError(f"START {start} is after END {end}", hint="swap them")
    targets = [
        FetchTarget(
            bar_type_for(
                resolve_instrument_id(s, cfg.instruments.default_venue, cfg.instruments.venues),
                cfg.bars.spec,
            ),
            start,
            end,
        )
        for s in symbols
    ]
    settings = IbkrSettings.from_config(cfg.ibkr)
    with ctx.step("fetch"):
        reports = fetch_ranges(
            catalog,
            settings,
            [(t.bar_type, t.start, t.end) for t in targets],
            use_rth=bool(cfg.ibkr.use_rth),
            chunk_sessions=cfg.ibkr.chunk_sessions,
            pacing_pause_s=float(cfg.pacing_pause_s),
        )
    rows = [r.as_dict() for r in reports]
    ctx.counts.update(
        requests=sum(r.requests for r in reports),
        bars=sum(r.bars for r in reports),
        nodata_sessions=sum(r.nodata_sessions for r in reports),
    )
    print(f"Fetched {start} .. {end} from IBKR {settings.endpoint} into {catalog.url}")
    print(text_table(rows, COLUMNS))
    return {"catalog": catalog.url, "range": [str(start), str(end)], "instruments": rows}


@hydra.main(version_base="1.3", config_path="../conf", config_name="fetch")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "fetch", body)


if __name__ == "__main__":
    runs.entry(main)
