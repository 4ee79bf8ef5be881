"""What the catalog holds.

make scan [FORMAT=table|json|csv]                     every bar type
make check SYMBOL=AAPL [START=… END=…] [FORMAT=…]    availability, calendar gaps, data health
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from ntrader import runs
from ntrader.catalog import Catalog, list_catalog, record, render_listing
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.quality import check_bar_type
from ntrader.sessions import parse_day
from ntrader.tabular import check_format


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    fmt = check_format(str(cfg.format))
    catalog = Catalog.from_config(cfg.catalog)
    if not cfg.symbol:
        with ctx.step("scan"):
            rows = [record(a) for a in list_catalog(catalog)]
        ctx.counts.update(bar_types=len(rows), rows=sum(r["rows"] for r in rows))
        print(render_listing(rows, fmt, catalog.url))
        return {"catalog": catalog.url, "bar_types": rows}
    inst, check, health = cfg.instruments, cfg.check, cfg.health
    instrument_id = resolve_instrument_id(cfg.symbol, inst.default_venue, inst.venues)
    with ctx.step("check"):
        report = check_bar_type(
            catalog,
            bar_type_for(instrument_id, cfg.bars.spec),
            start=parse_day(cfg.start, "START"),
            end=parse_day(cfg.end, "END"),
            calendar=check.calendar,
            hours=str(check.hours),
            min_gap_bars=int(check.min_gap_bars),
            jump_threshold=float(health.jump_threshold),
            zero_volume_run=int(health.zero_volume_run),
        )
    print(report.render(fmt, int(check.max_listed)))
    ctx.counts.update(gaps=len(report.fill), health_issues=len(report.health))
    if check.fail_on_gaps:
        report.raise_on_gaps()
    return {"catalog": catalog.url, "check": report.as_dict()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="scan")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "scan", body)


if __name__ == "__main__":
    runs.entry(main)
