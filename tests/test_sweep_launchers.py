"""Sweeps through Hydra's Ray launcher, and run folders on object storage — real parts, no mocks.

* `make sweep JOBS=2 RUNS=s3://…` (joblib): every job folder, the summary and the sweep page in a
  bucket on the session's moto S3 server, the AWS secret key in none of the files it wrote;
* (slow, `make test-all`) the same 4-job sweep (2 ok, 2 failing) through the joblib launcher and
  through the Ray launcher on a local Ray instance (2 CPUs) started by the script: same sweep
  summary, same exit code; and `make sweep LAUNCHER=ray RAY_ADDRESS=… RUNS=s3://…` joining a Ray
  cluster this module starts (`ray start --head`, 2 CPUs), the same checks in its bucket;
* single runs with RUNS=s3://…: uploaded on success and on failure; a failed upload keeps the
  folder locally and exits 4.

Ray processes: the script's local instance ends with the script; the cluster is this module's
`ray start --block` process group, killed at teardown (and checked gone).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from ntrader.backtest import sweep

from .backtest_fixtures import make_catalog
from .conftest import REPO
from .s3_fixtures import SECRET_KEY, free_port, s3  # noqa: F401  (the fixture is named `s3`)

SWEEP = (  # 2 symbols x 2 EMA periods; NVDA is not in the catalog: 2 jobs fail with exit 1
    "strategy.params.fast_ema_period=5,10",
    "reports.tearsheet=false",
    "reports.equity_png=false",
)
SYMBOLS = "AAPL,NVDA"
JOBS = 4
# Ray's token authentication, explicit so no test writes ~/.ray/auth_token
RAY_AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
VOLATILE = ("run_dir", "duration_s")  # differ between two runs of the same sweep


@dataclass
class Sweep:
    code: int
    stdout: str
    stderr: str
    rows: list[dict[str, str]]
    root: str  # the sweep folder: a local path or an s3:// URL


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def comparable(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def env_with(runs: str, **extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.pop("NAUTILUS_PATH", None)
    e.pop("RAY_ADDRESS", None)
    e.update(NTRADER_RUNS=runs, RAY_DEDUP_LOGS="0", **RAY_AUTH, **extra)
    return e


def local_sweep(catalog: Path, runs: Path, *launcher: str) -> Sweep:
    """scripts/backtest.py -m as `make sweep` runs it, into a local runs root."""
    p = subprocess.run(
        [
            sys.executable,
            "scripts/backtest.py",
            "-m",
            f"catalog.path={catalog}",
            f"symbol={SYMBOLS}",
            *SWEEP,
            *launcher,
        ],
        cwd=REPO,
        env=env_with(str(runs)),
        capture_output=True,
        text=True,
        timeout=400,
    )
    found = sorted((runs / "backtest" / "multirun").glob("*/sweep_summary.csv"))
    assert len(found) == 1, (
        f"exit {p.returncode}; no sweep summary under {runs}:\n{p.stderr[-3000:]}"
    )
    return Sweep(
        p.returncode, p.stdout, p.stderr, csv_rows(found[0].read_text()), str(found[0].parent)
    )


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two weeks of AAPL 1-minute RTH bars (3,510): each job runs in well under a second."""
    root = tmp_path_factory.mktemp("launchers") / "catalog"
    make_catalog(root, "AAPL", dt.date(2024, 1, 2), dt.date(2024, 1, 12), seed=3)
    return root


@pytest.fixture(scope="module")
def joblib_sweep(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    out = tmp_path_factory.mktemp("joblib-sweep")
    return local_sweep(catalog, out / "runs", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


@pytest.fixture(scope="module")
def local_sweeps(
    catalog: Path, joblib_sweep: Sweep, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Sweep]:
    """The same sweep through joblib (2 workers) and through a local Ray instance (2 CPUs)."""
    out = tmp_path_factory.mktemp("local-sweeps")
    ray = local_sweep(
        catalog, out / "ray", "hydra/launcher=ntrader_ray", "hydra.launcher.ray.init.num_cpus=2"
    )
    return {"joblib": joblib_sweep, "ray": ray}


@pytest.mark.slow  # a local Ray instance: about a minute (make test-all)
def test_ray_launcher_gives_the_joblib_sweep_summary_and_exit_code(local_sweeps):
    jl, ray = local_sweeps["joblib"], local_sweeps["ray"]
    assert len(jl.rows) == JOBS
    assert comparable(ray.rows) == comparable(jl.rows)  # same jobs, overrides, statuses, metrics
    ok = [r for r in jl.rows if r["status"] == "ok"]
    failed = [r for r in jl.rows if r["status"] != "ok"]
    assert len(ok) == 2 and all("symbol=AAPL" in r["overrides"].split() for r in ok)
    assert ok[0]["pnl"] != ok[1]["pnl"] and all(float(r["fills"]) > 0 for r in ok)
    assert [(r["status"], r["exit_code"]) for r in failed] == [("failed", "1")] * 2
    assert all("no instrument" in r["error"] for r in failed)
    for s in (jl, ray):  # every job ran, then the sweep exits with the worst job's code
        assert s.code == 1, s.stderr[-3000:]
        assert s.stdout.count("FAILED (exit 1)") == 2
        for row in s.rows:  # the row is the job's own summary.json
            summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
            assert summary["exit_code"] == int(row["exit_code"])
            pnl = (summary.get("result") or {}).get("pnl")
            assert pnl == (float(row["pnl"]) if row["pnl"] else None)
        assert (Path(s.root) / "leaderboard.md").read_text().count("| - |") >= 2
        # the callback knows every job launched (a job without a folder would be `missing`)
        launched = sweep.launched_jobs(OmegaConf.load(Path(s.root) / "multirun.yaml"))
        assert launched is not None
        assert [set(o.split()) for o in launched] == [set(r["overrides"].split()) for r in s.rows]


def test_a_launched_job_without_a_folder_is_a_missing_row_that_fails_the_sweep(tmp_path):
    job = tmp_path / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- symbol=AAPL\n")
    (job / "summary.json").write_text(json.dumps({"status": "ok", "exit_code": 0}))
    rows = sweep.collect(tmp_path, expected=["symbol=AAPL", "symbol=MSFT"])
    assert [(r["job"], r["status"], r["exit_code"]) for r in rows] == [
        (0, "ok", 0),
        (1, "missing", None),  # None counts as exit 4 for the sweep
    ]
    assert rows[1]["overrides"] == "symbol=MSFT" and "RUNS=s3://" in rows[1]["error"]


@pytest.mark.slow
def test_ray_sweep_jobs_ran_as_ray_tasks(local_sweeps):
    ray, jl = local_sweeps["ray"], local_sweeps["joblib"]
    launcher = yaml.safe_load((Path(ray.root) / "multirun.yaml").read_text())["hydra"]["launcher"]
    assert launcher["_target_"].endswith("RayLauncher")
    assert launcher["ray"]["init"]["num_cpus"] == 2 and launcher["ray"]["init"]["address"] is None
    # Ray forwards each task's console lines to the driver, prefixed with the task
    assert "(_run_job pid=" in ray.stdout + ray.stderr
    assert "(_run_job pid=" not in jl.stdout + jl.stderr
    for row in ray.rows:  # each task logged into its own job folder, tagged with its run id
        log = (Path(row["run_dir"]) / "backtest.log").read_text()
        assert f"[backtest/{Path(ray.root).name}/{row['job']}]" in log


# ------------------------------------------------------------------------ cluster + S3 runs


@dataclass
class Cluster:
    address: str
    temp_dir: Path


def _group_alive(pgid: int) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pgid=,stat=,args="], capture_output=True, text=True)
    return [
        line
        for line in ps.stdout.splitlines()
        if line.split(None, 1)[0] == str(pgid) and line.split()[1][0] != "Z"
    ]


@pytest.fixture(scope="module")
def ray_cluster(s3) -> Iterator[Cluster]:  # noqa: F811
    """A one-node Ray cluster (2 CPUs) in its own process group, as `ray start --head` makes.

    Its workers get store access the way a cluster node does: from the node's own environment
    (here the S3 server's AWS_* variables), not from the driver.
    """
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ntr-ray-", dir="/tmp"))  # short: Unix socket paths
    ray_cli = Path(sys.executable).with_name("ray")
    env = env_with("unused", RAY_USAGE_STATS_ENABLED="0", **s3.env)
    proc = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
        ],
        env=env,
        stdout=(temp_dir / "start.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: teardown ends exactly these processes
    )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (temp_dir / "start.log").read_text():
            assert proc.poll() is None, (temp_dir / "start.log").read_text()
            if time.monotonic() > deadline:  # a hung start-up, not a speed check
                raise RuntimeError("ray start --head did not come up in 120 s")
            time.sleep(0.25)
        yield Cluster(f"127.0.0.1:{port}", temp_dir)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if _group_alive(proc.pid):  # `ray start --block` does not always stop its children
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        time.sleep(0.5)
        assert not _group_alive(proc.pid), "Ray cluster processes survived the teardown"
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def s3_cluster_sweep(catalog, ray_cluster, s3, tmp_path_factory):  # noqa: F811
    """`make sweep … LAUNCHER=ray RAY_ADDRESS=… RUNS=s3://bucket/runs`, staging under tmp."""
    stage = tmp_path_factory.mktemp("stage")
    return sweep_into_bucket(
        catalog, s3, stage, "LAUNCHER=ray", f"RAY_ADDRESS={ray_cluster.address}"
    )


def sweep_into_bucket(catalog: Path, s3, stage: Path, *launcher: str):  # noqa: F811
    """`make sweep … RUNS=s3://<a fresh bucket>/runs` with ``launcher``'s make variables: the
    completed process, the bucket's filesystem, the sweep folder in it and the staging folder."""
    bucket = s3.fresh_bucket()
    p = subprocess.run(
        [
            "make",
            "-s",
            "sweep",
            f"SYMBOLS={SYMBOLS}",
            *launcher,
            f"RUNS=s3://{bucket}/runs",
            f"CATALOG={catalog}",
            f"ARGS={' '.join(SWEEP)}",
        ],
        cwd=REPO,
        env=env_with("runs-not-used", NTRADER_STAGING=str(stage), **s3.env),
        capture_output=True,
        text=True,
        timeout=400,
    )
    fs = s3.fs()
    (sweep_dir,) = fs.ls(f"{bucket}/runs/backtest/multirun")
    return p, fs, sweep_dir, stage


def assert_sweep_in_bucket(p, fs, sweep_dir: str, stage: Path) -> None:
    """What a sweep on RUNS=s3://… leaves: every job folder, the summary and the sweep page in
    the bucket, nothing in the local staging folder."""
    # make exits 2 on a failed recipe; the script's own code is named (the worst job's)
    assert p.returncode == 2 and "scripts/backtest.py exited with code 1" in p.stderr, p.stderr
    rows = csv_rows(fs.cat(f"{sweep_dir}/sweep_summary.csv").decode())
    assert [r["job"] for r in rows] == [str(n) for n in range(JOBS)]
    assert sorted(r["status"] for r in rows) == ["failed", "failed", "ok", "ok"]
    assert fs.exists(f"{sweep_dir}/leaderboard.md") and fs.exists(f"{sweep_dir}/multirun.yaml")
    for row in rows:
        job = f"{sweep_dir}/{row['job']}"
        assert row["run_dir"] == f"s3://{job}"
        files = {f.removeprefix(job + "/") for f in fs.find(job)}
        assert {
            "summary.json",
            "backtest.log",
            ".hydra/config.yaml",
            ".hydra/overrides.yaml",
        } <= files
        summary = json.loads(fs.cat(f"{job}/summary.json"))
        assert summary["run_dir"] == f"s3://{job}" and summary["exit_code"] == int(row["exit_code"])
        if row["status"] == "ok":
            assert {"fills.csv", "orders.csv", "positions.csv", "equity.csv"} <= files
            assert summary["result"]["pnl"] == pytest.approx(float(row["pnl"]))
        assert f"run folder: s3://{job}" in fs.cat(f"{job}/backtest.log").decode()
    # the sweep page is in the bucket too, its curves read from the jobs' folders there
    assert f"sweep page: s3://{sweep_dir}/sweep.html" in p.stdout
    page = stage.parent / "sweep.html"
    page.write_bytes(fs.cat(f"{sweep_dir}/sweep.html"))
    panels = rendered_panels(page, stage.parent / "chromium")
    heat, curves = panels["heatmap-0"], panels["equity-1"]
    assert [c["name"].split(":")[0] for c in curves] == [
        f"job {r['job']}" for r in rows if r["status"] == "ok"
    ]  # best first, as sweep_summary.csv ranks them
    for curve in curves:
        final = json.loads(fs.cat(f"{sweep_dir}/{curve['name'].split()[1][:-1]}/summary.json"))
        assert curve["y"][-1] == pytest.approx(final["result"]["final_equity"], abs=0.01)
    assert heat[0]["x"] == ["AAPL", "NVDA"] and heat[0]["y"] == ["5", "10"]
    assert [z[1] for z in heat[0]["z"]] == [None, None]  # NVDA's jobs failed: empty cells
    page.unlink()
    # nothing left behind in the local staging folder: every job folder went to the bucket
    assert not [f for f in stage.rglob("*") if f.is_file()]


@pytest.fixture(scope="module")
def s3_sweep(catalog, s3, tmp_path_factory):  # noqa: F811
    """`make sweep … JOBS=2 RUNS=s3://bucket/runs` (joblib), staging under tmp."""
    return sweep_into_bucket(catalog, s3, tmp_path_factory.mktemp("stage-joblib"), "JOBS=2")


def test_a_sweep_into_a_bucket_leaves_every_job_folder_the_summary_and_the_page_there(s3_sweep):
    assert_sweep_in_bucket(*s3_sweep)


@pytest.mark.slow  # a Ray cluster: about a minute (make test-all)
def test_sweep_on_a_ray_cluster_leaves_every_job_folder_and_the_summary_in_the_bucket(
    s3_cluster_sweep, ray_cluster
):
    p, fs, sweep_dir, stage = s3_cluster_sweep
    assert_sweep_in_bucket(p, fs, sweep_dir, stage)
    launcher = yaml.safe_load(fs.cat(f"{sweep_dir}/multirun.yaml"))["hydra"]["launcher"]
    assert launcher["ray"]["init"]["address"] == ray_cluster.address
    # the jobs ran on the cluster this module started (its workers' logs hold their output)
    worker_logs = (ray_cluster.temp_dir / "session_latest" / "logs").glob("worker-*.out")
    assert any("Backtest AAPL.NASDAQ" in f.read_text(errors="replace") for f in worker_logs)


def rendered_panels(page: Path, profile: Path) -> dict[str, list[dict]]:
    """The plotly panels of a page as headless chromium drew them (their data-rendered)."""
    from html.parser import HTMLParser

    from .browser import chromium

    found: dict[str, list[dict]] = {}

    class Panels(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            a = dict(attrs)
            if "data-rendered" in a:
                found[str(a["id"])] = json.loads(str(a["data-rendered"]))

    Panels().feed(chromium(page, profile, "--dump-dom"))
    return found


def _assert_no_secret(sweeps: list, local_roots: list[Path]) -> None:
    secret = SECRET_KEY.encode()
    for p, fs, sweep_dir, _stage in sweeps:
        in_bucket = fs.find(sweep_dir.split("/", 1)[0])  # the whole bucket
        assert len(in_bucket) >= 4 * JOBS  # the upload used those credentials
        assert not [f for f in in_bucket if secret in fs.cat(f)]
        assert SECRET_KEY not in p.stdout + p.stderr
    stages = [stage for *_, stage in sweeps]
    local = [f for root in (*stages, *local_roots) for f in root.rglob("*") if f.is_file()]
    assert len(local) > 20
    assert not [f for f in local if secret in f.read_bytes()]


def test_aws_secret_key_is_in_no_output_file(s3_sweep, joblib_sweep, catalog):
    _assert_no_secret([s3_sweep], [catalog.parent, Path(joblib_sweep.root)])


@pytest.mark.slow
def test_aws_secret_key_is_in_no_output_file_of_ray_sweeps(s3_cluster_sweep, local_sweeps, catalog):
    roots = [catalog.parent, *(Path(s.root) for s in local_sweeps.values())]
    _assert_no_secret([s3_cluster_sweep], roots)


# ------------------------------------------------------------------------ single runs on S3


def backtest(catalog: Path, symbol: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "scripts/backtest.py",
            f"catalog.path={catalog}",
            f"symbol={symbol}",
            "reports.tearsheet=false",
            "reports.equity_png=false",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_single_runs_go_to_the_bucket_on_success_and_on_failure(catalog, s3, tmp_path):  # noqa: F811
    bucket = s3.fresh_bucket()
    env = env_with(f"s3://{bucket}/runs", NTRADER_STAGING=str(tmp_path / "stage"), **s3.env)
    ok, bad = backtest(catalog, "AAPL", env), backtest(catalog, "NVDA", env)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert bad.returncode == 1 and "no instrument" in bad.stderr
    fs = s3.fs()
    folders = [d for d in fs.ls(f"{bucket}/runs/backtest") if not d.endswith("/latest.json")]
    assert len(folders) == 2
    beat = json.loads(fs.cat(f"{bucket}/runs/backtest/latest.json"))  # the heartbeat: NVDA's
    assert (beat["status"], beat["exit_code"]) == ("failed", 1) and "no instrument" in beat[
        "message"
    ]
    assert beat["run_dir"].startswith(f"s3://{bucket}/runs/backtest/")
    summaries = [json.loads(fs.cat(f"{d}/summary.json")) for d in folders]
    by_status = {s["status"]: s for s in summaries}
    assert set(by_status) == {"ok", "failed"} and by_status["failed"]["exit_code"] == 1
    for d, s in zip(folders, summaries, strict=True):
        assert s["run_dir"] == f"s3://{d}"
        assert fs.exists(f"{d}/.hydra/config.yaml") and fs.exists(f"{d}/backtest.log")
    assert fs.exists(f"{folders[summaries.index(by_status['ok'])]}/fills.csv")
    assert not [f for f in (tmp_path / "stage").rglob("*") if f.is_file()]


def test_a_failed_upload_keeps_the_run_folder_and_exits_4(catalog, s3, tmp_path):  # noqa: F811
    stage = tmp_path / "stage"
    env = env_with("s3://no-such-bucket-ntrader/runs", NTRADER_STAGING=str(stage), **s3.env)
    r = backtest(catalog, "AAPL", env)
    assert r.returncode == 4, r.stderr[-3000:]
    assert (
        "could not upload the run folder to s3://no-such-bucket-ntrader/runs/backtest/" in r.stderr
    )
    (summary_file,) = stage.rglob("summary.json")  # the backtest's outputs are kept locally
    s = json.loads(summary_file.read_text())
    assert s["status"] == "failed" and s["exit_code"] == 4 and "upload" in s["error"]["message"]
    assert s["result"]["fills"] > 0 and (summary_file.parent / "fills.csv").exists()
    assert s["run_dir"] == str(summary_file.parent)
