"""Legacy PostgreSQL bars table -> catalog: planned, streamed, resumable, validated.

1. Inspect the table's column types; one GROUP BY pass on the server gives per symbol counts, the
   valid range and the decimals (price precision of a new instrument) — ``stats``.
2. Plan (``plan``): symbol -> instrument id, bar type, precision; symbols already up to
   date in the catalog are not read again: a rerun after success reads nothing.
3. Migrate: one binary-COPY stream per symbol, read ahead in a thread (``stream``) ->
   ``rows.convert`` -> ``Catalog.write_bars`` under the conflict mode (default skip: only
   missing timestamps are added), so a rerun after a crash or a dropped connection completes
   without duplicates. The server produces symbol N+1 while symbol N is converted and written.
4. Validate (``validate``): per symbol source vs catalog row count, first/last and seeded
   OHLCV spot checks. Any mismatch -> ``DataError`` (exit 1); rejected rows are reported with
   their keys (``rejected.csv``) but are not mismatches (``report.check_report``).

The whole flow as one call, from a spec (notebook or script), is ``job.migrate_table``.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from loguru import logger
from tqdm import tqdm

from ntrader.catalog.catalog import Catalog
from ntrader.instruments import make_equity, resolve_instrument_id
from ntrader.legacy_pg.plan import Options, Plan, make_plans, up_to_date
from ntrader.legacy_pg.report import check_report
from ntrader.legacy_pg.rows import TimeMap, convert
from ntrader.legacy_pg.source import Source
from ntrader.legacy_pg.validate import validate_symbol

__all__ = ["Options", "Plan", "Rejects", "check_report", "migrate_symbol", "run_migration"]


class Rejects:
    """Every rejected row's key (symbol, source timestamp) and reason -> ``rejected.csv``."""

    def __init__(self, path: Path, max_listed: int) -> None:
        self.path = path
        self.max_listed = max_listed
        self.listed: list[dict[str, str]] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self._file = path.open("w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["symbol", "timestamp", "reason"])

    def add(self, symbol: str, timestamp: str, reason: str, count: int = 1) -> None:
        self.counts[(symbol, reason)] += count
        self._csv.writerow([symbol, timestamp, reason if count == 1 else f"{reason} ×{count}"])
        if len(self.listed) < self.max_listed:
            self.listed.append({"symbol": symbol, "timestamp": timestamp, "reason": reason})

    def by_symbol(self, symbol: str) -> dict[str, int]:
        return {r: n for (s, r), n in sorted(self.counts.items()) if s == symbol}

    def close(self) -> None:
        self._file.close()


def migrate_symbol(
    plan: Plan,
    pages: Iterator[pa.Table],
    catalog: Catalog,
    tmap: TimeMap,
    opts: Options,
    rejects: Rejects,
    progress: tqdm,
    totals: Counter[str],
) -> None:
    assert plan.bar_type is not None and plan.instrument_id is not None
    instrument = make_equity(resolve_instrument_id(plan.instrument_id), plan.price_precision)
    if plan.stats.null_ts:
        rejects.add(plan.symbol, "NULL", "NULL timestamp", plan.stats.null_ts)
        plan.rows_rejected += plan.stats.null_ts
    for page in pages:
        conv = convert(page, tmap, plan.price_precision, plan.size_precision)
        if len(conv.rejected_index):
            keys = page.column("ts").take(conv.rejected_index).to_pylist()
            for key, why in zip(keys, conv.rejected_reason, strict=True):
                rejects.add(plan.symbol, key.isoformat(), str(why))
            plan.rows_rejected += len(keys)
        if len(conv.frame):
            res = catalog.write_bars(
                plan.bar_type, conv.frame, mode=opts.mode, instrument=instrument
            )
            plan.rows_added += res.rows_added
            totals["rows_added"] += res.rows_added
            totals["rows_replaced"] += res.rows_replaced
            totals["rows_skipped"] += res.rows_skipped
            totals["files_written"] += res.files_written
            totals["instruments_created"] += int(res.instrument_created)
        totals["rows_read"] += page.num_rows
        progress.update(page.num_rows)
    totals["rows_rejected"] += plan.rows_rejected


def run_migration(
    source: Source, catalog: Catalog, opts: Options, tmap: TimeMap, run_dir: Path
) -> dict[str, Any]:
    """Plan, migrate (unless validate-only), validate; returns the validation report.

    A migrated symbol is validated as soon as it is written, while the reader thread already
    streams the next symbol (the server keeps working); the others are validated at the end.
    """
    tp = time.perf_counter()
    checked: dict[str, dict[str, Any]] = {}
    validate_s = 0.0

    def validate(p: Plan) -> dict[str, Any]:
        nonlocal validate_s
        tv = time.perf_counter()
        checked[p.symbol] = validate_symbol(p, source, catalog, tmap, opts)
        validate_s += time.perf_counter() - tv
        return checked[p.symbol]

    plans = make_plans(source, catalog, tmap, opts)
    rejects = Rejects(run_dir / "rejected.csv", opts.max_listed)
    totals: Counter[str] = Counter()
    todo: list[Plan] = []
    for p in plans:
        if p.status != "migrate":
            logger.warning(f"{p.symbol!r}: {p.status} — {p.note or 'skipped'}")
        elif not opts.validate_only and up_to_date(p, catalog):
            p.status = "up to date"
            logger.info(f"{p.symbol}: up to date in the catalog ({p.stats.expected:,} rows)")
        else:
            todo.append(p)
    t0 = time.perf_counter()
    try:
        if opts.validate_only:
            for p in todo:
                p.status = "validate only"
        else:
            total_rows = sum(p.stats.total - p.stats.null_ts for p in todo)
            show = sys.stderr.isatty()
            with (
                tqdm(total=total_rows, unit="row", unit_scale=True, disable=not show) as bar,
                source.read_ahead([p.symbol for p in todo]) as reader,
            ):
                for i, p in enumerate(todo, 1):
                    bar.set_description(f"{i}/{len(todo)} {p.symbol}")
                    logger.info(
                        f"{p.symbol} -> {p.bar_type}: {p.stats.total:,} source rows "
                        f"(price precision {p.price_precision}){' · ' + p.note if p.note else ''}"
                    )
                    migrate_symbol(
                        p, reader.pages(p.symbol), catalog, tmap, opts, rejects, bar, totals
                    )
                    logger.info(f"{p.symbol}: added {p.rows_added:,}, rejected {p.rows_rejected:,}")
                    validate(p)
        t1, inline_s = time.perf_counter(), validate_s
        report_rows: list[dict[str, Any]] = []
        for p in plans:
            row: dict[str, Any] = {
                "symbol": p.symbol,
                "instrument_id": p.instrument_id,
                "bar_type": str(p.bar_type) if p.bar_type else None,
                "plan": p.status,
                "note": p.note,
                "rows_added": p.rows_added,
                "rejected": rejects.by_symbol(p.symbol),
                "rejected_rows": sum(rejects.by_symbol(p.symbol).values()),
            }
            if p.status in ("migrate", "up to date", "validate only"):
                row.update(checked.get(p.symbol) or validate(p))
            else:
                row.update(source_rows=p.stats.total, status="skipped", problems=[])
            report_rows.append(row)
    finally:
        rejects.close()
    mismatched = [r["symbol"] for r in report_rows if r["status"] == "mismatch"]
    return {
        "symbols": report_rows,
        "rejected_listed": rejects.listed,
        "totals": dict(totals),
        "mismatched": mismatched,
        "ok": not mismatched,
        "seconds": {
            # the server's statistics pass; started before Nautilus is imported, so it overlaps
            # the start-up and "plan" holds only what was left of it
            "statistics": round(source.stats_seconds, 3),
            "plan": round(t0 - tp, 3),
            "migrate": round(t1 - t0 - inline_s, 3),  # validation time counted once, below
            "validate": round(validate_s, 3),
        },
    }
