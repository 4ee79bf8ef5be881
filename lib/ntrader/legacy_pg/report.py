"""The migration report for people: the validation table, the console lines, the run counts and
the final check (``DataError`` on a mismatch).

It reads the report ``migrate.run_migration`` returns (the content of ``validation.json``) and
needs neither NautilusTrader nor a database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ntrader.errors import DataError
from ntrader.tabular import text_table

__all__ = ["COLUMNS", "check_report", "report_counts", "report_lines", "report_table"]

COLUMNS = (
    "symbol",
    "instrument_id",
    "plan",
    "source_rows",
    "rejected_rows",
    "expected_rows",
    "catalog_rows",
    "catalog_first",
    "catalog_last",
    "spot_checks",
    "status",
)
TOTALS = ("rows_read", "rows_added", "rows_skipped", "rows_rejected", "files_written")


def report_table(report: dict[str, Any]) -> str:
    """One line per symbol (``validation.txt``)."""
    return text_table(report["symbols"], COLUMNS)


def report_counts(report: dict[str, Any]) -> dict[str, int]:
    """The run's counts (``summary.json`` ``counts``): symbols by outcome and the row totals."""
    rows, t = report["symbols"], report["totals"]
    return {
        "symbols": len(rows),
        "symbols_migrated": sum(r["plan"] == "migrate" for r in rows),
        "symbols_up_to_date": sum(r["plan"] == "up to date" for r in rows),
        "symbols_skipped": sum(r["status"] == "skipped" for r in rows),
        "mismatched": len(report["mismatched"]),
        **{k: int(t.get(k, 0)) for k in TOTALS},
    }


def report_lines(report: dict[str, Any], out_dir: Path) -> list[str]:
    """The console view: the table, then rejected rows, skipped symbols, mismatches and the
    closing line (rows, rows/s, validation OK or FAILED); ``out_dir`` holds the report files."""
    rows, t = report["symbols"], report["totals"]
    sec = report["seconds"]
    # the statistics pass overlaps the start-up; what was left of it when planning is in "plan"
    secs = float(sec["plan"] + sec["migrate"])
    lines = [report_table(report), ""]
    for r in report["rejected_listed"]:
        lines.append(f"  rejected {r['symbol']!r} {r['timestamp']}: {r['reason']}")
    if t.get("rows_rejected"):
        lines.append(
            f"  {t['rows_rejected']:,} rows rejected in all (keys in "
            f"{out_dir / 'rejected.csv'}); they are not mismatches"
        )
    for r in rows:
        if r["status"] == "skipped":
            lines.append(
                f"  skipped {r['symbol']!r}: {r['plan']} — {r['note']} "
                "(map it with source.symbol_map)"
            )
        for p in r.get("problems", [])[:10]:
            lines.append(f"  MISMATCH {r['symbol']}: {p}")
    read, added = int(t.get("rows_read", 0)), int(t.get("rows_added", 0))
    lines.append(
        f"Migrated {read:,} rows read · {added:,} added in {secs:.1f} s "
        f"({read / max(secs, 1e-9):,.0f} rows/s) · "
        f"validation {'OK' if report['ok'] else 'FAILED'} in {sec['validate']:.1f} s "
        f"({out_dir / 'validation.json'})"
    )
    return lines


def check_report(report: dict[str, Any], validation_path: Path) -> None:
    """``DataError`` (exit 1) naming the symbols whose catalog bars differ from the source."""
    if report["mismatched"]:
        raise DataError(
            f"validation failed for {', '.join(map(repr, report['mismatched']))} "
            f"(details in {validation_path})",
            hint="rerun `make migrate` (skip mode fills missing rows); MODE=overwrite replaces "
            "bars that differ from the source",
        )
