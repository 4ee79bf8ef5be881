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
from ntrader.instruments import bar_step, bar_type_for, make_equity, resolve_instrument_id

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

    def counts(self) -> dict[str, int]:
        """The ``counts`` of ``summary.json``."""
        w = self.write
        return {
            "rows_read": self.rows_read,
            "rows_added": w.rows_added,
            "rows_replaced": w.rows_replaced,
            "rows_removed": w.rows_removed,
            "rows_skipped": w.rows_skipped,
            "files_written": w.files_written,
            "bytes_written": w.bytes_written,
        }

    def render(self, catalog_url: str, seconds: float) -> str:
        """What an import prints: rows read/added/replaced/removed/skipped, range, files, speed."""
        w = self.write
        skipped = f"{w.rows_skipped:,}"
        if w.rows_skipped:
            skipped += " (already in the catalog; MODE=merge or MODE=overwrite replaces them)"
        created = " · instrument created" if w.instrument_created else ""
        rate = self.rows_read / max(seconds, 1e-9)
        return (
            f"Imported {self.csv} -> {self.bar_type} (catalog {catalog_url})\n"
            f"  rows read {self.rows_read:,} · added {w.rows_added:,} · replaced "
            f"{w.rows_replaced:,} · removed {w.rows_removed:,} · skipped {skipped}\n"
            f"  range {self.first} .. {self.last}\n"
            f"  files written {w.files_written} ({w.bytes_written:,} bytes), replaced "
            f"{w.files_removed}{created}\n"
            f"  {seconds:.2f} s ({rate:,.0f} rows/s)"
        )


def import_csv(
    catalog: Catalog,
    path: str | os.PathLike[str],
    instrument_id: InstrumentId | str,
    bar_type: BarType | None = None,
    *,
    mode: str = "skip",
    spec: CsvSpec | None = None,
    price_precision: int | None = None,
) -> ImportReport:
    """Import one CSV file of bars for ``bar_type``; the catalog is untouched if it is invalid.

    ``instrument_id``: an ``InstrumentId``, ``AAPL.NASDAQ`` or a bare ``AAPL`` (default venue);
    ``bar_type`` defaults to its 1-minute bars."""
    if not isinstance(instrument_id, InstrumentId):
        instrument_id = resolve_instrument_id(instrument_id)
    bar_type = bar_type or bar_type_for(instrument_id, "1-MINUTE-LAST")
    spec = spec or CsvSpec()
    csv_path = Path(path)
    if csv_path.exists() and not csv_path.is_file():
        raise InputError(f"not a file: {csv_path}", hint="give the path of a CSV file (CSV=…)")
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
