"""One migration as a single call, from a script or a notebook: ``MigrateSpec`` (the checked
settings) -> ``migrate_table`` -> ``MigrateResult`` (report, counts, console text).

``migrate_table`` connects, starts the statistics pass on the server, and only then imports
NautilusTrader (catalog, instruments, migration), so its ~0.6 s import overlaps the server's work;
importing this module or building a spec imports none of them. The password never appears in
what it raises or logs.

    from ntrader.legacy_pg import MigrateSpec, migrate_table
    spec = MigrateSpec(dsn="postgresql://user:pw@host/db", symbols=["AAPL"])
    result = migrate_table(spec, "data/catalog", "runs/mine")
    print(result.text); result.check()  # DataError when validation failed
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from ntrader.errors import InputError, NtraderError, SystemFailure
from ntrader.legacy_pg.dsn import Scrubber, redact_dsn
from ntrader.legacy_pg.report import check_report, report_counts, report_lines, report_table
from ntrader.legacy_pg.schema import ROLES, SourceSpec
from ntrader.legacy_pg.source import Source
from ntrader.tabular import write_json_atomic

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog
    from ntrader.legacy_pg.plan import Options
    from ntrader.legacy_pg.rows import TimeMap

__all__ = ["MigrateResult", "MigrateSpec", "migrate_table"]


@dataclass(frozen=True)
class MigrateSpec:
    """What to migrate and how; checked on construction (``InputError``). ``symbols`` empty = all
    symbols of the table; the other fields mirror ``conf/migrate.yaml``."""

    dsn: str = field(repr=False)  # postgresql://user:password@host:5432/db (never shown)
    symbols: Sequence[str] = ()
    source: SourceSpec = field(default_factory=SourceSpec)
    mode: str = "skip"  # conflict mode: skip | overwrite | merge
    price_precision: int | None = None  # of NEW instruments; None = decimals measured in the data
    bar_spec: str = "1-MINUTE-LAST"
    default_venue: str = "NASDAQ"
    venues: Mapping[str, str] = field(default_factory=dict)  # symbol -> venue
    symbol_map: Mapping[str, str] = field(default_factory=dict)  # legacy symbol -> instrument id
    spot_checks: int = 20
    seed: int = 0
    validate_only: bool = False
    max_listed: int = 20
    batch_rows: int = 100_000

    def __post_init__(self) -> None:
        from ntrader.catalog.conflict import MODES  # numpy only, no NautilusTrader

        src = self.source
        if not self.dsn:
            raise InputError(
                "no PostgreSQL DSN",
                hint="make migrate DSN=postgresql://user:pass@host:5432/db (or set DATABASE_URL)",
            )
        if self.mode not in MODES:
            raise InputError(f"unknown conflict mode {self.mode!r}", hint=f"mode= one of {MODES}")
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
        if int(self.batch_rows) < 1000:
            raise InputError("batch_rows must be at least 1000")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MigrateSpec:
        """From a mapping shaped like ``conf/migrate.yaml`` (Hydra's config or plain dicts);
        missing keys take the defaults. Errors are scrubbed like ``migrate_table``'s."""
        with _scrubbed(Scrubber(cfg.get("dsn"))):
            return cls._from_config(cfg)

    @classmethod
    def _from_config(cls, cfg: Mapping[str, Any]) -> MigrateSpec:
        src, val = _section(cfg, "source"), _section(cfg, "validate")
        inst, columns = _section(cfg, "instruments"), _section(src, "columns")
        precision = cfg.get("price_precision")
        source = SourceSpec(
            table=str(src.get("table") or "market_data"),
            columns={r: str(columns.get(r) or r) for r in ROLES},
            timeframe_column=str(src["timeframe_column"]) if src.get("timeframe_column") else None,
            timeframe=_plain(src.get("timeframe")),
            timezone=src.get("timezone") or None,  # as given: the checks quote it
            label=src.get("label", "open"),
        )
        return cls(
            dsn=str(cfg["dsn"]) if cfg.get("dsn") else "",
            symbols=[str(s) for s in cfg.get("symbols") or []],
            source=source,
            mode=cfg.get("mode", "skip"),
            price_precision=None if precision is None else int(precision),
            bar_spec=str(_section(cfg, "bars").get("spec", "1-MINUTE-LAST")),
            default_venue=str(inst.get("default_venue", "NASDAQ")),
            venues={str(k): str(v) for k, v in (inst.get("venues") or {}).items()},
            symbol_map={str(k): str(v) for k, v in (src.get("symbol_map") or {}).items()},
            spot_checks=int(val.get("spot_checks", 20)),
            seed=int(val.get("seed", 0)),
            validate_only=bool(val.get("only", False)),
            max_listed=int(cfg.get("max_listed", 20)),
            batch_rows=int(cfg.get("batch_rows", 100_000)),
        )

    def options(self) -> Options:
        """The migration's options (imports NautilusTrader)."""
        from ntrader.legacy_pg.plan import Options

        return Options(
            symbols=list(self.symbols),
            mode=str(self.mode),
            price_precision=self.price_precision,
            bar_spec=self.bar_spec,
            default_venue=self.default_venue,
            venues=dict(self.venues),
            symbol_map=dict(self.symbol_map),
            spot_checks=self.spot_checks,
            seed=self.seed,
            validate_only=self.validate_only,
            max_listed=self.max_listed,
        )

    def time_map(self, ts_type: str) -> TimeMap:
        """How this table's timestamps (of type ``ts_type``) become ``ts_event`` (imports
        NautilusTrader; ``InputError`` for an invalid bar spec)."""
        from ntrader.instruments import bar_step, bar_type_for, resolve_instrument_id
        from ntrader.legacy_pg.rows import TimeMap

        step = bar_step(bar_type_for(resolve_instrument_id("X"), self.bar_spec))
        return TimeMap(ts_type, self.source.timezone, self.source.label, step)

    def likely_dst_check(self, ts_type: str) -> bool:
        """``TimeMap.dst_check`` guessed before NautilusTrader parses the bar spec (if the guess
        is wrong, the prefetched statistics are not used and the pass runs again)."""
        daily = self.bar_spec.upper().split("-")[1:2] == ["DAY"]
        return ts_type == "timestamp without time zone" and not (
            self.source.label == "open" and daily
        )


@dataclass(frozen=True)
class MigrateResult:
    """A finished migration: ``report`` is ``validation.json``'s content; ``out_dir`` holds it,
    ``validation.txt`` and ``rejected.csv``."""

    report: dict[str, Any]
    out_dir: Path
    catalog_url: str

    @property
    def ok(self) -> bool:
        """Every migrated or checked symbol matches the source."""
        return bool(self.report["ok"])

    @property
    def validation_path(self) -> Path:
        return self.out_dir / "validation.json"

    @property
    def table(self) -> str:
        """One line per symbol (``validation.txt``)."""
        return report_table(self.report)

    @property
    def text(self) -> str:
        """The console view: table, rejected/skipped/mismatch lines, the closing line."""
        return "\n".join(report_lines(self.report, self.out_dir))

    def counts(self) -> dict[str, int]:
        """Symbols by outcome and the row totals (a run's ``summary.json`` ``counts``)."""
        return report_counts(self.report)

    def summary(self) -> dict[str, Any]:
        """The report without its per-symbol rows (a run's ``summary.json`` ``migrate``)."""
        return {k: v for k, v in self.report.items() if k != "symbols"}

    def check(self) -> None:
        """``DataError`` (exit 1) when validation found a mismatch."""
        check_report(self.report, self.validation_path)


def migrate_table(
    spec: MigrateSpec,
    catalog: Catalog | str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    lock_timeout: float = 600.0,
    retain_days: float = 30.0,
    timings: dict[str, float] | None = None,
) -> MigrateResult:
    """Plan, migrate (unless ``spec.validate_only``) and validate the legacy table into
    ``catalog`` (a ``Catalog``, or its root: a path, ``s3://…``, None = the default catalog,
    opened with ``lock_timeout`` and ``retain_days``); writes ``validation.txt``,
    ``validation.json`` and ``rejected.csv`` into ``out_dir``. ``timings["migrate"]`` gets the
    migration's seconds.

    Errors are ``NtraderError`` subclasses with the password scrubbed; a validation mismatch is
    not raised here but by ``MigrateResult.check``.
    """
    with _scrubbed(Scrubber(spec.dsn)):
        return _migrate(spec, catalog, Path(out_dir), (lock_timeout, retain_days), timings)


@contextlib.contextmanager
def _scrubbed(scrub: Scrubber) -> Iterator[None]:
    """The password out of the error's message and hint, and out of the logged traceback."""
    try:
        yield
    except NtraderError as exc:
        exc.message, exc.hint = scrub(exc.message), scrub(exc.hint) if exc.hint else None
        raise
    except Exception as exc:
        logger.debug(scrub(traceback.format_exc()))
        raise SystemFailure(f"{type(exc).__name__}: {scrub(exc)}") from None


def _migrate(
    spec: MigrateSpec,
    catalog: Catalog | str | os.PathLike[str] | None,
    out_dir: Path,
    catalog_options: tuple[float, float],
    timings: dict[str, float] | None,
) -> MigrateResult:
    logger.info(f"source {redact_dsn(spec.dsn)} table {spec.source.table}")
    source = Source(spec.dsn, spec.source, spec.batch_rows)
    try:
        source.inspect()
        dst = spec.likely_dst_check(source.ts_type)
        source.prefetch_stats(list(spec.symbols) or None, dst_check=dst)
        # NautilusTrader from here on: its import overlaps the statistics pass on the server
        from ntrader.catalog.catalog import Catalog
        from ntrader.legacy_pg.migrate import run_migration

        opts, tmap = spec.options(), spec.time_map(source.ts_type)
        if not isinstance(catalog, Catalog):
            lock_timeout, retain_days = catalog_options
            catalog = Catalog(catalog, lock_timeout=lock_timeout, retain_days=retain_days)
        logger.info(f"-> catalog {catalog.url}")
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            report = run_migration(source, catalog, opts, tmap, out_dir)
        finally:
            if timings is not None:
                timings["migrate"] = round(time.perf_counter() - t0, 4)
    finally:
        source.close()
    report["source"] = {
        "dsn": redact_dsn(spec.dsn),
        "table": spec.source.table,
        "ts_type": tmap.ts_type,
    }
    result = MigrateResult(report, out_dir, str(catalog.url))
    (out_dir / "validation.txt").write_text(result.table + "\n")
    write_json_atomic(result.validation_path, report)
    return result


def _section(cfg: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = cfg.get(key)
    return value if isinstance(value, Mapping) else {}


def _plain(value: Any) -> Any:
    """Config containers (Hydra's included) as plain dicts and lists; scalars unchanged."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value
