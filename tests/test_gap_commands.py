"""Every suggested command works when pasted (issue 12 §4): the commands `make check`,
`make backtest` and `make fetch` print are run as printed — split as a POSIX shell splits them, run
by real `make` in a subprocess against the TWS simulator — and must change what they say they
change. No-data answers of IB are shown as such (with the date asked) and expire; holes inside a
session are re-fetched; readers refuse a catalog that does not exist, writers create it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntrader.catalog.catalog import Catalog
from ntrader.ibkr.sim import Faults, ground_truth, run_simulator
from ntrader.runs.make_args import VARIABLES

from .conftest import REPO
from .pg_fixtures import PgServer, pg_server  # noqa: F401  (pg_server is the `pg` fixture)

BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
MINUTE = 60_000_000_000
SAMPLE = REPO / "data" / "samples" / "AAPL-1min-sample.csv"
MAKE = ["make", "-s", "-o", ".venv/.synced"]  # the venv stamp held old: no `uv sync` runs


def clean_env(sim=None) -> dict[str, str]:
    """The caller's environment without make flags, make variables or ntrader settings; with the
    simulator as the IB endpoint."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "NAUTILUS_PATH", "DATABASE_URL"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and k not in VARIABLES and not k.startswith(("NTRADER_", "IBKR_"))
    }
    if sim is not None:
        env.update(IBKR_HOST="127.0.0.1", IBKR_PORT=str(sim.port))
    return env


def make(target: str, env: dict[str, str], **variables: str) -> subprocess.CompletedProcess:
    args = [*MAKE, target, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def paste(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a printed ``make …`` line as a shell would: split by POSIX rules, then make."""
    words = shlex.split(command)
    assert words[0] == "make", command
    return subprocess.run(
        [*MAKE, *words[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def printed(text: str, start: str) -> list[str]:
    """The ``make …`` commands in console text (after a run-id prefix or "ask now:")."""
    out = []
    for line in text.splitlines():
        i = line.find(start)
        if i >= 0:
            out.append(line[i:].strip())
    return out


def check_json(root: Path, env: dict[str, str], runs: Path, **extra: str) -> dict:
    variables = {"SYMBOL": "AAPL", "CATALOG": str(root), "RUNS": str(runs), "FORMAT": "json"}
    r = make("check", env, **{**variables, **extra})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def assert_exact(root: Path, start: dt.date, end: dt.date) -> None:
    truth = ground_truth("AAPL", start, end)
    got = Catalog(root).read(BT)
    np.testing.assert_array_equal(got.ts_event, truth["ts_open_ns"] + MINUTE)
    np.testing.assert_array_equal(got.close, truth["close"])


def punch_hole(root: Path, day: str, first_minute: int, last_minute: int) -> None:
    """Remove the bars closing in (first_minute, last_minute] local minutes of ``day``."""
    cat = Catalog(root)
    lo = pd.Timestamp(day, tz="America/New_York")
    frame = cat.read(BT, lo.value, (lo + pd.Timedelta(days=1)).value)
    t = pd.DatetimeIndex(frame.ts_event, tz="UTC").tz_convert("America/New_York")
    minutes = np.asarray(t.hour * 60 + t.minute)
    keep = ~((minutes > first_minute) & (minutes <= last_minute))
    assert (~keep).sum() == last_minute - first_minute
    cat.write_bars(BT, frame.take(keep), mode="overwrite")


def set_asked(root: Path, day: str, asked: dt.datetime) -> None:
    """Age a no-data record on disk, as if IB had been asked at ``asked``."""
    path = root / ".ntrader" / "nodata" / f"{BT}.json"
    data = json.loads(path.read_text())
    data["sessions"][day]["asked"] = asked.isoformat()
    path.write_text(json.dumps(data))


# ------------------------------------------------------------------ no-data sessions
def test_no_data_is_shown_as_ibs_answer_and_the_printed_retry_fills_it(tmp_path):
    root, runs = tmp_path / "catalog", tmp_path / "runs"
    today = dt.datetime.now(dt.UTC).date()
    with run_simulator(Faults(no_data_sessions=[dt.date(2024, 5, 8)])) as sim:
        env = clean_env(sim)
        where = {"CATALOG": str(root), "RUNS": str(runs)}
        r = make("fetch", env, SYMBOLS="AAPL", START="2024-05-06", END="2024-05-10", **where)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.startswith("Fetched 1,560 bars in 5 requests"), r.stdout
        assert "IB had no data on 2024-05-08, asked just now" in r.stdout

        rep = check_json(root, env, runs)
        assert rep["gaps"] == []  # nothing a plain fetch would fill
        (nd,) = rep["no_data"]
        assert (nd["kind"], nd["first"], nd["last"], nd["asked"]) == (
            "no data at IB",
            "2024-05-08",
            "2024-05-08",
            str(today),
        )
        retry = nd["command"]
        assert f"CATALOG={root}" in shlex.split(retry)
        assert 'ARGS="ibkr.retry_nodata=true"' in retry
        table = make("check", env, SYMBOL="AAPL", **where).stdout
        assert f"IB had no data on 2024-05-08, asked {today}" in table
        assert "make fetch SYMBOLS=AAPL.NASDAQ START=2024-05-08" not in table.split("ask now:")[0]

        # a plain fetch asks nothing and says so, with what remains
        n = len(sim.requests)
        again = make("fetch", env, SYMBOLS="AAPL", START="2024-05-06", END="2024-05-10", **where)
        assert again.returncode == 0 and len(sim.requests) == n
        assert not again.stdout.startswith("Fetched"), again.stdout
        assert "Nothing fetched (0 requests" in again.stdout
        assert f"IB had no data on 2024-05-08, asked {today}" in again.stdout
        assert printed(again.stdout, "make fetch") == [retry]

        # IB has the data now: the printed command asks again and fills the session
        sim.faults.no_data_sessions = frozenset()
        done = paste(retry, env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(sim.requests) == n + 1 and done.stdout.startswith("Fetched 390 bars")
    rep = check_json(root, env, runs)
    assert rep["gaps"] == [] and rep["no_data"] == []
    assert rep["sessions"] == {"expected": 5, "present": 5, "missing": 0}
    assert_exact(root, dt.date(2024, 5, 6), dt.date(2024, 5, 10))


def test_no_data_answers_expire_and_are_asked_again_by_themselves(tmp_path):
    root, runs = tmp_path / "catalog", tmp_path / "runs"
    where = {"CATALOG": str(root), "RUNS": str(runs)}
    span = {"SYMBOLS": "AAPL", "START": "2024-05-07", "END": "2024-05-08"}
    now = dt.datetime.now(dt.UTC)
    with run_simulator(Faults(no_data_sessions=[dt.date(2024, 5, 8)])) as sim:
        env = clean_env(sim)
        assert make("fetch", env, **span, **where).returncode == 0
        n = len(sim.requests)
        set_asked(root, "2024-05-08", now - dt.timedelta(days=29))  # default expiry: 30 days
        young = make("fetch", env, **span, **where)
        assert young.returncode == 0 and len(sim.requests) == n
        due = (now - dt.timedelta(days=29) + dt.timedelta(days=30)).date()
        assert f"(asked again after {due})" in young.stdout
        # a configurable expiry: 7 days makes the 29-day-old answer stale
        week = make("fetch", env, **span, **where, ARGS="ibkr.nodata_expiry_days=7")
        assert week.returncode == 0 and len(sim.requests) == n + 1  # asked, still no data
        assert "IB had no data on 2024-05-08, asked just now" in week.stdout

        sim.faults.no_data_sessions = frozenset()
        set_asked(root, "2024-05-08", now - dt.timedelta(days=31))
        old = make("fetch", env, **span, **where)
        assert old.returncode == 0 and len(sim.requests) == n + 2
        assert old.stdout.startswith("Fetched 390 bars in 1 request ")
    assert_exact(root, dt.date(2024, 5, 7), dt.date(2024, 5, 8))


def test_a_record_written_before_the_time_was_kept_expires_by_its_file_age(tmp_path):
    """The first nodata format was a bare list of dates: its file's age stands for the time."""
    root, runs = tmp_path / "catalog", tmp_path / "runs"
    where = {"CATALOG": str(root), "RUNS": str(runs)}
    with run_simulator() as sim:
        env = clean_env(sim)
        r = make("fetch", env, SYMBOLS="AAPL", START="2024-05-07", END="2024-05-07", **where)
        assert r.returncode == 0, r.stderr[-3000:]
        path = root / ".ntrader" / "nodata" / f"{BT}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(["2024-05-08"]))
        fresh = check_json(root, env, runs, START="2024-05-07", END="2024-05-08")
        assert [g["first"] for g in fresh["no_data"]] == ["2024-05-08"] and fresh["gaps"] == []
        old = (dt.datetime.now() - dt.timedelta(days=40)).timestamp()
        os.utime(path, (old, old))
        stale = check_json(root, env, runs, START="2024-05-07", END="2024-05-08")
        assert stale["no_data"] == []
        (gap,) = stale["gaps"]
        n = len(sim.requests)
        r = paste(gap["command"], env)
        assert r.returncode == 0 and len(sim.requests) == n + 1
    assert_exact(root, dt.date(2024, 5, 7), dt.date(2024, 5, 8))


# ------------------------------------------------------------------ holes inside sessions
def test_a_hole_inside_a_session_is_filled_by_the_printed_command(tmp_path):
    root = tmp_path / "my cat's data"  # the printed command must quote it
    runs = tmp_path / "runs"
    with run_simulator() as sim:
        env = clean_env(sim)
        where = {"CATALOG": str(root), "RUNS": str(runs)}
        r = make("fetch", env, SYMBOLS="AAPL", START="2024-05-06", END="2024-05-08", **where)
        assert r.returncode == 0, r.stderr[-3000:]
        punch_hole(root, "2024-05-07", 11 * 60, 11 * 60 + 30)  # 11:00-11:30 missing
        (gap,) = check_json(root, env, runs)["gaps"]
        assert (gap["kind"], gap["first"][:16], gap["size"]) == (
            "missing bars",
            "2024-05-07T11:00",
            "30 bars",
        )
        cmd = gap["command"]
        assert f"CATALOG={root}" in shlex.split(cmd)  # quoted for the shell; never data/catalog
        n = len(sim.requests)
        fill = paste(cmd, env)
        assert fill.returncode == 0, fill.stderr[-3000:]
        assert len(sim.requests) == n + 1  # the session is asked again
        assert "1 session(s) to fetch (1 with holes)" in fill.stderr
        rep = check_json(root, env, runs)
        assert rep["gaps"] == [] and rep["bars"]["missing"] == 0
        again = paste(cmd, env)  # complete now: nothing asked, and it says so
        assert again.returncode == 0 and len(sim.requests) == n + 1
        assert again.stdout.startswith("Nothing to fetch (0 requests"), again.stdout
    assert_exact(root, dt.date(2024, 5, 6), dt.date(2024, 5, 8))


def test_extended_hours_gaps_get_an_extended_hours_fetch(tmp_path):
    root, runs = tmp_path / "catalog", tmp_path / "runs"
    with run_simulator() as sim:
        env = clean_env(sim)
        where = {"CATALOG": str(root), "RUNS": str(runs)}
        r = make("fetch", env, SYMBOLS="AAPL", START="2024-05-07", END="2024-05-07", **where)
        assert r.returncode == 0, r.stderr[-3000:]
        ext = {"ARGS": "check.hours=extended"}
        gaps = check_json(root, env, runs, **ext)["gaps"]
        assert [g["first"][11:16] for g in gaps] == ["04:00", "16:00"]  # pre- and after-market
        assert all('ARGS="ibkr.use_rth=false"' in g["command"] for g in gaps)
        n = len(sim.requests)
        r = paste(gaps[0]["command"], env)
        assert r.returncode == 0 and len(sim.requests) == n + 1, r.stderr[-3000:]
        rep = check_json(root, env, runs, **ext)
        assert rep["gaps"] == [] and rep["bars"]["present"] == 960


# ------------------------------------------------------------------ backtest hints
def test_backtest_hints_are_complete_commands_that_work(tmp_path):
    root, runs = tmp_path / "catalog", tmp_path / "runs"
    with run_simulator() as sim:
        env = clean_env(sim)
        where = {"CATALOG": str(root), "RUNS": str(runs)}
        for a, b in (("2024-05-06", "2024-05-07"), ("2024-05-09", "2024-05-10")):
            assert make("fetch", env, SYMBOLS="MSFT", START=a, END=b, **where).returncode == 0
            assert make("fetch", env, SYMBOLS="AAPL", START=a, END=b, **where).returncode == 0
        off = {"ARGS": "ibkr.auto_fetch=false reports.tearsheet=false reports.equity_png=false"}

        # an instrument the catalog lacks: a fetch fills it, running over holes cannot
        lacking = make("backtest", env, SYMBOL="NVDA", START="2024-05-06", END="2024-05-10",
                       **where, **off)  # fmt: skip
        assert "scripts/backtest.py exited with code 1" in lacking.stderr
        assert "allow_missing_sessions" not in lacking.stderr
        (fetch,) = printed(lacking.stderr, "make fetch")
        assert fetch.startswith(
            "make fetch SYMBOLS=NVDA.NASDAQ START=2024-05-06 END=2024-05-10 BAR=1-MINUTE-LAST "
            f"CATALOG={root} RUNS={runs}"
        )
        (imp,) = printed(lacking.stderr, "make import")
        assert f"SYMBOL=NVDA.NASDAQ BAR=1-MINUTE-LAST CATALOG={root}" in imp

        # a missing session: the fetch that fills it, and the backtest that runs over it
        holes = make("backtest", env, SYMBOL="MSFT", START="2024-05-06", END="2024-05-10",
                     **where, **off)  # fmt: skip
        assert "MSFT.NASDAQ: 1 of 5 sessions missing: 2024-05-08" in holes.stderr
        (fill,) = printed(holes.stderr, "make fetch")
        (over,) = printed(holes.stderr, "make backtest")
        assert 'ARGS="data.allow_missing_sessions=true"' in over and f"CATALOG={root}" in over
        ran = paste(over, env)
        assert "running anyway" in ran.stderr and "cannot backtest" not in ran.stderr
        assert "Backtest MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL" in ran.stdout, ran.stderr[-3000:]
        n = len(sim.requests)
        assert paste(fill, env).returncode == 0 and len(sim.requests) == n + 1
        rep = check_json(root, env, runs, SYMBOL="MSFT")
        assert rep["gaps"] == [] and rep["sessions"]["missing"] == 0

        # the missing instrument's printed fetch fills it: the same backtest now finds its data
        assert paste(fetch, env).returncode == 0
        ok = make("backtest", env, SYMBOL="NVDA", START="2024-05-06", END="2024-05-10",
                  **where, **off)  # fmt: skip
        assert "cannot backtest" not in ok.stderr, ok.stderr[-3000:]
        assert "Backtest NVDA.NASDAQ-1-MINUTE-LAST-EXTERNAL" in ok.stdout


def test_backtest_shows_no_data_sessions_as_ibs_answer(tmp_path):
    root, runs = tmp_path / "catalog", tmp_path / "runs"
    today = dt.datetime.now(dt.UTC).date()
    with run_simulator(Faults(no_data_sessions=[dt.date(2024, 5, 8)])) as sim:
        env = clean_env(sim)
        where = {"CATALOG": str(root), "RUNS": str(runs)}
        r = make("fetch", env, SYMBOLS="AAPL", START="2024-05-06", END="2024-05-10", **where)
        assert r.returncode == 0, r.stderr[-3000:]
        n = len(sim.requests)
        r = make("backtest", env, SYMBOL="AAPL", START="2024-05-06", END="2024-05-10", **where,
                 ARGS="reports.tearsheet=false reports.equity_png=false")  # fmt: skip
        assert len(sim.requests) == n  # not fetched again
        assert f"IB had no data on 2024-05-08 (1 session), asked {today}" in r.stderr
        assert "cannot backtest" not in r.stderr
        (retry,) = printed(r.stderr, "make fetch")
        assert 'ARGS="ibkr.retry_nodata=true"' in retry and f"CATALOG={root}" in retry


# ------------------------------------------------------------------ a catalog that does not exist
def test_readers_refuse_a_missing_catalog_and_its_printed_fetch_creates_it(tmp_path):
    root, runs = tmp_path / "no" / "catalog", tmp_path / "runs"
    with run_simulator() as sim:
        env = clean_env(sim)
        where = {"CATALOG": str(root), "RUNS": str(runs)}
        scan = make("scan", env, **where)
        assert "scripts/scan.py exited with code 1" in scan.stderr, scan.stdout
        assert f"catalog {root} does not exist" in scan.stderr
        check = make("check", env, SYMBOL="AAPL", **where)
        assert "scripts/scan.py exited with code 1" in check.stderr
        assert f"catalog {root} does not exist" in check.stderr
        bt = make("backtest", env, SYMBOL="AAPL", START="2024-05-06", END="2024-05-06", **where)
        assert "scripts/backtest.py exited with code 1" in bt.stderr
        assert f"catalog {root} does not exist" in bt.stderr
        assert sim.requests == [] and not root.exists()  # no auto-fetch into a typo

        (fetch,) = printed(scan.stderr, "make fetch")
        r = paste(fetch, env)
        assert r.returncode == 0, r.stderr[-3000:]
        assert f"creating catalog {root} (it did not exist)" in r.stderr
        assert len(sim.requests) > 0
    listed = make("scan", env, FORMAT="json", **where)
    assert listed.returncode == 0 and [x["bar_type"] for x in json.loads(listed.stdout)] == [BT]


def test_writers_create_the_catalog_and_say_so(tmp_path, pg: PgServer):
    runs = tmp_path / "runs"
    env = clean_env()
    imported = tmp_path / "imported"
    r = make("import", env, CSV=str(SAMPLE), SYMBOL="AAPL", CATALOG=str(imported), RUNS=str(runs))
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"creating catalog {imported} (it did not exist)" in r.stderr
    again = make("import", env, CSV=str(SAMPLE), SYMBOL="AAPL", CATALOG=str(imported),
                 RUNS=str(runs))  # fmt: skip
    assert again.returncode == 0 and "creating catalog" not in again.stderr

    name = pg.fresh_db()
    dsn = pg.dsn(database=name)
    pg.execute(
        dsn,
        "CREATE TABLE market_data (symbol text, timestamp timestamptz, open numeric(12,4), "
        "high numeric(12,4), low numeric(12,4), close numeric(12,4), volume bigint)",
    )
    t0 = dt.datetime(2024, 5, 7, 13, 30, tzinfo=dt.UTC)
    rows = [["AAPL", t0 + dt.timedelta(minutes=i), 100, 101, 99, 100, 10] for i in range(30)]
    cols = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    pg.load(dsn, "market_data", cols, rows)
    migrated = tmp_path / "migrated"
    m = make("migrate", env, DSN=dsn, CATALOG=str(migrated), RUNS=str(runs))
    assert m.returncode == 0, m.stderr[-3000:]
    assert f"creating catalog {migrated} (it did not exist)" in m.stderr

    with run_simulator() as sim:
        fetched = tmp_path / "fetched"
        f = make("fetch", clean_env(sim), SYMBOLS="AAPL", START="2024-05-07", END="2024-05-07",
                 CATALOG=str(fetched), RUNS=str(runs))  # fmt: skip
        assert f.returncode == 0, f.stderr[-3000:]
        assert f"creating catalog {fetched} (it did not exist)" in f.stderr


def test_an_empty_catalog_suggests_commands_for_itself(tmp_path):
    root, runs = tmp_path / "empty", tmp_path / "runs"
    root.mkdir()
    r = make("scan", clean_env(), CATALOG=str(root), RUNS=str(runs))
    assert r.returncode == 0 and f"catalog {root} holds no bars yet" in r.stdout
    (imp,) = printed(r.stdout, "make import")
    assert f"CATALOG={root}" in imp
    done = paste(imp, clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    listed = make("scan", clean_env(), CATALOG=str(root), RUNS=str(runs), FORMAT="json")
    assert [x["bar_type"] for x in json.loads(listed.stdout)] == [BT]


@pytest.fixture(autouse=True)
def _no_default_catalog_touched():
    """A printed command without CATALOG= would write into the repository's data/catalog."""
    default = REPO / "data" / "catalog"
    before = sorted(p.name for p in default.rglob("*")) if default.exists() else None
    yield
    after = sorted(p.name for p in default.rglob("*")) if default.exists() else None
    assert after == before, "a command wrote into data/catalog"
