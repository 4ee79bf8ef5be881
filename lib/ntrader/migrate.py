"""Legacy PostgreSQL bars table -> catalog: planned, streamed in pages, resumable, validated.

1. Inspect the table's column types; one GROUP BY pass gives per symbol counts, the valid range
   and the decimals (price precision of a new instrument).
2. Plan: symbol -> instrument id (``source.symbol_map``, else ``instruments``); a symbol that is
   not a valid ticker is reported and skipped. A symbol whose catalog bars already equal the source
   (row count, first, last) is up to date and not read again: a rerun after success reads nothing.
3. Migrate: keyset pages (``pg_source``) -> ``migrate_rows.convert`` -> ``Catalog.write_bars``
   under the conflict mode (default skip: only missing timestamps are added), so a rerun after a
   crash or a dropped connection completes without duplicates.
4. Validate: per symbol source vs catalog row count, first/last ``ts_event`` and seeded random spot
   checks of OHLCV at the instrument's precision. Any mismatch -> ``DataError`` (exit 1); rejected
   rows are reported with their keys (``rejected.csv``) but are not mismatches.
"""

from __future__ import annotations

import csv
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger
from nautilus_trader.model.data import BarType
from tqdm import tqdm

from ntrader.barframe import BarFrame
from ntrader.catalog import Catalog
from ntrader.errors import DataError, InputError
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.inventory import iso
from ntrader.migrate_rows import TimeMap, convert
from ntrader.pg_source import Source, Stats

MAX_PRECISION = 9


@dataclass(frozen=True)
class Options:
    symbols: list[str]
    mode: str = "skip"
    price_precision: int | None = None
    bar_spec: str = "1-MINUTE-LAST"
    default_venue: str = "NASDAQ"
    venues: dict[str, str] = field(default_factory=dict)
    symbol_map: dict[str, str] = field(default_factory=dict)
    spot_checks: int = 20
    seed: int = 0
    validate_only: bool = False
    max_listed: int = 20


@dataclass
class Plan:
    symbol: str
    stats: Stats
    instrument_id: str | None = None
    bar_type: BarType | None = None
    price_precision: int = 2
    size_precision: int = 0
    status: str = "migrate"  # migrate | up to date | invalid symbol | no valid rows
    note: str = ""
    first_ns: int | None = None
    last_ns: int | None = None
    rows_added: int = 0
    rows_rejected: int = 0


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


def _precision(plan: Plan, opts: Options, catalog: Catalog) -> None:
    st = plan.stats
    measured = st.price_scale
    existing = catalog.instrument(plan.instrument_id) if plan.instrument_id else None
    if opts.price_precision is not None:
        plan.price_precision = int(opts.price_precision)
        if measured is not None and measured > plan.price_precision:
            plan.note = f"prices rounded from {measured} to {plan.price_precision} decimals"
    elif existing is not None:
        plan.price_precision = int(existing.price_precision)
        if measured is not None and measured > plan.price_precision:
            raise InputError(
                f"{plan.symbol}: prices have {measured} decimals but {plan.instrument_id} in the "
                f"catalog has price precision {plan.price_precision}",
                hint=f"ARGS='price_precision={plan.price_precision}' rounds them to it",
            )
    else:
        plan.price_precision = 2 if measured is None else int(measured)
        if plan.price_precision > MAX_PRECISION:
            raise InputError(
                f"{plan.symbol}: prices have {measured} decimals (more than {MAX_PRECISION}; "
                "float noise?)",
                hint="set the precision: ARGS='price_precision=4' (values are rounded to it)",
            )
    plan.size_precision = min(int(st.size_scale or 0), MAX_PRECISION)


def make_plans(source: Source, catalog: Catalog, tmap: TimeMap, opts: Options) -> list[Plan]:
    stats = source.stats(opts.symbols or None, dst_check=tmap.dst_check)
    if opts.symbols:
        missing = [s for s in opts.symbols if s not in stats]
        if missing:
            raise DataError(
                f"symbol(s) not in {source.spec.table}: {', '.join(map(repr, missing))}",
                hint="SYMBOLS= takes the symbols exactly as the legacy table spells them",
            )
    if not stats:
        raise DataError(
            f"no rows in {source.spec.table}"
            + (
                f" with {source.spec.timeframe_column} = {source.spec.timeframe!r}"
                if source.spec.timeframe_column
                else ""
            ),
            hint="check source.table and the timeframe filter (source.timeframe)",
        )
    plans: list[Plan] = []
    by_id: dict[str, list[Plan]] = {}
    for sym, st in stats.items():
        plan = Plan(sym, st)
        plans.append(plan)
        try:
            target = opts.symbol_map.get(sym, sym)
            iid = resolve_instrument_id(target, opts.default_venue, opts.venues)
            plan.instrument_id = str(iid)
            plan.bar_type = bar_type_for(iid, opts.bar_spec)
            by_id.setdefault(plan.instrument_id, []).append(plan)
        except InputError as exc:
            plan.status, plan.note = "invalid symbol", exc.message
            continue
        if st.valid == 0:
            plan.status = "no valid rows"
            continue
        _precision(plan, opts, catalog)
        ends, _ = tmap.ts_event(_pa_ts([st.first, st.last], source.ts_type))
        plan.first_ns, plan.last_ns = int(ends[0]), int(ends[1])
    for iid, group in by_id.items():
        if len(group) > 1:
            names = ", ".join(repr(p.symbol) for p in group)
            for p in group:
                p.status, p.note = "invalid symbol", f"{names} all map to {iid}"
    return plans


def _pa_ts(values: list[Any], ts_type: str) -> Any:
    import pyarrow as pa

    types = {"timestamp with time zone": pa.timestamp("us", "UTC"), "date": pa.date32()}
    return pa.array(values, type=types.get(ts_type, pa.timestamp("us")))


def up_to_date(plan: Plan, catalog: Catalog) -> bool:
    if plan.bar_type is None:
        return False
    a = catalog.availability(plan.bar_type)
    return (a.rows, a.first_ns, a.last_ns) == (plan.stats.expected, plan.first_ns, plan.last_ns)


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


def _catalog_keys(catalog: Catalog, bt: BarType, lo: int | None, hi: int | None) -> np.ndarray:
    """``ts_event`` of the catalog bars in [lo, hi], one file's column at a time (bounded)."""
    parts = []
    for f in catalog.files(bt):
        if f.overlaps(lo, hi):
            ts = pq.read_table(f.path, columns=["ts_event"]).column(0).to_numpy().astype(np.int64)
            parts.append(ts[(ts >= (lo or 0)) & (ts <= (hi if hi is not None else ts.max()))])
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _bars_at(catalog: Catalog, bt: BarType, picks: np.ndarray) -> BarFrame:
    """The catalog bars at the sorted ``picks`` (what ``catalog.read(bt, t, t)`` per pick gives,
    concatenated), reading each file once for all the picks it holds, not once per pick."""
    files = catalog.files(bt)
    groups: dict[int, list[int]] = {}
    for t in picks.tolist():
        i = next((k for k, f in enumerate(files) if f.overlaps(t, t)), -1)
        groups.setdefault(i, []).append(t)
    parts: list[BarFrame] = []
    for i in sorted(groups):
        ts = groups[i]
        if i < 0:  # in no file (listing raced a writer): the per-pick read, as before
            parts += [catalog.read(bt, t, t) for t in ts]
            continue
        frame = catalog.read(bt, ts[0], ts[-1])
        parts.append(frame.take(np.flatnonzero(np.isin(frame.ts_event, ts))))
    return BarFrame.concat(parts) if parts else BarFrame.empty()


def validate_symbol(
    plan: Plan, source: Source, catalog: Catalog, tmap: TimeMap, opts: Options
) -> dict[str, Any]:
    """Source vs catalog for one symbol: counts, first/last, seeded OHLCV spot checks.

    Memory stays bounded: counts come from the ``ts_event`` column alone, spot-checked bars are
    read file by file.
    """
    assert plan.bar_type is not None
    daily = tmap.step.daily
    keys = _catalog_keys(catalog, plan.bar_type, plan.first_ns, plan.last_ns)
    problems: list[str] = []
    expected = plan.stats.expected
    if len(keys) != expected:
        problems.append(f"catalog has {len(keys):,} rows in the range, source {expected:,}")
    cat_first = int(keys[0]) if len(keys) else None
    cat_last = int(keys[-1]) if len(keys) else None
    if not plan.stats.conflicting_ts and (cat_first, cat_last) != (plan.first_ns, plan.last_ns):
        problems.append("first/last timestamp differ")
    rng = np.random.default_rng([int(opts.seed), zlib.crc32(plan.symbol.encode())])
    picks = np.sort(
        keys[rng.choice(len(keys), size=min(opts.spot_checks, len(keys)), replace=False)]
    )
    checked = 0
    if len(picks):
        frame = _bars_at(catalog, plan.bar_type, picks)
        ranges = [tmap.source_range(int(t)) for t in frame.ts_event]
        conv = convert(
            source.fetch_ranges(plan.symbol, ranges),
            tmap,
            frame.price_precision,
            frame.size_precision,
        )
        src = conv.frame
        for i in range(len(frame)):
            ts = int(frame.ts_event[i])
            j = int(np.searchsorted(src.ts_event, ts))
            when = iso(ts, tmap.zone, daily=daily)
            if j >= len(src) or int(src.ts_event[j]) != ts:
                problems.append(f"spot check {when}: no source row")
                continue
            for col in ("open", "high", "low", "close", "volume"):
                digits = frame.size_precision if col == "volume" else frame.price_precision
                a, b = getattr(frame, col)[i], getattr(src, col)[j]
                if round(a * 10**digits) != round(b * 10**digits):
                    problems.append(f"spot check {when}: {col} catalog {a} source {b}")
            checked += 1
    return {
        "source_rows": plan.stats.total,
        "expected_rows": expected,
        "catalog_rows": len(keys),
        "source_first": iso(plan.first_ns, tmap.zone, daily=daily),
        "source_last": iso(plan.last_ns, tmap.zone, daily=daily),
        "catalog_first": iso(cat_first, tmap.zone, daily=daily),
        "catalog_last": iso(cat_last, tmap.zone, daily=daily),
        "spot_checks": checked,
        "problems": problems,
        "status": "mismatch" if problems else "ok",
    }


def run_migration(
    source: Source, catalog: Catalog, opts: Options, tmap: TimeMap, run_dir: Path
) -> dict[str, Any]:
    """Plan, migrate (unless validate-only), validate; returns the validation report."""
    tp = time.perf_counter()
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
        t1 = time.perf_counter()
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
                row.update(validate_symbol(p, source, catalog, tmap, opts))
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
            "plan": round(t0 - tp, 3),
            "migrate": round(t1 - t0, 3),
            "validate": round(time.perf_counter() - t1, 3),
        },
    }


def check_report(report: dict[str, Any], validation_path: Path) -> None:
    if report["mismatched"]:
        raise DataError(
            f"validation failed for {', '.join(map(repr, report['mismatched']))} "
            f"(details in {validation_path})",
            hint="rerun `make migrate` (skip mode fills missing rows); MODE=overwrite replaces "
            "bars that differ from the source",
        )
