"""Import a CSV file of OHLCV bars into the catalog.

make import CSV=bars.csv SYMBOL=NVDA.NASDAQ [BAR=1-MINUTE-LAST] [MODE=skip|overwrite|merge]
python scripts/import_csv.py csv.path=bars.csv symbol=NVDA mode=merge
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from ntrader import runs
from ntrader.catalog.catalog import Catalog
from ntrader.importing.importer import import_csv
from ntrader.importing.reader import CsvSpec
from ntrader.instruments import bar_type_for, resolve_instrument_id


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    catalog = Catalog(cfg.catalog.path, lock_timeout=float(cfg.catalog.lock_timeout))
    instrument_id = resolve_instrument_id(
        cfg.symbol, cfg.instruments.default_venue, cfg.instruments.venues
    )
    bar_type = bar_type_for(instrument_id, cfg.bars.spec)
    c = cfg.csv
    spec = CsvSpec(
        tz=c.tz,
        label=c.label,
        columns={k: str(v) for k, v in c.columns.items() if v is not None},
        timestamp_format=c.timestamp_format,
        epoch_unit=c.epoch_unit,
        delimiter=c.delimiter,
        max_errors=int(c.max_errors),
        price_precision=cfg.price_precision,
    )
    with ctx.step("import"):
        report = import_csv(
            catalog,
            c.path,
            instrument_id,
            bar_type,
            mode=cfg.mode,
            spec=spec,
            price_precision=cfg.price_precision,
        )
    w = report.write
    ctx.counts.update(
        rows_read=report.rows_read,
        rows_added=w.rows_added,
        rows_replaced=w.rows_replaced,
        rows_removed=w.rows_removed,
        rows_skipped=w.rows_skipped,
        files_written=w.files_written,
        bytes_written=w.bytes_written,
    )
    rate = report.rows_read / max(ctx.timings["import"], 1e-9)
    skipped = f"{w.rows_skipped:,}"
    if w.rows_skipped:
        skipped += " (already in the catalog; MODE=merge or MODE=overwrite replaces them)"
    created = " · instrument created" if w.instrument_created else ""
    print(
        f"Imported {report.csv} -> {report.bar_type} (catalog {catalog.url})\n"
        f"  rows read {report.rows_read:,} · added {w.rows_added:,} · replaced "
        f"{w.rows_replaced:,} · removed {w.rows_removed:,} · skipped {skipped}\n"
        f"  range {report.first} .. {report.last}\n"
        f"  files written {w.files_written} ({w.bytes_written:,} bytes), replaced "
        f"{w.files_removed}{created}\n"
        f"  {ctx.timings['import']:.2f} s ({rate:,.0f} rows/s)"
    )
    return {"import": report.as_dict(), "catalog": catalog.url}


@hydra.main(version_base="1.3", config_path="../conf", config_name="import_csv")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "import_csv", body)


if __name__ == "__main__":
    runs.entry(main)
