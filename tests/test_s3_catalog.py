"""The catalog on S3 (a real S3 server: moto in server mode, its own process, over HTTP).

Every script against ``catalog.path=s3://…``: import, scan and backtest; fetch from the TWS
simulator; two concurrent writer processes serialized by the lease object; a writer killed
mid-commit completed by the next one; credentials in no output file.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog import lock as store_lock
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.lock import LeaseLock
from ntrader.errors import CatalogBusy, CatalogCorruption, SystemFailure
from ntrader.ibkr.sim import run_simulator
from ntrader.instruments import make_equity, resolve_instrument_id

from .conftest import MINUTE, REPO, T0, frame
from .pg_fixtures import pg_server as pg_server
from .s3_fixtures import ACCESS_KEY, SECRET_KEY
from .s3_fixtures import s3 as s3
from .test_backtest import vendor_csv
from .test_catalog import _writer
from .test_fetch import assert_exact

BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def bucket(s3) -> str:
    return s3.fresh_bucket()


def assert_no_secret(*folders: Path) -> None:
    for folder in folders:
        for p in folder.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                assert SECRET_KEY.encode() not in data, p
                assert ACCESS_KEY.encode() not in data, p


def test_import_scan_backtest_on_s3_match_the_local_catalog(run_script, s3, bucket, tmp_path):
    csv = tmp_path / "aapl.csv"
    vendor_csv(csv, dt.date(2024, 1, 2), dt.date(2024, 1, 12), seed=7)
    url = f"s3://{bucket}/catalog"
    local = tmp_path / "local"
    for where in (url, str(local)):
        r = run_script("import_csv", f"csv.path={csv}", "symbol=AAPL", f"catalog.path={where}")
        assert r.code == 0, r.stderr
        assert f"(catalog {where})" in r.stdout
    remote, here = Catalog(url), Catalog(local)
    a, b = remote.read(BT), here.read(BT)
    np.testing.assert_array_equal(a.ts_event, b.ts_event)
    np.testing.assert_array_equal(a.close, b.close)
    # a plain NautilusTrader catalog on the same prefix reads everything (Rust reader over HTTP)
    assert len(remote.nautilus().bars([BT])) == len(b) == 9 * 390
    assert [f.path.name for f in remote.files(BT)] == [f.path.name for f in here.files(BT)]

    scan = run_script("scan", f"catalog.path={url}", "format=json")
    assert scan.code == 0, scan.stderr
    rows = json.loads(scan.stdout)
    assert [(x["bar_type"], x["rows"]) for x in rows] == [(BT, 9 * 390)]
    assert rows[0]["bytes"] == here.availability(BT).bytes
    check = run_script("scan", f"catalog.path={url}", "symbol=AAPL", "format=json")
    assert check.code == 0, check.stderr
    assert json.loads(check.stdout)["availability"]["rows"] == 9 * 390

    results, manifests = [], []
    for where in (url, str(local)):
        bt = run_script("backtest", f"catalog.path={where}", "symbol=AAPL", "dates=all")
        assert bt.code == 0, bt.stderr
        results.append(bt.summary()["result"])
        manifests.append(json.loads((Path(bt.summary()["run_dir"]) / "manifest.json").read_text()))
    assert results[0] == results[1] and results[0]["bars"] == 9 * 390
    # the manifest on S3: the same files, bytes and content hashes, the catalog version, the log
    on_s3, on_disk = (m["data"] for m in manifests)
    assert on_s3["catalog"] == url and on_s3["catalog_version"] == on_disk["catalog_version"] == 1
    assert on_s3["bar_types"][BT]["files"] == on_disk["bar_types"][BT]["files"]
    assert all(len(f["xxh3_128"]) == 32 for f in on_s3["bar_types"][BT]["files"])
    log = run_script("scan", f"catalog.path={url}", "symbol=AAPL", "log=true", "format=json")
    assert [(c["version"], c["script"]) for c in json.loads(log.stdout)["commits"]] == [
        (1, "import_csv")
    ]
    assert_no_secret(tmp_path / "runs")


def test_fetch_into_s3_is_exact_and_a_rerun_asks_nothing(run_script, s3, bucket, tmp_path):
    url = f"s3://{bucket}/catalog"
    start, end = dt.date(2024, 3, 4), dt.date(2024, 3, 8)
    with run_simulator() as sim:
        env = {"IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(sim.port)}
        args = ("symbols=[AAPL]", f"dates.start={start}", f"dates.end={end}")
        r = run_script("fetch", *args, f"catalog.path={url}", env=env)
        assert r.code == 0, r.stderr
        assert_exact(url, "AAPL", start, end)
        n = len(sim.requests)
        again = run_script("fetch", *args, f"catalog.path={url}", env=env)
        assert again.code == 0 and len(sim.requests) == n
    assert f"into {url}" in r.stdout
    assert_no_secret(tmp_path / "runs")


def test_migrate_from_postgresql_into_s3(run_script, pg, s3, bucket, tmp_path):
    """A legacy table (2 symbols x 2 sessions of RTH minutes) into s3://…, validated."""
    dsn = pg.dsn(database=pg.fresh_db())
    pg.execute(
        dsn,
        "CREATE TABLE market_data (symbol text, timestamp timestamptz, open numeric(12,4), "
        "high numeric(12,4), low numeric(12,4), close numeric(12,4), volume bigint)",
    )
    rows = []
    for sym, base in (("AAPL", 180), ("MSFT", 400)):
        for day in ("2024-03-04", "2024-03-05"):
            t0 = dt.datetime.fromisoformat(f"{day}T14:30:00+00:00")
            for i in range(390):
                c = round(base + (i % 17) * 0.01, 2)
                stamp = (t0 + dt.timedelta(minutes=i)).isoformat()
                rows.append([sym, stamp, c, c + 0.05, c - 0.05, c, 100 + i])
    cols = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    pg.load(dsn, "market_data", cols, rows)
    url = f"s3://{bucket}/catalog"
    r = run_script("migrate", f"catalog.path={url}", env={"DATABASE_URL": dsn})
    assert r.code == 0, r.stderr
    c = Catalog(url)
    for sym in ("AAPL", "MSFT"):
        got = c.read(f"{sym}.NASDAQ-1-MINUTE-LAST-EXTERNAL")
        assert len(got) == 780 and got.ts_event[0] == int(
            dt.datetime(2024, 3, 4, 14, 31, tzinfo=dt.UTC).timestamp() * 1e9
        )
    again = run_script("migrate", f"catalog.path={url}", env={"DATABASE_URL": dsn})
    assert again.code == 0, again.stderr
    assert len(c.read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")) == 780  # idempotent
    assert_no_secret(tmp_path / "runs")


def test_two_concurrent_writer_processes_never_interleave(s3, bucket):
    url = f"s3://{bucket}/catalog"
    ctx = mp.get_context("spawn")
    # the same writer as the local test; spawned children inherit the S3 variables
    procs = [ctx.Process(target=_writer, args=(url, s, 6)) for s in (0, 30)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    c = Catalog(url)
    got = c.read(BT).ts_event
    assert set(got.tolist()) == {T0 + m * MINUTE for m in range(0, 95)}
    files = c.files(BT)
    # Every commit replaced the files it overlapped: interleaved writers would leave overlaps.
    assert all(a.last_ns < b.first_ns for a, b in itertools.pairwise(files))
    assert len(c.nautilus().bars([BT])) == 95
    assert not s3.fs().exists(f"{bucket}/catalog/.ntrader/write.lock")  # released


def _grower(url: str, n: int, env: dict[str, str]) -> None:
    os.environ.update(env)
    iid = resolve_instrument_id("AAPL")
    c = Catalog(url)
    for i in range(1, n + 1):  # every commit replaces the one file with a longer one
        c.write_bars(BT, frame(range(0, 10 * i)), instrument=make_equity(iid, 2))


def test_readers_never_see_a_commit_half_applied(s3, bucket):
    """On S3 a commit deletes and copies objects one by one; readers must still get a whole
    version each time: bars 0..10k-1 for some k, never a hole and never duplicates."""
    url = f"s3://{bucket}/catalog"
    iid = resolve_instrument_id("AAPL")
    Catalog(url).write_bars(BT, frame(range(0, 10)), instrument=make_equity(iid, 2))
    writer = mp.get_context("spawn").Process(target=_grower, args=(url, 25, s3.env))
    writer.start()
    reader = Catalog(url)
    seen = set()
    while writer.is_alive() or not seen:
        ts = reader.read(BT).ts_event
        k = len(ts)
        assert k >= 10 and k % 10 == 0 and ts.tolist() == [T0 + m * MINUTE for m in range(k)]
        seen.add(k)
    writer.join(300)
    assert writer.exitcode == 0
    assert len(seen) > 1  # the reader really overlapped the writer's commits
    assert len(reader.read(BT)) == 250


def test_lease_lock_excludes_expires_and_detects_loss(s3, bucket, monkeypatch):
    fs = s3.fs()
    key = PurePosixPath(bucket) / "locks" / "w.lock"
    a = LeaseLock(fs, key, "test", ttl=600)
    b = LeaseLock(fs, key, "test", ttl=600)
    a.acquire(timeout=0)
    assert bucket in store_lock._CONDITIONAL_OK  # the server proved it honours If-None-Match
    assert [k for k in fs.find(bucket) if ".probe-" in k] == []  # and the probe is gone
    with pytest.raises(CatalogBusy, match=f"pid {os.getpid()}"):
        b.acquire(timeout=0.3)
    a.acquire(timeout=0)  # re-entrant
    a.release()
    with pytest.raises(CatalogBusy):
        b.acquire(timeout=0)  # still held once
    a.release()
    assert not fs.exists(str(key))
    b.acquire(timeout=0)
    b.release()
    # A writer stalls past its lease: another one takes over; the stalled one's next renewal is
    # refused (compare-and-swap on a version that is gone) and check() stops it from committing.
    monkeypatch.setattr(store_lock, "SKEW_S", 0.0)
    stalled = LeaseLock(fs, key, "test", ttl=0.5)
    stalled.acquire(timeout=0)
    stalled.check()
    stalled._stop.set()  # stall: no more background renewals
    fresh = LeaseLock(fs, key, "test", ttl=600)
    with pytest.raises(CatalogBusy):
        fresh.acquire(timeout=0)  # not expired yet
    time.sleep(0.6)
    fresh.acquire(timeout=5)
    assert not stalled.renew_once()
    with pytest.raises(SystemFailure, match="lost the write lock"):
        stalled.check()
    stalled.release()  # must not delete the new holder's lease
    assert fs.exists(str(key))
    fresh.release()
    assert not fs.exists(str(key))


def test_writer_killed_mid_commit_is_read_through_and_completed_by_the_next_writer(
    s3, bucket, tmp_path
):
    url = f"s3://{bucket}/catalog"
    iid = resolve_instrument_id("AAPL")
    c = Catalog(url)
    c.write_bars(BT, frame(range(0, 20)), instrument=make_equity(iid, 2))
    code = (
        "import sys; sys.path.insert(0, 'tests'); from conftest import frame; "
        "from ntrader.catalog.catalog import Catalog; "
        f"Catalog({url!r}).write_bars({BT!r}, frame(range(10, 40)))"
    )
    env = {**os.environ, **s3.env, "NTRADER_FAULT": "mid_apply", "NTRADER_LEASE_TTL": "2"}
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True)
    assert p.returncode == -9, p.stderr
    lease = f"{bucket}/catalog/.ntrader/write.lock"
    assert json.loads(s3.fs().cat_file(lease))["owner"].startswith("pid ")  # the dead one's
    fs = s3.fs()
    assert fs.exists(f"{bucket}/catalog/.ntrader/journal.json")
    # A reader reads through the journal (the commit as it will be): no lock, no write.
    held = fs.cat_file(lease)
    got = Catalog(url).read(BT).ts_event
    assert got.tolist() == [T0 + m * MINUTE for m in range(0, 40)]
    assert Catalog(url).availability(BT).rows == 40 and len(Catalog(url).read_bars(BT)) == 40
    assert fs.cat_file(lease) == held  # the dead writer's lease untouched: nobody took it
    assert fs.exists(f"{bucket}/catalog/.ntrader/journal.json")
    # The next writer waits out the dead writer's lease (2 s ttl + 2 s skew) and rolls it forward.
    Catalog(url).write_bars(BT, frame(range(40, 45)))
    assert not fs.exists(f"{bucket}/catalog/.ntrader/journal.json")
    assert fs.find(f"{bucket}/catalog/.ntrader/tmp") == []
    assert len(ParquetDataCatalog(f"{bucket}/catalog", **s3.nautilus_options()).bars([BT])) == 45


def test_a_corrupt_object_is_reported_left_in_place_and_moved_by_repair(s3, bucket):
    url = f"s3://{bucket}/catalog"
    c = Catalog(url)
    c.write_bars(BT, frame(range(0, 10)), instrument=make_equity(resolve_instrument_id("AAPL"), 2))
    c.write_bars(BT, frame(range(100, 110)))
    bad = c.files(BT)[1].path
    s3.fs().pipe_file(str(bad), b"not parquet at all")
    for read in (c.availability, c.read, c.read_bars):
        with pytest.raises(CatalogCorruption, match="left in place"):
            read(BT)
    assert s3.fs().cat_file(str(bad)) == b"not parquet at all"
    assert not s3.fs().exists(f"{bucket}/catalog/.corrupt")
    moved = c.quarantine_corrupt()
    assert [m.path for m in moved] == [str(bad)]
    assert [f.path for f in c.files(BT)] == [c.files(BT)[0].path] and len(c.read(BT)) == 10
    found = s3.fs().find(f"{bucket}/catalog/.corrupt")
    assert [m.rsplit("/", 1)[-1] for m in found] == [bad.name]


def test_bad_locations_are_clear_errors(run_script, s3):
    r = run_script("scan", "catalog.path=s3://no-such-bucket-here/catalog")
    assert r.code == 2 and "bucket of s3://no-such-bucket-here/catalog does not exist" in r.stderr
    down = run_script(
        "scan", "catalog.path=s3://x/catalog", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert down.code == 3 and "cannot reach the object store" in down.stderr
    assert "http://127.0.0.1:9" in down.stderr
