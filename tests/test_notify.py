"""Alerts (issue 16 §3): ``notify.url`` / ``NTRADER_NOTIFY_URL`` — Apprise URLs told when a run
fails (and, asked, when it succeeds or leaves gaps), with script, status, exit code, message, hint
and run folder, never a secret. End to end: the scripts run as a user runs them, the alert goes
through Apprise's JSON webhook to a real HTTP server on a free loopback port."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ntrader.ibkr.sim import Faults, run_simulator
from ntrader.runs.notify import NotifySpec, mask, mask_urls

from .conftest import run_make
from .test_fetch import fetch

TOKEN = "s3cr3tT0ken42"  # part of the webhook's path, as Slack/Telegram URLs carry their token


class Hook:
    """A webhook: every POST body it received, parsed."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.posts.append(json.loads(body))
                hook.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hook/{TOKEN}"

    def env(self, **more: str) -> dict[str, str]:
        return {"NTRADER_NOTIFY_URL": self.url, **more}


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    thread = threading.Thread(target=h.server.serve_forever, daemon=True)
    thread.start()
    yield h
    h.server.shutdown()
    h.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_secret_in(folder: Path, *texts: str) -> None:
    """The token is nowhere: not in any file of the run folders, not in the console."""
    for path in folder.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
    for text in texts:
        assert TOKEN not in text


def test_a_failed_fetch_alerts_once_with_what_failed_and_no_secret(run_script, tmp_path, hook):
    dead = free_port()  # nothing listens: exit 3
    r = run_script(
        "fetch",
        "symbols=[AAPL]",
        "dates.start=2024-05-06",
        "dates.end=2024-05-06",
        f"catalog.path={tmp_path / 'c'}",
        env=hook.env(IBKR_PORT=str(dead)),
    )
    assert r.code == 3, r.stderr
    (post,) = hook.posts
    assert hook.paths == [f"/hook/{TOKEN}"]  # delivered to the URL asked
    assert post["type"] == "failure" and post["title"] == "ntrader fetch: failed (exit 3)"
    body = dict(line.split(": ", 1) for line in post["message"].splitlines())
    s = r.summary()
    assert body["script"] == "fetch" and body["exit code"] == "3" and body["status"] == "failed"
    assert body["message"] == s["error"]["message"]
    assert f"127.0.0.1:{dead}" in body["message"]
    assert body["what to do"] == s["error"]["hint"]
    assert body["run folder"] == s["run_dir"] and Path(body["run folder"]).is_dir()
    assert s["notify"] == {"event": "failure", "targets": ["json://***"], "sent": True}
    assert "alert (failure) sent to json://***" in r.stderr
    no_secret_in(tmp_path / "runs", r.stdout, r.stderr)


def test_a_password_in_the_failure_message_is_redacted(tmp_path, hook):
    """``make migrate`` with a DSN holding a password, against a port nothing listens on."""
    dsn = f"postgresql://trader:hunter2pw@127.0.0.1:{free_port()}/market"
    p = run_make(
        "migrate", f"DSN={dsn}", f"CATALOG={tmp_path / 'c'}", runs=tmp_path / "runs", env=hook.env()
    )
    assert p.returncode != 0, p.stderr
    (post,) = hook.posts
    assert post["type"] == "failure" and "migrate" in post["title"]
    assert "hunter2pw" not in json.dumps(post)
    assert "database market" in post["message"]  # the failure is named, its password is not
    no_secret_in(tmp_path / "runs", p.stdout, p.stderr)


def test_success_alerts_only_when_asked_and_gaps_when_asked(run_script, tmp_path, hook):
    root = tmp_path / "catalog"
    gap = dt.date(2024, 5, 8)
    with run_simulator(Faults(no_data_sessions=[gap])) as sim:
        quiet = fetch(run_script, sim, root, "2024-05-06", "2024-05-07", env=hook.env())
        assert quiet.code == 0, quiet.stderr
        assert hook.posts == [] and "notify" not in quiet.summary()  # success: not asked

        ok = fetch(
            run_script,
            sim,
            root,
            "2024-05-06",
            "2024-05-07",
            "notify.on_success=true",
            env=hook.env(),
        )
        assert ok.code == 0 and [p["type"] for p in hook.posts] == ["success"]
        assert hook.posts[0]["title"] == "ntrader fetch: ok"

        gaps = fetch(
            run_script, sim, root, "2024-05-06", "2024-05-10", "notify.on_gaps=true", env=hook.env()
        )
        assert gaps.code == 0, gaps.stderr
        assert gaps.summary()["counts"]["gaps_remaining"] == 1
        post = hook.posts[-1]
        assert (
            post["type"] == "warning" and post["title"] == "ntrader fetch: sessions still missing"
        )
        assert "sessions still missing: 1" in post["message"]

        full = fetch(
            run_script, sim, root, "2024-05-09", "2024-05-10", "notify.on_gaps=true", env=hook.env()
        )
        assert full.code == 0 and full.summary()["counts"]["gaps_remaining"] == 0
        assert len(hook.posts) == 2  # nothing missing in that range: no alert


def test_an_unreachable_alert_target_warns_and_keeps_the_exit_code(run_script, tmp_path):
    (tmp_path / "empty").mkdir()
    url = f"json://127.0.0.1:{free_port()}/hook/{TOKEN}"
    r = run_script("scan", f"catalog.path={tmp_path / 'missing'}", env={"NTRADER_NOTIFY_URL": url})
    assert r.code == 1  # the scan's own failure, not changed by the alert's
    sent = r.summary()["notify"]
    assert sent["sent"] is False and sent["targets"] == ["json://***"]
    assert "could not send the failure alert to json://***" in r.stderr
    assert sent["error"]  # why, as Apprise said it (URLs masked)
    no_secret_in(tmp_path / "runs", r.stdout, r.stderr)


def test_a_url_apprise_cannot_use_is_an_input_error_before_any_work(run_script, tmp_path):
    r = run_script("scan", f"catalog.path={tmp_path}", f"notify.url=nosuch://{TOKEN}/x")
    assert r.code == 2
    assert "notify.url #1 (nosuch://***) is not an Apprise URL it can use" in r.stderr
    assert "bar_types" not in r.summary()  # refused before the scan ran
    no_secret_in(tmp_path / "runs", r.stdout, r.stderr)


def test_a_bad_override_still_alerts_through_the_environment(tmp_path, hook):
    p = run_make(
        "scan", f"CATALOG={tmp_path}", "ARGS=no_such_key=1", runs=tmp_path / "runs", env=hook.env()
    )
    assert p.returncode == 2
    (post,) = hook.posts
    assert post["type"] == "failure" and post["title"] == "ntrader scan: failed (exit 2)"


def test_a_sweep_sends_one_alert_naming_its_failed_jobs(tmp_path, hook):
    """Two jobs, both failing (no data, auto-fetch off): one alert for the sweep, none per job."""
    p = run_make(
        "sweep",
        "SYMBOLS=AAPL,MSFT",
        "DATES=2024q1",
        f"CATALOG={tmp_path / 'empty'}",
        "ARGS=ibkr.auto_fetch=false",
        runs=tmp_path / "runs",
        env=hook.env(),
        timeout=600,
    )
    assert "backtest.py exited with code 1" in p.stderr, p.stderr[-2000:]
    (post,) = hook.posts
    assert post["title"] == "ntrader sweep: failed (exit 1)"
    assert "2 of 2 jobs failed (worst exit code 1)" in post["message"]
    assert "leaderboard.md" in post["message"]


def test_notify_spec_reads_lists_and_separators_and_masks():
    spec = NotifySpec.of({"url": "json://a/b, ntfys://topic  mailtos://u:p@h", "on_gaps": True})
    assert spec.urls == ("json://a/b", "ntfys://topic", "mailtos://u:p@h")
    assert spec.targets == ["json://***", "ntfys://***", "mailtos://***"]
    assert NotifySpec.of({"url": ["json://a", "json://b"]}).urls == ("json://a", "json://b")
    assert NotifySpec.of({"url": None}).event({"status": "failed", "exit_code": 3}) is None
    assert spec.event({"status": "ok", "exit_code": 0, "counts": {"gaps_remaining": 2}}) == "gaps"
    assert spec.event({"status": "ok", "exit_code": 0, "counts": {}}) is None
    assert mask("slack://T1/B2/C3") == "slack://***"
    assert mask_urls("sent to https://hooks.x/T/secret ok") == "sent to https://*** ok"
