"""``make doctor`` (issue 16 §4): one command that checks the setup and prints ok / warn / fail with
the fix for each, exit code = the worst finding — run as a user runs it, against the TWS
simulator (healthy, nothing listening, client id in use, data farms down, a live account with a
skewed clock), catalogs a killed writer left behind, PostgreSQL and an S3-protocol server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ntrader.catalog.store import open_store
from ntrader.doctor import DoctorFailed, DoctorSpec, Report, run_checks
from ntrader.doctor.local import disk_space
from ntrader.ibkr.client import IbkrSettings
from ntrader.ibkr.sim import Faults, run_simulator

from .conftest import frame, run_make
from .pg_fixtures import pg_server  # noqa: F401  (the `pg` fixture)
from .s3_fixtures import s3 as s3  # the `s3` fixture

CLIENT_ID = 17


@dataclass
class Doctor:
    proc: subprocess.CompletedProcess
    summary: dict

    @property
    def code(self) -> int:
        return int(self.summary["exit_code"])

    @property
    def rows(self) -> dict[str, dict]:
        return {r["check"]: r for r in self.summary["doctor"]}


def doctor(tmp_path: Path, name: str, port: int, *args: str, **env: str) -> Doctor:
    """``make doctor ARGS…`` against 127.0.0.1:``port`` with its own runs folder."""
    runs = tmp_path / "runs" / name
    base = {"IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(port), "IBKR_CLIENT_ID": str(CLIENT_ID)}
    p = run_make("doctor", *args, runs=runs, env={**base, "DATABASE_URL": "", **env}, timeout=120)
    (path,) = runs.glob("scan/*/summary.json")
    summary = json.loads(path.read_text())
    code = summary["exit_code"]
    assert (p.returncode == 0) == (code == 0), p.stderr[-2000:]
    if code:  # make exits 2; the script's own code is on its last line
        assert f"scripts/scan.py exited with code {code}" in p.stderr
    return Doctor(p, summary)


def statuses(d: Doctor, *checks: str) -> list[str]:
    return [d.rows[c]["status"] for c in checks]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


IB_ROWS = ("ib.tcp", "ib.handshake", "ib.client_id", "ib.farm.market", "ib.farm.hmds")
IB_ROWS += ("ib.farm.secdef", "ib.account", "ib.clock")


def test_healthy_simulator_and_catalog_pass_and_json_is_the_summary(tmp_path, catalog, aapl):
    _iid, bt, eq = aapl
    catalog.write_bars(bt, frame(range(30)), instrument=eq)
    cat = f"CATALOG={catalog.root}"
    with run_simulator() as sim:
        table = doctor(tmp_path, "table", sim.port, cat)
        as_json = doctor(tmp_path, "json", sim.port, cat, "FORMAT=json")
    assert table.code == 0 and as_json.code == 0, table.proc.stdout
    rows = table.rows
    assert statuses(table, *IB_ROWS) == ["ok"] * len(IB_ROWS)
    assert rows["ib.handshake"]["detail"] == "TWS API server version 178"
    assert rows["ib.farm.hmds"]["detail"] == "HMDS (historical data) farm: ushmds OK"
    assert rows["ib.account"]["detail"].startswith("paper account DU1234567")
    local = ("python", "venv", "packages", "catalog", "catalog.writable", "catalog.lock")
    local += ("catalog.journal", "catalog.corrupt")
    assert statuses(table, *local) == ["ok"] * len(local)
    free = shutil.disk_usage(catalog.root).free  # this machine's: ok from 5 GiB free on
    assert rows["disk"]["status"] == ("ok" if free >= 5 * 1024**3 else "warn")
    assert rows["catalog"]["detail"] == f"{catalog.root}: 1 bar type(s)"
    assert "postgres" not in rows and "s3" not in rows  # no DSN, a local catalog
    # the table shows each finding in order; FORMAT=json prints exactly summary.json's findings
    lines = table.proc.stdout.splitlines()
    assert lines[0].split() == ["check", "status", "detail"]
    shown = [line.split()[:2] for line in lines[2:] if line and not line.startswith(" ")]
    assert shown[: len(rows)] == [[r["check"], r["status"]] for r in table.summary["doctor"]]
    n = table.summary["counts"]
    assert n == {"ok": len(rows) - n["warn"], "warn": n["warn"], "fail": 0} and n["warn"] <= 1
    if not n["warn"]:
        assert f"doctor: {len(rows)} ok, 0 warn, 0 fail -> exit 0: all good" in table.proc.stdout
    printed = json.loads(as_json.proc.stdout)
    assert printed == as_json.summary["doctor"]
    assert [(r["check"], r["status"]) for r in printed] == [
        (r["check"], r["status"]) for r in table.summary["doctor"]
    ]
    assert as_json.summary["counts"] == n
    assert tuple(catalog.root.rglob(".doctor-*")) == ()  # the probe file is gone


def test_nothing_listening_fails_with_the_fix_and_a_missing_catalog_is_a_warning(tmp_path):
    missing = tmp_path / "no" / "catalog"
    d = doctor(tmp_path, "down", free_port(), f"CATALOG={missing}")
    assert d.code == 3
    tcp = d.rows["ib.tcp"]
    assert tcp["status"] == "fail" and tcp["exit_code"] == 3
    assert "connection refused" in tcp["detail"]
    assert tcp["fix"].startswith("start IB Gateway or TWS") and "IBKR_PORT" in tcp["fix"]
    assert "ib.handshake" not in d.rows  # nothing to shake hands with
    assert "FAIL    nothing answers at 127.0.0.1:" in d.proc.stdout
    assert "fix: start IB Gateway or TWS" in d.proc.stdout
    assert statuses(d, "catalog", "catalog.writable") == ["warn", "ok"]
    assert "the first make fetch / make import creates it" in d.rows["catalog"]["fix"]
    assert not missing.exists() and not missing.parent.exists()  # looked at, not created
    assert d.summary["status"] == "failed"
    assert d.summary["error"]["kind"] == "connection error"
    assert d.summary["error"]["message"] == "1 check(s) failed: ib.tcp"
    assert d.summary["counts"]["fail"] == 1


def test_client_id_in_use_fails_naming_ibkr_client_id_and_another_id_passes(tmp_path):
    with run_simulator(Faults(client_id_in_use=[CLIENT_ID])) as sim:
        taken = doctor(tmp_path, "taken", sim.port, f"CATALOG={tmp_path / 'c'}")
        other = doctor(
            tmp_path, "other", sim.port, f"CATALOG={tmp_path / 'c'}", IBKR_CLIENT_ID="18"
        )
    assert taken.code == 3
    assert statuses(taken, "ib.tcp", "ib.handshake", "ib.client_id") == ["ok", "ok", "fail"]
    row = taken.rows["ib.client_id"]
    assert (
        row["detail"]
        == f"client id {CLIENT_ID} is in use by another connected program (IB error 326)"
    )
    assert row["fix"].startswith("set IBKR_CLIENT_ID=<another number>")
    assert "ib.farm.hmds" not in taken.rows
    assert other.code == 0 and other.rows["ib.client_id"]["detail"].startswith("client id 18")


def test_farms_down_live_account_and_clock_skew_the_worst_code_wins(tmp_path):
    ahead = 90.0  # IB's clock 90 s ahead of this machine's
    with run_simulator(
        Faults(farm_down=True), account="U7654321", wall_clock=lambda: time.time() + ahead
    ) as sim:
        d = doctor(tmp_path, "farms", sim.port, f"CATALOG={tmp_path / 'c'}", "FORMAT=json")
    farms = ("ib.farm.market", "ib.farm.hmds", "ib.farm.secdef")
    assert statuses(d, *farms) == ["warn", "fail", "fail"]
    assert [d.rows[f]["exit_code"] for f in farms] == [0, 3, 3]
    assert d.rows["ib.farm.hmds"]["detail"].startswith("HMDS (historical data) farm: ushmds broken")
    assert "secdefnj broken" in d.rows["ib.farm.secdef"]["detail"]
    account = d.rows["ib.account"]
    assert account["status"] == "warn" and "this is a LIVE account (U7654321" in account["detail"]
    clock = d.rows["ib.clock"]
    assert clock["status"] == "fail" and clock["exit_code"] == 4
    m = re.match(r"this machine's clock is ([0-9.]+) s behind IB \(> 30 s\): ", clock["detail"])
    assert m and ahead - 1.5 <= float(m.group(1)) <= ahead + 1.5, clock["detail"]
    assert "NTP" in clock["fix"]
    assert d.code == 4  # several fails: the highest code
    assert (
        d.summary["error"]["message"] == "3 check(s) failed: ib.farm.hmds, ib.farm.secdef, ib.clock"
    )


def _killed_import(tmp_path: Path, root: Path) -> None:
    """An overwrite import SIGKILLed right after its journal is durable (nothing applied)."""
    csv = tmp_path / "AAPL.csv"
    rows = [f"2024-01-02 09:{30 + m}:00,101,101.5,100.5,101.2,5" for m in range(20)]
    csv.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    p = run_make(
        "import",
        f"CSV={csv}",
        "SYMBOL=AAPL",
        "MODE=overwrite",
        f"CATALOG={root}",
        runs=tmp_path / "runs" / "import",
        env={"NTRADER_FAULT": "after_journal", "NTRADER_COMMIT": "journal"},
    )
    assert p.returncode != 0 and (root / ".ntrader" / "journal.json").exists(), p.stderr[-2000:]


def test_a_killed_writer_and_quarantined_files_show_and_make_gc_clears_them(
    tmp_path, catalog, aapl
):
    _iid, bt, eq = aapl
    catalog.write_bars(bt, frame(range(30)), instrument=eq)
    root = catalog.root
    _killed_import(tmp_path, root)
    bad = root / ".corrupt" / "data" / "bar" / str(bt) / "x.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet")
    with run_simulator() as sim:
        before = doctor(tmp_path, "before", sim.port, f"CATALOG={root}")
        assert run_make("gc", f"CATALOG={root}", runs=tmp_path / "runs" / "gc").returncode == 0
        lock = open_store(root).lock("write")
        lock.acquire(timeout=0)
        try:
            after = doctor(tmp_path, "after", sim.port, f"CATALOG={root}")
        finally:
            lock.release()
    assert before.code == 0  # warnings only
    assert statuses(before, "catalog.lock", "catalog.journal", "catalog.corrupt") == ["warn"] * 3
    assert "stale owner note" in before.rows["catalog.lock"]["detail"]
    journal = before.rows["catalog.journal"]
    assert journal["detail"].startswith(f"an interrupted commit of {bt} left {root}/.ntrader/")
    assert journal["fix"].startswith("make gc completes it now")
    corrupt = before.rows["catalog.corrupt"]
    assert corrupt["detail"] == (
        f"1 quarantined file(s), 11 bytes in {root}/.corrupt: data/bar/{bt}/x.parquet"
    )
    assert f"rm -r {root}/.corrupt" in corrupt["fix"]
    low = before.rows["disk"]["status"] == "warn"  # a machine with less than 5 GiB free
    footer = f"doctor: {14 - low} ok, {3 + low} warn, 0 fail -> exit 0 with {3 + low} warning(s)"
    assert footer in before.proc.stdout
    # make gc took the lock: the journal is rolled forward, the stale note replaced and removed
    assert not (root / ".ntrader" / "journal.json").exists()
    assert statuses(after, "catalog.lock", "catalog.journal") == ["ok", "ok"]
    held = after.rows["catalog.lock"]["detail"]
    assert held.startswith(f"held by pid {os.getpid()} on {socket.gethostname()} since ")
    assert after.rows["catalog.journal"]["detail"] == "no interrupted commit"
    assert len(catalog.read_bars(bt)) == 30 and after.code == 0


def test_postgres_dsn_is_checked_and_its_password_never_shown(tmp_path, pg):
    db = pg.fresh_db()
    role, password = f"doctor_{os.getpid()}", "Sekr1t-Doctor-Pw"
    admin = pg.dsn(database=db)
    pg.execute(admin, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'", autocommit=True)
    pg.execute(admin, "CREATE TABLE market_data (symbol text, ts timestamptz, close float8)")
    pg.execute(admin, f"GRANT SELECT ON market_data TO {role}")
    pg.require_password(role)
    cat = f"CATALOG={tmp_path / 'c'}"
    with run_simulator() as sim:
        good = doctor(tmp_path, "pg", sim.port, cat, f"DSN={pg.dsn(role, password, db)}")
        wrong = doctor(tmp_path, "pgbad", sim.port, cat, f"DSN={pg.dsn(role, 'wr0ng-Pw', db)}")
    assert good.code == 0, good.proc.stdout
    assert statuses(good, "postgres", "postgres.table") == ["ok", "ok"]
    assert good.rows["postgres"]["detail"].startswith("PostgreSQL 18.")
    assert f"{role}:***@" in good.rows["postgres"]["detail"]
    assert good.rows["postgres.table"]["detail"].startswith("market_data: ")
    assert wrong.code == 3 and wrong.rows["postgres"]["status"] == "fail"
    assert "password authentication failed" in wrong.rows["postgres"]["detail"]
    for d in (good, wrong):
        seen = d.proc.stdout + d.proc.stderr + json.dumps(d.summary)
        assert password not in seen and "wr0ng-Pw" not in seen


def test_s3_catalog_endpoint_and_a_missing_bucket(tmp_path, s3):
    bucket = s3.fresh_bucket()
    s3.fs().pipe_file(f"{bucket}/cat/.corrupt/data/bar/X/a.parquet", b"junk")
    with run_simulator() as sim:
        d = doctor(tmp_path, "s3", sim.port, f"CATALOG=s3://{bucket}/cat", **s3.env)
        gone = doctor(tmp_path, "nob", sim.port, f"CATALOG=s3://{bucket}-gone/cat", **s3.env)
    assert statuses(d, "s3", "catalog", "catalog.writable", "catalog.lock") == ["ok"] * 4
    assert d.rows["s3"]["detail"] == f"{s3.endpoint}: bucket {bucket} listed (credentials from env)"
    assert d.rows["catalog.corrupt"]["status"] == "warn"
    assert f"aws s3 rm --recursive s3://{bucket}/cat/.corrupt/" in d.rows["catalog.corrupt"]["fix"]
    assert "disk" not in d.rows and d.code == 0
    assert not s3.fs().find(f"{bucket}/cat/.ntrader")  # the probe object is gone
    assert gone.code == 2 and gone.rows["s3"]["status"] == "fail"
    assert gone.rows["s3"]["fix"] == f"create it (aws s3 mb s3://{bucket}-gone) or correct CATALOG"
    assert "catalog" not in gone.rows


def test_the_library_runs_without_hydra_inside_an_event_loop(tmp_path):
    """A notebook: plain values in, findings out; disk thresholds are the spec's."""
    free = shutil.disk_usage(tmp_path).free
    assert disk_space(tmp_path, warn_bytes=free * 2, fail_bytes=1).status == "warn"
    assert disk_space(tmp_path, warn_bytes=free * 4, fail_bytes=free * 2).code == 4
    assert disk_space(tmp_path, warn_bytes=1, fail_bytes=1).status == "ok"
    with run_simulator(Faults(client_id_in_use=[5])) as sim:
        spec = DoctorSpec(catalog=str(tmp_path), ibkr=IbkrSettings(port=sim.port, client_id=5))

        async def in_a_notebook() -> list:
            return run_checks(spec)  # an event loop runs: the IB checks get a thread of their own

        found = asyncio.run(in_a_notebook())
    report = Report.of(found)
    assert [f.check for f in found if f.status == "fail"] == ["ib.client_id"]
    assert report.exit_code == 3 and report.counts()["fail"] == 1
    assert json.loads(report.render("json")) == report.summary()["doctor"]
    assert report.render("csv").splitlines()[0] == "check,status,detail,fix,exit_code"
    with pytest.raises(DoctorFailed, match=r"1 check\(s\) failed: ib.client_id") as exc:
        report.summary(raise_on_fail=True)
    assert exc.value.exit_code == 3 and exc.value.result["doctor"] == report.rows()
