"""What the catalog holds.

make scan [FORMAT=table|json|csv]                     every bar type
make check SYMBOL=AAPL [START=… END=…] [FORMAT=…]    availability, calendar gaps, data health
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from ntrader import runs
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import COLUMNS, list_catalog, record
from ntrader.errors import DataError
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.quality.checkup import CheckReport, check_bar_type
from ntrader.sessions import parse_day
from ntrader.tabular import check_format, csv_text, json_text, text_table

GAP_COLUMNS = ("kind", "first", "last", "size", "command")


def render_check(report: CheckReport, fmt: str, max_listed: int) -> str:
    d = report.as_dict()
    if fmt == "json":
        return json_text(d)
    if fmt == "csv":
        return csv_text(d["gaps"], GAP_COLUMNS)
    a, s, b = d["availability"], d["sessions"], d["bars"]
    lines = [
        f"{a['bar_type']}",
        f"  catalog   {a['first']} .. {a['last']} · {a['rows']:,} bars in {a['files']} files "
        f"({a['bytes']:,} bytes)",
        f"  checked   {d['range']['start']} .. {d['range']['end']} against {d['calendar']}: "
        f"{s['present']}/{s['expected']} sessions, {b['present']:,}/{b['expected']:,} bars"
        + (f" (+{b['outside_hours']:,} outside the checked hours)" if b["outside_hours"] else ""),
    ]
    gaps = d["gaps"]
    if gaps:
        lines.append(f"  gaps      {len(gaps)} (commands fill them)")
        lines.append(text_table(gaps[:max_listed], GAP_COLUMNS))
        if len(gaps) > max_listed:
            lines.append(f"… {len(gaps) - max_listed} more (FORMAT=json lists all)")
    else:
        lines.append("  gaps      none")
    if d["health"]:
        lines.append("  health")
        for h in d["health"]:
            ex = ", ".join(h["examples"][:3])
            lines.append(f"    {h['kind']}: {h['message']}" + (f" (e.g. {ex})" if ex else ""))
    else:
        lines.append("  health    ok")
    return "\n".join(lines)


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    fmt = check_format(str(cfg.format))
    catalog = Catalog(cfg.catalog.path, lock_timeout=float(cfg.catalog.lock_timeout))
    if not cfg.symbol:
        with ctx.step("scan"):
            rows = [record(a) for a in list_catalog(catalog)]
        ctx.counts.update(bar_types=len(rows), rows=sum(r["rows"] for r in rows))
        if fmt == "json":
            print(json_text(rows))
        elif fmt == "csv":
            print(csv_text(rows, COLUMNS))
        elif rows:
            print(text_table(rows, COLUMNS))
        else:
            print(f"catalog {catalog.url} holds no bars yet (make import … or make fetch …)")
        return {"catalog": catalog.url, "bar_types": rows}
    instrument_id = resolve_instrument_id(
        cfg.symbol, cfg.instruments.default_venue, cfg.instruments.venues
    )
    bar_type = bar_type_for(instrument_id, cfg.bars.spec)
    with ctx.step("check"):
        report = check_bar_type(
            catalog,
            bar_type,
            start=parse_day(cfg.start, "START"),
            end=parse_day(cfg.end, "END"),
            calendar=cfg.check.calendar,
            hours=str(cfg.check.hours),
            min_gap_bars=int(cfg.check.min_gap_bars),
            jump_threshold=float(cfg.health.jump_threshold),
            zero_volume_run=int(cfg.health.zero_volume_run),
        )
    print(render_check(report, fmt, int(cfg.check.max_listed)))
    d = report.as_dict()
    ctx.counts.update(gaps=len(d["gaps"]), health_issues=len(d["health"]))
    if d["gaps"] and cfg.check.fail_on_gaps:
        raise DataError(
            f"{len(d['gaps'])} gap(s) in {bar_type}",
            hint="run the listed commands to fill them (check.fail_on_gaps=true asked for exit 1)",
        )
    return {"catalog": catalog.url, "check": d}


@hydra.main(version_base="1.3", config_path="../conf", config_name="scan")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "scan", body)


if __name__ == "__main__":
    runs.entry(main)
