"""CSV file -> catalog: parse and validate (``reader``), then write under the conflict mode."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from loguru import logger
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from tqdm import tqdm

from ntrader.catalog.catalog import Catalog, WriteResult
from ntrader.catalog.inventory import iso
from ntrader.errors import InputError
from ntrader.importing.reader import CsvSpec, read_csv_bars
from ntrader.instruments import bar_step, make_equity

PROGRESS_MIN_BYTES = 20_000_000  # show progress bars (on a terminal) from ~400k rows up


@dataclass(frozen=True)
class ImportReport:
    csv: str
    bar_type: str
    rows_read: int
    first: str | None
    last: str | None
    columns: dict[str, str]
    ignored_columns: list[str]
    write: WriteResult

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["write"] = self.write.as_dict()
        return out


def import_csv(
    catalog: Catalog,
    path: str | os.PathLike[str],
    instrument_id: InstrumentId,
    bar_type: BarType,
    *,
    mode: str = "skip",
    spec: CsvSpec | None = None,
    price_precision: int | None = None,
) -> ImportReport:
    """Import one CSV file of bars for ``bar_type``; the catalog is untouched if it is invalid."""
    spec = spec or CsvSpec()
    csv_path = Path(path)
    if not csv_path.is_file():
        raise InputError(f"CSV file not found: {csv_path}", hint="check the CSV=… path")
    step = bar_step(bar_type)
    size = csv_path.stat().st_size
    show = sys.stderr.isatty() and size >= PROGRESS_MIN_BYTES
    progress = tqdm(
        total=size, unit="B", unit_scale=True, desc=f"parse {csv_path.name}", disable=not show
    )
    with progress:
        parsed = read_csv_bars(
            csv_path, bar_interval_ns=step.interval_ns, calendar_days=step.calendar_days, spec=spec
        )
        progress.update(size)
    bars = parsed.bars
    logger.info(
        f"read {parsed.rows_read:,} rows from {csv_path.name} "
        f"(columns: {', '.join(f'{k}={v}' for k, v in parsed.columns.items())})"
    )
    if parsed.ignored_columns:
        logger.info(f"ignored columns: {', '.join(parsed.ignored_columns)}")
    precision = bars.price_precision if price_precision is None else int(price_precision)
    if price_precision is not None and bars.price_precision > precision:
        raise InputError(
            f"the CSV has prices with {bars.price_precision} decimals but price_precision="
            f"{precision} was asked for",
            hint="drop the price_precision override or round the data",
        )
    instrument = make_equity(instrument_id, precision)
    with tqdm(total=len(bars), unit="bar", unit_scale=True, desc="write", disable=not show) as p:
        result = catalog.write_bars(bar_type, bars, mode=mode, instrument=instrument)
        p.update(len(bars))
    return ImportReport(
        csv=str(csv_path),
        bar_type=str(bar_type),
        rows_read=parsed.rows_read,
        first=iso(bars.first_ns, spec.tz, daily=step.daily) if len(bars) else None,
        last=iso(bars.last_ns, spec.tz, daily=step.daily) if len(bars) else None,
        columns=dict(parsed.columns),
        ignored_columns=list(parsed.ignored_columns),
        write=result,
    )
