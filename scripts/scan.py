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
from ntrader.symbols import bar_type_text, instrument_id_text, instrument_of
from ntrader.tabular import check_format


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    fmt = check_format(str(cfg.format))
    catalog = Catalog.from_config(cfg.catalog)
    inst = cfg.instruments
    bar_type = None
    if cfg.symbol:
        iid = instrument_id_text(cfg.symbol, inst.default_venue, inst.venues)
        bar_type = bar_type_text(iid, cfg.bars.spec)
    if cfg.repair or bar_type is None:  # a reader: a catalog that does not exist is an error
        sym = None if bar_type is None else instrument_of(bar_type)
        catalog.require_exists(sym, str(cfg.bars.spec))  # (check: after its arguments)
    if cfg.repair:
        with ctx.step("repair"):
            moved = catalog.quarantine_corrupt([bar_type] if bar_type else None)
        ctx.counts.update(quarantined=len(moved))
        lines = [f"moved {m.path} to {m.moved_to}: {m.reason}" for m in moved]
        print("\n".join(lines) or f"no corrupt file in {catalog.url}")
        return {"catalog": catalog.url, "quarantined": [m.as_dict() for m in moved]}
    if bar_type is None:
        with ctx.step("scan"):
            rows = [record(a) for a in list_catalog(catalog)]
        ctx.counts.update(bar_types=len(rows), rows=sum(r["rows"] for r in rows))
        print(render_listing(rows, fmt, catalog.url))
        return {"catalog": catalog.url, "bar_types": rows}
    from ntrader.ibkr import nodata  # check only: calendars need pandas (tests/test_startup.py)
    from ntrader.quality import check_bar_type
    from ntrader.sessions import parse_day

    check, health = cfg.check, cfg.health
    expiry = nodata.parse_expiry(cfg.ibkr.nodata_expiry_days)
    with ctx.step("check"):
        answered = nodata.current(catalog, bar_type, expiry_days=expiry)
        report = check_bar_type(
            catalog,
            bar_type,
            start=parse_day(cfg.start, "START"),
            end=parse_day(cfg.end, "END"),
            calendar=check.calendar,
            hours=str(check.hours),
            min_gap_bars=int(check.min_gap_bars),
            jump_threshold=float(health.jump_threshold),
            zero_volume_run=int(health.zero_volume_run),
            no_data=answered,
            nodata_expiry_days=expiry,
        )
    print(report.render(fmt, int(check.max_listed)))
    ctx.counts.update(
        gaps=len(report.fill), no_data=len(report.no_data), health_issues=len(report.health)
    )
    if check.fail_on_gaps:
        report.raise_on_gaps()
    return {"catalog": catalog.url, "check": report.as_dict()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="scan")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "scan", body)


if __name__ == "__main__":
    runs.entry(main)
