"""Migrate a legacy PostgreSQL bars table into the catalog, then validate it against the source.

make migrate DSN=postgresql://user:pass@host:5432/db [SYMBOLS=AAPL,MSFT] [BAR=1-MINUTE-LAST]
DATABASE_URL=postgresql://… python scripts/migrate.py 'symbols=[AAPL]' source.timezone=UTC

The DSN comes from the environment (DATABASE_URL); its password is never printed or written.
"""

from __future__ import annotations

import traceback
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from loguru import logger
from omegaconf import DictConfig, OmegaConf

from ntrader import runs
from ntrader.catalog.conflict import MODES
from ntrader.errors import InputError, NtraderError, SystemFailure
from ntrader.legacy_pg.source import ROLES, Scrubber, Source, SourceSpec, redact_dsn
from ntrader.tabular import text_table

if TYPE_CHECKING:
    from ntrader.legacy_pg.migrate import Options
    from ntrader.legacy_pg.rows import TimeMap

# Nautilus (catalog, instruments, migrate) is imported only once the statistics pass runs on the
# server: its ~0.6 s import then overlaps the server's work instead of preceding it.

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


def _scrub_hydra_dir(run_dir: Path, scrub: Scrubber) -> None:
    """A DSN given as a Hydra override (not via DATABASE_URL) would sit in .hydra/: redact it."""
    for f in (run_dir / ".hydra").glob("*.yaml"):
        text = f.read_text()
        clean = scrub(text)
        if clean != text:
            f.write_text(clean)
            logger.warning(f"redacted the DSN password in {f.name}; pass it as DATABASE_URL")


def _spec(cfg: DictConfig) -> SourceSpec:
    """The source side of the config, checked (no Nautilus needed)."""
    src = cfg.source
    if cfg.mode not in MODES:
        raise InputError(f"unknown conflict mode {cfg.mode!r}", hint=f"mode= one of {MODES}")
    if src.label not in ("open", "close"):
        raise InputError(f"source.label must be open or close, not {src.label!r}")
    if bool(src.timeframe_column) != (src.timeframe is not None):
        raise InputError(
            "source.timeframe_column and source.timeframe go together",
            hint="e.g. source.timeframe_column=timeframe source.timeframe=1m",
        )
    if src.timezone:
        try:
            zoneinfo.ZoneInfo(str(src.timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise InputError(
                f"unknown time zone {src.timezone!r}", hint="use an IANA name: America/New_York"
            ) from exc
    if int(cfg.batch_rows) < 1000:
        raise InputError("batch_rows must be at least 1000")
    columns = {r: str(src.columns.get(r) or r) for r in ROLES}
    return SourceSpec(
        table=str(src.table),
        columns=columns,
        timeframe_column=str(src.timeframe_column) if src.timeframe_column else None,
        timeframe=OmegaConf.to_object(src.timeframe)
        if OmegaConf.is_config(src.timeframe)
        else src.timeframe,
        timezone=str(src.timezone) if src.timezone else None,
        label=str(src.label),
    )


def _options(cfg: DictConfig, spec: SourceSpec, ts_type: str) -> tuple[Options, TimeMap]:
    from ntrader.instruments import bar_step, bar_type_for, resolve_instrument_id
    from ntrader.legacy_pg.migrate import Options
    from ntrader.legacy_pg.rows import TimeMap

    step = bar_step(bar_type_for(resolve_instrument_id("X"), cfg.bars.spec))
    opts = Options(
        symbols=[str(s) for s in cfg.symbols or []],
        mode=str(cfg.mode),
        price_precision=None if cfg.price_precision is None else int(cfg.price_precision),
        bar_spec=str(cfg.bars.spec),
        default_venue=str(cfg.instruments.default_venue),
        venues={str(k): str(v) for k, v in (cfg.instruments.venues or {}).items()},
        symbol_map={str(k): str(v) for k, v in (cfg.source.symbol_map or {}).items()},
        spot_checks=int(cfg.validate.spot_checks),
        seed=int(cfg.validate.seed),
        validate_only=bool(cfg.validate.only),
        max_listed=int(cfg.max_listed),
    )
    return opts, TimeMap(ts_type, spec.timezone, spec.label, step)


def _likely_dst_check(spec: SourceSpec, ts_type: str, bar_spec: str) -> bool:
    """``TimeMap.dst_check`` guessed before Nautilus parses the bar spec (if the guess is wrong,
    the prefetched statistics are not used and the pass runs again with the right predicate)."""
    daily = str(bar_spec).upper().split("-")[1:2] == ["DAY"]
    return ts_type == "timestamp without time zone" and not (spec.label == "open" and daily)


def body(cfg: DictConfig, ctx: runs.RunContext) -> dict[str, Any]:
    dsn = cfg.dsn
    scrub = Scrubber(dsn)
    _scrub_hydra_dir(ctx.run_dir, scrub)
    if not dsn:
        raise InputError(
            "no PostgreSQL DSN",
            hint="make migrate DSN=postgresql://user:pass@host:5432/db (or set DATABASE_URL)",
        )
    try:
        return _migrate(cfg, ctx, str(dsn))
    except NtraderError as exc:
        exc.message, exc.hint = scrub(exc.message), scrub(exc.hint) if exc.hint else None
        raise
    except Exception as exc:  # keep the password out of the log's traceback too
        logger.debug(scrub(traceback.format_exc()))
        raise SystemFailure(f"{type(exc).__name__}: {scrub(exc)}") from None


def _migrate(cfg: DictConfig, ctx: runs.RunContext, dsn: str) -> dict[str, Any]:
    spec = _spec(cfg)
    logger.info(f"source {redact_dsn(dsn)} table {spec.table}")
    source = Source(dsn, spec, int(cfg.batch_rows))
    try:
        source.inspect()
        symbols = [str(s) for s in cfg.symbols or []] or None
        dst = _likely_dst_check(spec, source.ts_type, cfg.bars.spec)
        source.prefetch_stats(symbols, dst_check=dst)
        from ntrader.catalog.catalog import Catalog
        from ntrader.legacy_pg.migrate import run_migration

        opts, tmap = _options(cfg, spec, source.ts_type)
        catalog = Catalog(cfg.catalog.path, lock_timeout=float(cfg.catalog.lock_timeout))
        logger.info(f"-> catalog {catalog.url}")
        with ctx.step("migrate"):
            report = run_migration(source, catalog, opts, tmap, ctx.run_dir)
    finally:
        source.close()
    report["source"] = {"dsn": redact_dsn(dsn), "table": spec.table, "ts_type": tmap.ts_type}
    rows = report["symbols"]
    table = text_table(rows, COLUMNS)
    (ctx.run_dir / "validation.txt").write_text(table + "\n")
    runs.write_json_atomic(ctx.run_dir / "validation.json", report)
    t = report["totals"]
    ctx.counts.update(
        symbols=len(rows),
        symbols_migrated=sum(r["plan"] == "migrate" for r in rows),
        symbols_up_to_date=sum(r["plan"] == "up to date" for r in rows),
        symbols_skipped=sum(r["status"] == "skipped" for r in rows),
        mismatched=len(report["mismatched"]),
        **{
            k: int(t.get(k, 0))
            for k in ("rows_read", "rows_added", "rows_skipped", "rows_rejected", "files_written")
        },
    )
    sec = report["seconds"]
    # the statistics pass overlaps the start-up; what was left of it when planning is in "plan"
    secs = float(sec["plan"] + sec["migrate"])
    lines = [table, ""]
    for r in report["rejected_listed"]:
        lines.append(f"  rejected {r['symbol']!r} {r['timestamp']}: {r['reason']}")
    if t.get("rows_rejected"):
        lines.append(
            f"  {t['rows_rejected']:,} rows rejected in all (keys in "
            f"{ctx.run_dir / 'rejected.csv'}); they are not mismatches"
        )
    for r in rows:
        if r["status"] == "skipped":
            lines.append(
                f"  skipped {r['symbol']!r}: {r['plan']} — {r['note']} "
                "(map it with source.symbol_map)"
            )
        for p in r.get("problems", [])[:10]:
            lines.append(f"  MISMATCH {r['symbol']}: {p}")
    lines.append(
        f"Migrated {int(t.get('rows_read', 0)):,} rows read · {int(t.get('rows_added', 0)):,} "
        f"added in {secs:.1f} s ({int(t.get('rows_read', 0)) / max(secs, 1e-9):,.0f} rows/s) · "
        f"validation {'OK' if report['ok'] else 'FAILED'} in {report['seconds']['validate']:.1f} s "
        f"({ctx.run_dir / 'validation.json'})"
    )
    print("\n".join(lines))
    from ntrader.legacy_pg.migrate import check_report

    check_report(report, ctx.run_dir / "validation.json")
    return {"migrate": {k: v for k, v in report.items() if k != "symbols"}}


@hydra.main(version_base="1.3", config_path="../conf", config_name="migrate")
def main(cfg: DictConfig) -> int:
    return runs.run_task(cfg, "migrate", body)


if __name__ == "__main__":
    runs.entry(main)
