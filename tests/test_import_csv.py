"""`scripts/import_csv.py` run as a user runs it, against a real catalog on disk."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.commitlog import commits

from .conftest import REPO, tree_snapshot
from .csv_corpus import CASES

BT = "NVDA.NASDAQ-1-MINUTE-LAST-EXTERNAL"


def spec_overrides(spec: dict) -> list[str]:
    out = []
    for k, v in spec.items():
        if isinstance(v, dict):
            out += [f"csv.{k}.{kk}={vv}" for kk, vv in v.items()]
        elif k == "price_precision":
            out.append(f"price_precision={v}")
        else:
            out.append(f"csv.{k}={json.dumps(v) if isinstance(v, str) else v}")
    return out


def minute_csv(path, start="2024-01-02 09:30", n=390, tz=None, seed=0, price=100.0) -> pd.DataFrame:
    """A realistic 1-minute export stamped at the bar OPEN, naive New York time."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq="1min", tz=tz)
    close = np.round(price + np.cumsum(rng.normal(0, 0.05, n)), 2)
    open_ = np.round(np.r_[close[0], close[:-1]], 2)
    high = np.round(np.maximum(open_, close) + rng.uniform(0, 0.1, n), 2)
    low = np.round(np.minimum(open_, close) - rng.uniform(0, 0.1, n), 2)
    vol = rng.integers(100, 10_000, n)
    df = pd.DataFrame(
        {
            "Datetime": ts.strftime("%Y-%m-%d %H:%M:%S"),
            "Open": open_,
            "High": high,
            "Low": low,
            "Close": close,
            "Volume": vol,
        }
    )
    df.to_csv(path, index=False, float_format="%.2f")
    return df


@pytest.fixture
def seeded(tmp_path, run_script):
    """A catalog already holding one NVDA session (so 'unchanged' means something)."""
    root = tmp_path / "catalog"
    minute_csv(tmp_path / "seed.csv", "2024-01-03 09:30")
    r = run_script(
        "import_csv", f"csv.path={tmp_path / 'seed.csv'}", "symbol=NVDA", f"catalog.path={root}"
    )
    assert r.code == 0, r.stderr
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_csv_exits_2_and_leaves_catalog_unchanged(case, seeded, tmp_path, run_script):
    path = case.write(tmp_path)
    before = tree_snapshot(seeded)
    overrides = spec_overrides(case.spec)
    if case.calendar_days:
        overrides.append("bars=daily")
    r = run_script(
        "import_csv", f"csv.path={path}", "symbol=NVDA", f"catalog.path={seeded}", *overrides
    )
    assert r.code == 2, r.stderr
    assert case.message_contains in r.stderr
    for line in case.lines:
        assert f"line {line}:" in r.stderr
    assert "what to do:" in r.stderr
    assert tree_snapshot(seeded) == before
    s = r.summary()
    assert s["exit_code"] == 2 and s["error"]["kind"] == "input error"


def test_vendor_csv_roundtrip_through_plain_nautilus(tmp_path, run_script):
    df = minute_csv(tmp_path / "nvda.csv")
    root = tmp_path / "catalog"
    r = run_script(
        "import_csv",
        f"csv.path={tmp_path / 'nvda.csv'}",
        "symbol=NVDA.NASDAQ",
        f"catalog.path={root}",
    )
    assert r.code == 0, r.stderr
    assert "rows read 390" in r.stdout and "added 390" in r.stdout
    bars = ParquetDataCatalog(str(root)).bars([BT])
    assert len(bars) == len(df)
    opens = pd.to_datetime(df["Datetime"]).dt.tz_localize("America/New_York")
    expected_close_ts = (opens + pd.Timedelta(minutes=1)).dt.tz_convert("UTC")
    assert [b.ts_event for b in bars] == [t.value for t in expected_close_ts]
    for col in ("Open", "High", "Low", "Close"):
        got = [getattr(b, col.lower()).as_double() for b in bars]
        assert got == df[col].round(2).tolist()
    assert [b.volume.as_double() for b in bars] == df["Volume"].astype(float).tolist()
    inst = ParquetDataCatalog(str(root)).instruments()
    assert str(inst[0].id) == "NVDA.NASDAQ" and inst[0].price_precision == 2
    s = r.summary()
    assert s["status"] == "ok" and s["counts"]["rows_added"] == 390
    run_dir = next(d for d in (tmp_path / "runs" / "import_csv").iterdir() if d.is_dir())
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert (run_dir / ".hydra" / "overrides.yaml").exists()
    log = (run_dir / "import_csv.log").read_text()
    assert log and all(f"[import_csv/{run_dir.name}]" in ln for ln in log.splitlines() if ln)


def test_daily_yahoo_export(tmp_path, run_script):
    (tmp_path / "d.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-03-08,169.00,173.70,168.94,170.73,170.1,76114600\n"
        "2024-03-11,172.94,174.38,172.05,172.75,172.1,60139500\n"
    )
    root = tmp_path / "catalog"
    r = run_script(
        "import_csv",
        f"csv.path={tmp_path / 'd.csv'}",
        "symbol=AAPL",
        "bars=daily",
        f"catalog.path={root}",
    )
    assert r.code == 0, r.stderr
    bars = ParquetDataCatalog(str(root)).bars(["AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"])
    assert [b.close.as_double() for b in bars] == [170.73, 172.75]
    # ts_event = the next local midnight (the daily bar closes after its session)
    assert [
        pd.Timestamp(b.ts_event, tz="UTC").tz_convert("America/New_York").isoformat() for b in bars
    ] == ["2024-03-09T00:00:00-05:00", "2024-03-12T00:00:00-04:00"]


@pytest.mark.parametrize("mode", ["skip", "overwrite", "merge"])
def test_modes_end_to_end(mode, tmp_path, run_script):
    root = tmp_path / "catalog"
    a = minute_csv(tmp_path / "a.csv", n=60, seed=1)
    b = minute_csv(tmp_path / "b.csv", "2024-01-02 10:00", n=60, seed=2, price=120)
    b2 = b.iloc[::2]  # overwrite must drop a's bars missing from b's range
    b2.to_csv(tmp_path / "b.csv", index=False, float_format="%.2f")
    base = [f"catalog.path={root}", "symbol=NVDA"]
    assert run_script("import_csv", f"csv.path={tmp_path / 'a.csv'}", *base).code == 0
    r = run_script("import_csv", f"csv.path={tmp_path / 'b.csv'}", *base, f"mode={mode}")
    assert r.code == 0, r.stderr
    closes = {b.ts_event: b.close.as_double() for b in ParquetDataCatalog(str(root)).bars([BT])}
    a_ts = {
        pd.Timestamp(t, tz="America/New_York").value + 60 * 10**9: c
        for t, c in zip(a["Datetime"], a["Close"], strict=True)
    }
    b_ts = {
        pd.Timestamp(t, tz="America/New_York").value + 60 * 10**9: c
        for t, c in zip(b2["Datetime"], b2["Close"], strict=True)
    }
    if mode == "skip":
        expected = {**b_ts, **a_ts}
    elif mode == "merge":
        expected = {**a_ts, **b_ts}
    else:
        lo, hi = min(b_ts), max(b_ts)
        expected = {**{t: c for t, c in a_ts.items() if not lo <= t <= hi}, **b_ts}
    assert closes == expected


def _import_cmd(csv, root):
    return [
        sys.executable,
        str(REPO / "scripts" / "import_csv.py"),
        f"csv.path={csv}",
        "symbol=NVDA",
        f"catalog.path={root}",
        "mode=overwrite",
    ]


@pytest.mark.parametrize(
    "commit,point",
    [
        ("exchange", "before_swap"),
        ("exchange", "after_swap"),
        ("journal", "before_journal"),
        ("journal", "after_journal"),
        ("journal", "mid_apply"),
    ],
)
def test_sigkill_during_write_then_rerun(commit, point, tmp_path, seeded):
    """SIGKILL at each step of a write: the catalog stays readable with old or new content, and
    a rerun completes the import exactly."""
    csv = tmp_path / "big.csv"
    df = minute_csv(csv, "2024-01-02 09:30", n=3000, seed=7)  # overlaps the seeded session
    old = {b.ts_event: b.close.as_double() for b in ParquetDataCatalog(str(seeded)).bars([BT])}
    env = {**os.environ, "NTRADER_FAULT": point, "NTRADER_RUNS": str(tmp_path / "runs")}
    if commit == "journal":
        env["NTRADER_COMMIT"] = "journal"
    p = subprocess.run(_import_cmd(csv, seeded), env=env, capture_output=True, cwd=REPO)
    assert p.returncode == -signal.SIGKILL
    plain = {b.ts_event: b.close.as_double() for b in ParquetDataCatalog(str(seeded)).bars([BT])}
    frame = Catalog(seeded).read(BT)  # ntrader's reader first completes a journaled write
    after = dict(zip(frame.ts_event.tolist(), frame.close.tolist(), strict=True))
    new = {
        pd.Timestamp(t, tz="America/New_York").value + 60 * 10**9: c
        for t, c in zip(df["Datetime"], df["Close"], strict=True)
    }
    lo, hi = min(new), max(new)
    updated = {**{t: c for t, c in old.items() if not lo <= t <= hi}, **new}
    if point == "mid_apply":
        # Fallback path only: a plain reader sees the replaced file gone until ntrader's next
        # access completes the journal — readable, no duplicates, nothing lost.
        assert set(plain) <= set(old) and after == updated
    elif point == "after_journal":  # journal durable, nothing applied: old for a plain reader
        assert plain == old and after == updated
    else:
        assert plain == after and after in (old, updated)
    env.pop("NTRADER_FAULT")
    p = subprocess.run(_import_cmd(csv, seeded), env=env, capture_output=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    final = {b.ts_event: b.close.as_double() for b in ParquetDataCatalog(str(seeded)).bars([BT])}
    assert final == updated
    assert not list(seeded.rglob("*.tmp")) and not (seeded / ".ntrader" / "journal.json").exists()
    # the commit log: one entry per visible commit, none for the one the kill made invisible
    folders = sorted(
        (tmp_path / "runs" / "import_csv").glob("20*"), key=lambda p: p.stat().st_mtime
    )
    killed, rerun = (f"import_csv/{f.name}" for f in folders[-2:])
    catalog = Catalog(seeded)
    log = commits(catalog, BT)
    assert [e["version"] for e in log] == [1, 2] and catalog.history.log.head() == 2
    visible = point in ("after_swap", "after_journal", "mid_apply")  # then the rerun had no work
    assert log[1]["run_id"] == (killed if visible else rerun)
    assert set(log[1]["added"]) <= {p.name for p in (seeded / "data" / "bar" / BT).iterdir()}
    assert not (seeded / ".ntrader" / "log" / "PENDING").exists()
    if visible:  # as of version 1: the seeded session alone, from the retained history
        then = Catalog(seeded, as_of=1).read(BT)
        assert dict(zip(then.ts_event.tolist(), then.close.tolist(), strict=True)) == old


def test_sigkill_at_a_random_moment(tmp_path, seeded):
    csv = tmp_path / "big.csv"
    minute_csv(csv, "2024-04-01 00:00", n=200_000, seed=3)  # 24x7 naive times, no DST switch
    old = {b.ts_event for b in ParquetDataCatalog(str(seeded)).bars([BT])}
    env = {**os.environ, "NTRADER_RUNS": str(tmp_path / "runs")}
    p = subprocess.Popen(
        _import_cmd(csv, seeded),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(float(np.random.default_rng().uniform(2.0, 4.0)))
    p.send_signal(signal.SIGKILL)
    p.wait()
    got = {b.ts_event for b in Catalog(seeded).read_bars(BT)}
    assert got == old or len(got) >= 200_000
    p = subprocess.run(_import_cmd(csv, seeded), env=env, capture_output=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert len(ParquetDataCatalog(str(seeded)).bars([BT])) >= 200_000


def test_two_concurrent_imports_both_land(tmp_path, run_script):
    root = tmp_path / "catalog"
    a = minute_csv(tmp_path / "a.csv", "2024-01-02 09:30", n=300, seed=1)
    b = minute_csv(tmp_path / "b.csv", "2024-01-02 12:00", n=300, seed=2)  # overlaps a
    env = {**os.environ, "NTRADER_RUNS": str(tmp_path / "runs")}
    cmds = [
        [
            sys.executable,
            str(REPO / "scripts" / "import_csv.py"),
            f"csv.path={c}",
            "symbol=NVDA",
            f"catalog.path={root}",
            "mode=merge",
        ]
        for c in (tmp_path / "a.csv", tmp_path / "b.csv")
    ]
    procs = [subprocess.Popen(c, env=env, cwd=REPO, stderr=subprocess.PIPE) for c in cmds]
    assert [p.wait(120) for p in procs] == [0, 0]
    got = {b.ts_event for b in ParquetDataCatalog(str(root)).bars([BT])}
    want = {
        pd.Timestamp(t, tz="America/New_York").value + 60 * 10**9
        for t in pd.concat([a["Datetime"], b["Datetime"]])
    }
    assert got == want
    files = Catalog(root).files(BT)
    assert all(x.last_ns < y.first_ns for x, y in itertools.pairwise(files))
    runs = sorted((tmp_path / "runs" / "import_csv").glob("20*"))
    assert len(runs) == 2  # same-second starts still get separate run folders


def test_missing_file_and_bad_arguments(tmp_path, run_script):
    root = f"catalog.path={tmp_path / 'c'}"
    r = run_script("import_csv", f"csv.path={tmp_path / 'nope.csv'}", "symbol=NVDA", root)
    assert r.code == 2 and "CSV file not found" in r.stderr
    minute_csv(tmp_path / "ok.csv", n=5)
    ok = f"csv.path={tmp_path / 'ok.csv'}"
    r = run_script("import_csv", ok, "symbol=NVDA", root, "mode=replace")
    assert r.code == 2 and "unknown conflict mode 'replace'" in r.stderr
    r = run_script("import_csv", ok, "symbol=NVDA", root, "bars.spec=1-MIN")
    assert r.code == 2 and "invalid bar spec '1-MIN'" in r.stderr
    r = run_script("import_csv", ok, root)  # symbol missing
    assert r.code == 2 and "symbol" in r.stderr
    r = run_script("import_csv", ok, "symbol=NVDA", root, "no_such_key=1")
    assert r.code == 2 and "input error" in r.stderr
    s = r.summary()  # Hydra rejected it before the job: a run folder + summary all the same
    assert (s["exit_code"], s["status"]) == (2, "failed") and "no_such_key=1" in s["overrides"]
    assert not (tmp_path / "c" / "data").exists()


def test_a_bad_mode_is_refused_before_any_file_is_read(tmp_path, run_script):
    """``MODE=bogus`` fails at once (issue 16 §1): even a file that does not exist, or a glob of
    a batch, is not looked at first."""
    for path, symbol in ((tmp_path / "nope.csv", "AAPL"), (tmp_path / "in" / "*.csv", "'{stem}'")):
        r = run_script("import_csv", f"csv.path={path}", f"symbol={symbol}", "mode=bogus")
        assert r.code == 2, r.stderr
        assert "unknown conflict mode 'bogus'" in r.stderr and "not found" not in r.stderr
        assert r.summary()["timings"]["import"] < 0.05
