"""The migration as a library call (`ntrader.legacy_pg.migrate_table`), without Hydra or the
script: a spec built in Python, a real PostgreSQL, a real catalog on disk."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from omegaconf import OmegaConf

from ntrader.catalog.catalog import Catalog
from ntrader.errors import DataError, InputError
from ntrader.legacy_pg import MigrateSpec, SourceSpec, migrate_table

from .conftest import REPO
from .pg_fixtures import pg_server  # noqa: F401  (pg_server is the `pg` fixture)
from .test_migrate import COLS, UTC, bars, create_table, ns

AAPL = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
MSFT = "MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def db(pg):
    return pg.dsn(database=pg.fresh_db())


def test_importing_the_job_and_building_a_spec_imports_neither_nautilus_nor_hydra():
    code = (
        "import sys, ntrader.legacy_pg.job, ntrader.legacy_pg.report; "
        "from ntrader.legacy_pg import MigrateSpec; MigrateSpec(dsn='postgresql://u:p@h/d'); "
        "print(sorted(m for m in sys.modules if m.startswith(('nautilus_trader', 'hydra', "
        "'omegaconf', 'ntrader.runs', 'ntrader.catalog.catalog', 'ntrader.instruments'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_from_config_takes_hydra_config_or_plain_dicts_and_checks_them():
    cfg = {
        "dsn": "postgresql://u:pw@h/d",
        "symbols": ["AAPL", "MSFT"],
        "mode": "merge",
        "batch_rows": 5000,
        "bars": {"spec": "1-DAY-LAST"},
        "source": {"table": "legacy.bars", "columns": {"symbol": "ticker", "open": None},
                   "timeframe_column": "tf", "timeframe": ["1d", "D"], "timezone": "UTC",
                   "label": "close", "symbol_map": {"BRKB": "BRK.B.NYSE"}},
        "validate": {"spot_checks": 3, "seed": 7, "only": True},
    }  # fmt: skip
    for given in (cfg, OmegaConf.create(cfg)):
        spec = MigrateSpec.from_config(given)
        assert spec.symbols == ["AAPL", "MSFT"] and spec.mode == "merge"
        assert spec.bar_spec == "1-DAY-LAST" and spec.batch_rows == 5000
        assert spec.source.table == "legacy.bars" and spec.source.label == "close"
        assert spec.source.columns["symbol"] == "ticker" and spec.source.columns["open"] == "open"
        assert spec.source.timeframe == ["1d", "D"] and type(spec.source.timeframe) is list
        assert dict(spec.symbol_map) == {"BRKB": "BRK.B.NYSE"}
        assert (spec.spot_checks, spec.seed, spec.validate_only) == (3, 7, True)
        assert spec.default_venue == "NASDAQ" and spec.max_listed == 20  # defaults
        assert "pw" not in repr(spec)
    with pytest.raises(InputError, match="no PostgreSQL DSN"):
        MigrateSpec.from_config({**cfg, "dsn": None})
    with pytest.raises(InputError, match="unknown time zone 'Mars/Base'"):
        MigrateSpec(dsn="postgresql://h/d", source=SourceSpec(timezone="Mars/Base"))
    with pytest.raises(InputError, match="go together"):
        MigrateSpec(dsn="postgresql://h/d", source=SourceSpec(timeframe_column="tf"))


def test_migrate_table_from_a_python_spec_fills_the_catalog_and_reports(pg, db, tmp_path):
    create_table(pg, db)
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    bad = ["AAPL", dt.datetime(2024, 1, 3, 14, 30, tzinfo=UTC), 1, Decimal("0.5"), 1, 1, 1]
    pg.load(db, "market_data", COLS, [*bars("AAPL", start, 120), *bars("MSFT", start, 80), bad])
    spec = MigrateSpec(dsn=db, symbols=["AAPL", "MSFT"], spot_checks=5, batch_rows=1000)
    timings: dict[str, float] = {}

    result = migrate_table(spec, str(tmp_path / "catalog"), tmp_path / "out", timings=timings)
    assert result.ok and timings["migrate"] > 0
    counts = result.counts()
    assert counts["rows_read"] == 201 and counts["rows_added"] == 200
    assert counts["rows_rejected"] == 1 and counts["symbols_migrated"] == 2
    assert counts["symbols"] == 2 and counts["mismatched"] == 0
    catalog = Catalog(tmp_path / "catalog")
    assert catalog.availability(AAPL).rows == 120 and catalog.availability(MSFT).rows == 80
    assert catalog.availability(AAPL).first_ns == ns("2024-01-02T14:31:00+00:00")
    rows = {r["symbol"]: r for r in result.report["symbols"]}
    assert rows["AAPL"]["rejected"] == {"high < low": 1} and rows["AAPL"]["spot_checks"] == 5
    assert result.report["source"]["ts_type"] == "timestamp with time zone"
    on_disk = json.loads(result.validation_path.read_text())
    assert on_disk["totals"]["rows_added"] == 200 and "symbols" not in result.summary()
    assert (tmp_path / "out" / "validation.txt").read_text() == result.table + "\n"
    assert "high < low" in (tmp_path / "out" / "rejected.csv").read_text()
    assert result.text.splitlines()[-1].startswith("Migrated 201 rows read · 200 added")
    assert "validation OK" in result.text
    result.check()

    # a Catalog object works too; the rerun finds both symbols up to date and reads nothing
    again = migrate_table(spec, catalog, tmp_path / "again")
    assert again.counts()["rows_read"] == 0 and again.counts()["symbols_up_to_date"] == 2

    pg.execute(db, "UPDATE market_data SET volume = volume + 1 WHERE symbol = 'MSFT'")
    check = MigrateSpec(dsn=db, spot_checks=80, validate_only=True)  # all symbols
    failed = migrate_table(check, catalog, tmp_path / "check")
    assert not failed.ok and failed.report["mismatched"] == ["MSFT"]
    assert "MISMATCH MSFT" in failed.text and "validation FAILED" in failed.text
    with pytest.raises(DataError, match="validation failed for 'MSFT'"):
        failed.check()


def test_a_plain_python_session_migrates_with_nautilus_imported_after_the_prefetch(
    pg, db, tmp_path
):
    """No Hydra anywhere; NautilusTrader is first imported once the statistics pass runs."""
    create_table(pg, db)
    pg.load(db, "market_data", COLS, bars("SPY", dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC), 50))
    code = f"""
import json, sys
from ntrader.legacy_pg import MigrateSpec, migrate_table
from ntrader.legacy_pg.source import Source
seen = {{}}
prefetch = Source.prefetch_stats
def spy(self, *a, **k):
    seen["nautilus_before_prefetch"] = "nautilus_trader" in sys.modules
    return prefetch(self, *a, **k)
Source.prefetch_stats = spy
spec = MigrateSpec(dsn={db!r}, venues={{"SPY": "ARCA"}})
result = migrate_table(spec, {str(tmp_path / "cat")!r}, {str(tmp_path)!r})
hydra = sorted(m for m in sys.modules if m.startswith(("hydra", "omegaconf")))
print(json.dumps({{**seen, "counts": result.counts(), "ok": result.ok, "hydra": hydra}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["nautilus_before_prefetch"] is False and got["hydra"] == []
    assert got["ok"] and got["counts"]["rows_added"] == 50 and got["counts"]["symbols"] == 1
    assert Catalog(tmp_path / "cat").availability("SPY.ARCA-1-MINUTE-LAST-EXTERNAL").rows == 50
