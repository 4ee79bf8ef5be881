"""Import a CSV file of OHLCV bars into the catalog.

make import CSV=bars.csv SYMBOL=NVDA.NASDAQ [BAR=1-MINUTE-LAST] [MODE=skip|overwrite|merge]
make import CSV='incoming/*.csv' SYMBOL={stem}     # many files, one process (AAPL.csv -> AAPL)
python scripts/import_csv.py csv.path=bars.csv symbol=NVDA mode=merge
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from ntrader import runs
from ntrader.catalog import Catalog
from ntrader.importing import CsvSpec, import_batch, import_csv, is_batch
from ntrader.symbols import bar_type_text, instrument_id_text


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    catalog = Catalog.from_config(cfg.catalog)
    inst = cfg.instruments
    spec = CsvSpec.from_config(cfg.csv, cfg.price_precision)
    if is_batch(cfg.csv.path, cfg.symbol):
        with ctx.step("import"):
            batch = import_batch(
                catalog,
                cfg.csv.path,
                cfg.symbol,
                cfg.bars.spec,
                mode=cfg.mode,
                spec=spec,
                price_precision=cfg.price_precision,
                symbol_pattern=cfg.csv.get("symbol_pattern"),
                default_venue=inst.default_venue,
                venues=inst.venues,
            )
        ctx.counts.update(batch.counts())
        print(batch.render(catalog.url))
        return batch.finish({"import": batch.as_dict(), "catalog": catalog.url})
    instrument_id = instrument_id_text(cfg.symbol, inst.default_venue, inst.venues)
    with ctx.step("import"):
        report = import_csv(
            catalog,
            cfg.csv.path,
            instrument_id,
            bar_type_text(instrument_id, cfg.bars.spec),
            mode=cfg.mode,
            spec=spec,
            price_precision=cfg.price_precision,
        )
    ctx.counts.update(report.counts())
    print(report.render(catalog.url, ctx.timings["import"]))
    return {"import": report.as_dict(), "catalog": catalog.url}


@hydra.main(version_base="1.3", config_path="../conf", config_name="import_csv")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "import_csv", body)


if __name__ == "__main__":
    runs.entry(main)
