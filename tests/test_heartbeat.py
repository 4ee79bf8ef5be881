"""The heartbeat for external monitors (issue 16 §3, first part): every script run replaces
``<runs>/<script>/latest.json`` with its status, exit code, times and error message."""

from __future__ import annotations

import json


def test_latest_json_follows_each_run_of_a_script(run_script, tmp_path):
    missing = tmp_path / "no catalog"
    bad = run_script("scan", f"catalog.path={missing}")
    assert bad.code == 1
    beat_path = tmp_path / "runs" / "scan" / "latest.json"
    beat = json.loads(beat_path.read_text())
    assert beat["status"] == "failed" and beat["exit_code"] == 1
    assert beat["message"] == f"catalog {missing} does not exist"
    assert beat["run_id"] == bad.summary()["run_id"] and beat["finished"] >= beat["started"]

    (tmp_path / "empty").mkdir()
    ok = run_script("scan", f"catalog.path={tmp_path / 'empty'}")
    assert ok.code == 0, ok.stderr
    beat = json.loads(beat_path.read_text())
    assert (beat["status"], beat["exit_code"], beat["message"]) == ("ok", 0, None)
    assert beat["run_dir"] == ok.summary()["run_dir"]
    assert not list(beat_path.parent.glob(".latest.json.*"))  # no temp file left
