"""Run folders: layout, tags, run ids on every log line, summary.json on success and failure."""

from __future__ import annotations

import json

import yaml


def test_run_folder_layout_and_tag(catalog, run_script, tmp_path):
    r = run_script("scan", f"catalog.path={catalog.root}", "tag=nightly", "log_level=INFO")
    assert r.code == 0, r.stderr
    (run_dir,) = [d for d in (tmp_path / "runs" / "scan").iterdir() if d.is_dir()]
    assert run_dir.name.endswith("_nightly")
    assert len(run_dir.name) == len("2026-01-02_03-04-05_nightly")
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert f"catalog.path={catalog.root}" in overrides and "tag=nightly" in overrides
    cfg = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert cfg["catalog"]["path"] == str(catalog.root) and cfg["format"] == "table"
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "ok" and s["exit_code"] == 0
    assert s["run_id"] == f"scan/{run_dir.name}"
    assert set(s["timings"]) == {"scan"} and s["duration_s"] >= s["timings"]["scan"]
    # stderr is not a terminal here (as under cron): every console line carries the run id
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines and all(f"[scan/{run_dir.name}]" in ln for ln in lines)


def test_summary_on_failure_has_error_and_hint(catalog, run_script):
    r = run_script("scan", f"catalog.path={catalog.root}", "symbol=ZZZZ")
    assert r.code == 1
    s = r.summary()
    assert s["status"] == "failed" and s["exit_code"] == 1
    assert s["error"]["kind"] == "data error" and "ZZZZ" in s["error"]["message"]
    assert "make import" in s["error"]["hint"]
    assert "what to do:" in r.stderr


def test_same_second_runs_get_distinct_folders(catalog, run_script, tmp_path):
    import subprocess
    import sys

    from .conftest import REPO

    env = {"NTRADER_RUNS": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, str(REPO / "scripts" / "scan.py"), f"catalog.path={catalog.root}"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL) for _ in range(3)]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    dirs = [d for d in (tmp_path / "runs" / "scan").iterdir() if d.is_dir()]
    assert len(dirs) == 3 and all((d / "summary.json").exists() for d in dirs)
