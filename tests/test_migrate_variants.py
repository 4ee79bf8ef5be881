"""`scripts/migrate.py` on table and config variants: `date` columns and daily bars, bar label
open vs close, `source.symbol_map` — against a real PostgreSQL and a real catalog on disk."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from ntrader.catalog.catalog import Catalog

from .pg_fixtures import pg_server  # noqa: F401  (pg_server is the `pg` fixture)
from .test_migrate import (
    COLS,
    INJECTION,
    MIN,
    UTC,
    bars,
    by_symbol,
    create_table,
    migrate,
    ns,
    report_of,
)

DAY_BARS = "bars.spec=1-DAY-LAST"
NY = "source.timezone=America/New_York"


@pytest.fixture
def db(pg):
    return pg.dsn(database=pg.fresh_db())


def daily_rows(symbol: str, days: Sequence[dt.date], base: float = 500.0):
    """One row per day; 2-decimal prices, valid OHLC, volume = 1000 + index."""
    for i, d in enumerate(days):
        c = Decimal(f"{base + i * 1.25:.2f}")
        yield [symbol, d, c, c + Decimal("2.5"), c - Decimal("2.5"), c, 1000 + i]


def test_date_column_daily_bars_close_at_the_next_local_midnight_across_dst(
    pg, db, tmp_path, run_script
):
    """A `date` column needs a zone; each day's bar closes at the next local midnight (EST or
    EDT as that night has it), spot checks find the source rows again, a rerun reads nothing."""
    create_table(pg, db, ts_type="date", price_type="numeric")
    days = [
        dt.date(2024, 3, 7),
        dt.date(2024, 3, 8),
        dt.date(2024, 3, 11),  # DST 3/10
        dt.date(2024, 11, 1),
        dt.date(2024, 11, 4),
    ]  # fmt: skip  (DST ends 11/3)
    pg.load(db, "market_data", COLS, daily_rows("SPY", days))
    cat = tmp_path / "catalog"

    r = migrate(run_script, db, cat, DAY_BARS)
    assert r.code == 2, r.stdout + r.stderr
    assert "is date (no time zone)" in r.stderr and "source.timezone" in r.stderr

    r = migrate(run_script, db, cat, DAY_BARS, NY)
    assert r.code == 0, r.stdout + r.stderr
    catalog = Catalog(cat)
    assert catalog.bar_types() == ["SPY.ARCA-1-DAY-LAST-EXTERNAL"]
    spy = catalog.read("SPY.ARCA-1-DAY-LAST-EXTERNAL")
    assert list(spy.ts_event) == [
        ns("2024-03-08T05:00:00+00:00"),  # midnight after Thu 3/7, EST
        ns("2024-03-09T05:00:00+00:00"),  # midnight after Fri 3/8, still EST
        ns("2024-03-12T04:00:00+00:00"),  # midnight after Mon 3/11, EDT
        ns("2024-11-02T04:00:00+00:00"),  # EDT
        ns("2024-11-05T05:00:00+00:00"),  # EST again
    ]
    assert list(spy.close) == [500.0, 501.25, 502.5, 503.75, 505.0]
    assert list(spy.volume) == [1000, 1001, 1002, 1003, 1004]
    assert catalog.instrument("SPY.ARCA").price_precision == 2
    rep = by_symbol(report_of(r))["SPY"]
    assert rep["status"] == "ok" and rep["spot_checks"] == 5
    assert (rep["source_first"], rep["source_last"]) == ("2024-03-07", "2024-11-04")
    assert (rep["catalog_first"], rep["catalog_last"]) == ("2024-03-07", "2024-11-04")

    again = migrate(run_script, db, cat, DAY_BARS, NY)
    assert again.code == 0, again.stderr
    counts = again.summary()["counts"]
    assert counts["rows_read"] == 0 and counts["symbols_up_to_date"] == 1

    pg.execute(db, "UPDATE market_data SET close = close + 0.01, high = high + 0.01")
    check = migrate(run_script, db, cat, DAY_BARS, NY, "validate.only=true")
    assert check.code == 1  # every spot check now differs from the catalog
    problems = by_symbol(report_of(check))["SPY"]["problems"]
    assert any("2024-03-08: close catalog 501.25 source 501.26" in p for p in problems)


def test_bar_label_close_keeps_the_timestamp_label_open_adds_the_bar(pg, db, tmp_path, run_script):
    """The same rows, migrated once as open-labelled and once as close-labelled bars: minute bars
    differ by exactly one minute; a daily bar stamped at the close keeps that instant with
    label=close and moves to the next local midnight with label=open."""
    create_table(pg, db, price_type="double precision")
    start = dt.datetime(2024, 3, 8, 14, 31, tzinfo=UTC)
    pg.load(db, "market_data", COLS, bars("AAPL", start, 300))
    closes = [dt.datetime(2024, 3, d, 21, 0, tzinfo=UTC) for d in (6, 7, 8)]  # 16:00 EST
    closes.append(dt.datetime(2024, 3, 11, 20, 0, tzinfo=UTC))  # 16:00 EDT
    pg.load(db, "market_data", COLS, daily_rows("IBM", closes, base=190.0))
    minute = ["symbols=[AAPL]"]
    daily = ["symbols=[IBM]", DAY_BARS]

    results = {}
    for label in ("open", "close"):
        cat = tmp_path / f"catalog-{label}"
        for args in (minute, daily):
            r = migrate(run_script, db, cat, *args, f"source.label={label}")
            assert r.code == 0, r.stdout + r.stderr
            assert report_of(r)["ok"] and report_of(r)["symbols"][0]["spot_checks"] > 0
        results[label] = Catalog(cat)

    src = np.array([ns(start.isoformat()) + i * MIN for i in range(300)])
    on_open = results["open"].read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    on_close = results["close"].read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    assert np.array_equal(on_close.ts_event, src)  # the timestamp IS the close
    assert np.array_equal(on_open.ts_event, src + MIN)  # open + 1 minute
    assert np.array_equal(on_open.close, on_close.close)

    ibm_close = results["close"].read("IBM.NYSE-1-DAY-LAST-EXTERNAL")
    assert list(ibm_close.ts_event) == [ns(c.isoformat()) for c in closes]
    ibm_open = results["open"].read("IBM.NYSE-1-DAY-LAST-EXTERNAL")
    assert list(ibm_open.ts_event) == [  # local (New York, the daily default) midnight after
        ns("2024-03-07T05:00:00+00:00"),
        ns("2024-03-08T05:00:00+00:00"),
        ns("2024-03-09T05:00:00+00:00"),
        ns("2024-03-12T04:00:00+00:00"),
    ]


def test_symbol_map_routes_legacy_symbols_to_instrument_ids(pg, db, tmp_path, run_script):
    """`source.symbol_map` (Hydra override) wins over instruments.venues and the default venue;
    two legacy symbols mapped to one instrument are both refused, never merged."""
    create_table(pg, db)
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    rows = [*bars("BRK-B", start, 40, 350.0), *bars("SPY", start, 30, 470.0),
            *bars("IBM", start, 20, 160.0), *bars("GOOG", start, 10), *bars("GOOGL", start, 10),
            *bars("QQQ", start, 15, 400.0)]  # fmt: skip
    pg.load(db, "market_data", COLS, rows)
    cat = tmp_path / "catalog"
    mapping = (
        "source.symbol_map={BRK-B:BRK.B.NYSE,SPY:SPY.BATS,IBM:IBM.XNYS,GOOG:GOOGL,GOOGL:GOOGL}"
    )

    r = migrate(run_script, db, cat, mapping)
    assert r.code == 0, r.stdout + r.stderr
    catalog = Catalog(cat)
    assert catalog.bar_types() == [
        "BRK.B.NYSE-1-MINUTE-LAST-EXTERNAL",
        "IBM.XNYS-1-MINUTE-LAST-EXTERNAL",
        "QQQ.NASDAQ-1-MINUTE-LAST-EXTERNAL",  # unmapped: instruments.venues
        "SPY.BATS-1-MINUTE-LAST-EXTERNAL",  # the map beats instruments.venues (SPY: ARCA)
    ]
    assert len(catalog.read("BRK.B.NYSE-1-MINUTE-LAST-EXTERNAL")) == 40
    assert catalog.read("BRK.B.NYSE-1-MINUTE-LAST-EXTERNAL").open[0] == 350.0
    assert catalog.instrument("BRK.B.NYSE") is not None
    rep = by_symbol(report_of(r))
    assert rep["BRK-B"]["instrument_id"] == "BRK.B.NYSE" and rep["BRK-B"]["status"] == "ok"
    assert rep["SPY"]["bar_type"] == "SPY.BATS-1-MINUTE-LAST-EXTERNAL"
    for sym in ("GOOG", "GOOGL"):
        assert rep[sym]["plan"] == "invalid symbol" and rep[sym]["status"] == "skipped"
        assert "'GOOG', 'GOOGL' all map to GOOGL.NASDAQ" in rep[sym]["note"]
    assert "skipped 'GOOG': invalid symbol" in r.stdout


def test_symbol_map_from_a_config_file_carries_quotes_and_sql_through_the_bulk_read(
    pg, db, tmp_path, run_script
):
    """Symbols Hydra's override grammar cannot spell (quotes, SQL) are mapped in a config file;
    they then reach the streaming read and the spot checks, quoted as values, never executed."""
    create_table(pg, db)
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    rows = [*bars("O'NEIL", start, 25), *bars(INJECTION, start, 35, 50.0)]
    pg.load(db, "market_data", COLS, rows)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "legacy.yaml").write_text(
        "defaults:\n  - migrate\n  - _self_\nsource:\n  symbol_map:\n"
        '    "O\'NEIL": ONL.NYSE\n'
        f'    "{INJECTION}": INJ\n'
    )
    cat = tmp_path / "catalog"
    r = migrate(run_script, db, cat, f"--config-dir={conf}", "--config-name=legacy")
    assert r.code == 0, r.stdout + r.stderr
    assert pg.execute(db, "SELECT count(*) FROM market_data") == [(60,)]  # table intact
    catalog = Catalog(cat)
    assert catalog.bar_types() == [
        "INJ.NASDAQ-1-MINUTE-LAST-EXTERNAL",
        "ONL.NYSE-1-MINUTE-LAST-EXTERNAL",
    ]
    assert len(catalog.read("ONL.NYSE-1-MINUTE-LAST-EXTERNAL")) == 25
    assert catalog.read("INJ.NASDAQ-1-MINUTE-LAST-EXTERNAL").open[0] == 50.0
    rep = by_symbol(report_of(r))
    assert rep[INJECTION]["status"] == rep["O'NEIL"]["status"] == "ok"
    assert rep[INJECTION]["spot_checks"] == 20 and rep["O'NEIL"]["catalog_rows"] == 25
    assert Path(r.summary()["run_dir"]).joinpath("validation.json").exists()


@pytest.mark.parametrize("price_type", ["numeric", "double precision"])
def test_nan_and_infinities_are_rejected_alike_on_the_server_and_in_the_conversion(
    pg, db, tmp_path, run_script, price_type
):
    """The statistics pass counts valid rows on the server (its finiteness test looks at high
    and volume only); the conversion rejects rows on the client. If the two disagreed, the
    expected row count would differ from the catalog and validation would fail."""
    create_table(pg, db, price_type=price_type)
    pg.execute(db, f"ALTER TABLE market_data ALTER COLUMN volume TYPE {price_type}")
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    rows = [list(r) for r in bars("AAPL", start, 12)]
    inf, nan = "Infinity", "NaN"
    broken = {  # row -> (column index, value): open, high, low, close, volume = 2..6
        1: [(2, nan)], 2: [(3, inf)], 3: [(3, nan)], 4: [(4, "-Infinity")],
        5: [(5, nan)], 6: [(6, inf)], 7: [(6, nan)], 8: [(2, inf), (3, inf), (5, inf)],
    }  # fmt: skip
    for i, changes in broken.items():
        for col, value in changes:
            rows[i][col] = value
    pg.load(db, "market_data", COLS, rows)
    cat = tmp_path / "catalog"
    r = migrate(run_script, db, cat)
    assert r.code == 0, r.stdout + r.stderr
    rep = by_symbol(report_of(r))["AAPL"]
    assert rep["status"] == "ok", rep["problems"]
    assert rep["expected_rows"] == rep["catalog_rows"] == 12 - len(broken)
    assert rep["rejected_rows"] == len(broken)
    assert set(rep["rejected"]) <= {"NULL or NaN value", "infinite value", "non-positive price"}
    kept = Catalog(cat).read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    assert list(kept.ts_event) == [ns(start.isoformat()) + (i + 1) * MIN for i in (0, 9, 10, 11)]


def test_duplicates_are_never_split_across_pages_of_the_stream(pg, db, tmp_path, run_script):
    """Timestamps with 1-4 copies (seeded random, no period a batch size could align with, so
    batch and page cuts fall inside groups); on odd minutes the last copy differs; pages are far
    smaller than the symbol. A page cut between copies would keep one copy of a conflicting
    group (catalog > expected) or miss identical copies (reject counts change)."""
    create_table(pg, db)
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    rng = random.Random(7)
    rows, kept_ts, dropped, conflicting = [], [], 0, 0
    for i, row in enumerate(bars("AAPL", start, 4000)):
        copies = [list(row) for _ in range(rng.randint(1, 4))]
        if i % 2 and len(copies) > 1:
            copies[-1][6] = row[6] + 1  # the last copy differs in volume
            conflicting += len(copies)
        else:
            kept_ts.append(ns(row[1].isoformat()) + MIN)
            dropped += len(copies) - 1
        rows += copies
    pg.load(db, "market_data", COLS, rows)
    cat = tmp_path / "catalog"
    r = migrate(run_script, db, cat, "batch_rows=1000")
    assert r.code == 0, r.stdout + r.stderr
    rep = by_symbol(report_of(r))["AAPL"]
    assert rep["source_rows"] == len(rows)
    assert rep["expected_rows"] == rep["catalog_rows"] == len(kept_ts)
    assert rep["rejected"] == {
        "duplicate timestamp (identical copy dropped)": dropped,
        "duplicate timestamp with different values": conflicting,
    }
    assert list(Catalog(cat).read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL").ts_event) == kept_ts
    assert r.summary()["counts"]["files_written"] > 3  # many pages, so many cuts
