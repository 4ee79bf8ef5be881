"""Alerts: ``notify.url`` — one or more Apprise URLs (mail, Slack, Telegram, ntfy, a JSON/HTTP
webhook …) told when a run fails and, when ``notify.on_success`` / ``notify.on_gaps`` ask, when it
succeeds or when sessions remain missing after it (``counts.gaps_remaining``, set by fetch).

What is sent: script, status, exit code, the error message and hint, the run folder and the host —
redacted (``ntrader.secrets``) and never the notify URLs themselves (they carry tokens): logs,
``summary.json`` and the ``.hydra/`` files show them as ``scheme://***``. A URL Apprise does not
know is an input error before the run does anything (exit 2): an alert that can never be delivered
would otherwise be found out the night it was needed. An alert that cannot be delivered is a
WARNING and recorded in ``summary.json`` ``notify``; it never changes the run's exit code.

``apprise`` is imported only when a URL is set (start-up of every other run is unaffected).
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from ntrader.errors import InputError
from ntrader.secrets import redact

URL_ENV = "NTRADER_NOTIFY_URL"  # conf/notify/default.yaml reads it: the cron-friendly way
GAPS_COUNT = "gaps_remaining"  # the counts key a script sets when sessions remain missing
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://[^\s'\"<>]+")


def mask(url: str) -> str:
    """``slack://T1/B2/secret`` -> ``slack://***``: what may be shown of a notify URL."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://***" if sep else "***"


def mask_urls(text: str) -> str:
    """Every URL in ``text`` shown as ``scheme://***`` (Apprise's messages name their target)."""
    return _URL.sub(lambda m: f"{m.group(1)}://***", text)


@dataclass(frozen=True)
class NotifySpec:
    """The ``notify`` config group as plain values."""

    urls: tuple[str, ...] = ()
    on_success: bool = False
    on_gaps: bool = False

    @classmethod
    def of(cls, cfg: Mapping[str, Any] | None) -> NotifySpec:
        """From ``cfg.notify`` (absent = no alerts). ``url``: a string (several separated by
        commas or spaces, as Apprise accepts) or a list of strings."""
        if not cfg:
            return cls()
        raw = cfg.get("url")
        items = [raw] if isinstance(raw, str) else list(raw or [])
        urls: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise InputError(
                    f"notify.url must be text or a list of text, not {type(item).__name__}",
                    hint="notify.url='json://host/path' or NTRADER_NOTIFY_URL=…",
                )
            urls += [u for u in re.split(r"[\s,]+", item.strip()) if u]
        return cls(tuple(urls), bool(cfg.get("on_success")), bool(cfg.get("on_gaps")))

    @property
    def targets(self) -> list[str]:
        return [mask(u) for u in self.urls]

    def event(self, summary: Mapping[str, Any]) -> str | None:
        """What ``summary`` calls for: ``failure`` | ``gaps`` | ``success`` | None (no alert)."""
        if not self.urls:
            return None
        if summary.get("status") != "ok" or summary.get("exit_code"):
            return "failure"
        if self.on_gaps and (summary.get("counts") or {}).get(GAPS_COUNT):
            return "gaps"
        return "success" if self.on_success else None

    def check(self) -> None:
        """Refuse a URL Apprise cannot use (InputError, exit 2), naming it only by position."""
        if not self.urls:
            return
        apprise = _apprise()
        for n, url in enumerate(self.urls, 1):
            with apprise.LogCapture(level=logging.DEBUG) as captured:
                ok = apprise.Apprise().add(url)
            if not ok:
                why = _last_line(captured.getvalue())
                raise InputError(
                    f"notify.url #{n} ({mask(url)}) is not an Apprise URL it can use"
                    + (f": {why}" if why else ""),
                    hint="see https://github.com/caronc/apprise/wiki for each service's URL "
                    "form, e.g. json://host:port/path, ntfys://topic, mailtos://user:pass@host",
                )


def scrub(folder: Path, spec: NotifySpec, pattern: str = "*.yaml") -> None:
    """Mask the notify URLs where Hydra saved them (``.hydra/config.yaml``, ``overrides.yaml``)."""
    if not spec.urls or not folder.exists():
        return
    for path in folder.glob(pattern):
        text = path.read_text()
        clean = text
        for url in sorted(spec.urls, key=len, reverse=True):
            clean = clean.replace(url, mask(url))
        if clean != text:
            path.write_text(clean)


def message(summary: Mapping[str, Any], event: str) -> tuple[str, str]:
    """The alert's title and body for a run's ``summary``."""
    script = summary.get("script", "?")
    code = summary.get("exit_code")
    status = summary.get("status", "?")
    what = {"failure": f"{status} (exit {code})", "gaps": "sessions still missing"}
    title = f"ntrader {script}: {what.get(event, 'ok')}"
    err = summary.get("error") or {}
    lines = [
        f"script: {script}",
        f"status: {status}",
        f"exit code: {code}",
        *([f"message: {err['message']}"] if err.get("message") else []),
        *([f"what to do: {err['hint']}"] if err.get("hint") else []),
        *(
            [f"sessions still missing: {(summary.get('counts') or {}).get(GAPS_COUNT)}"]
            if event == "gaps"
            else []
        ),
        f"run folder: {summary.get('run_dir', '?')}",
        f"host: {socket.gethostname()}",
    ]
    return redact(title), redact("\n".join(lines))


def send(spec: NotifySpec, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """Alert ``spec``'s targets if ``summary`` calls for it; what happened, for ``summary.json``
    (None: nothing to send). Never raises."""
    event = spec.event(summary)
    if event is None:
        return None
    outcome: dict[str, Any] = {"event": event, "targets": spec.targets}
    try:
        apprise = _apprise()
        title, body = message(summary, event)
        kind = {"failure": "failure", "gaps": "warning"}.get(event, "success")
        sender = apprise.Apprise()
        for url in spec.urls:
            sender.add(url)
        with apprise.LogCapture(level=logging.INFO) as captured:
            sent = bool(sender.notify(title=title, body=body, notify_type=kind))
        outcome["sent"] = sent
        if not sent:
            outcome["error"] = mask_urls(redact(_last_line(captured.getvalue()) or "not sent"))
    except Exception as exc:
        outcome.update(sent=False, error=mask_urls(redact(f"{type(exc).__name__}: {exc}")))
    targets = ", ".join(spec.targets)
    if outcome["sent"]:
        logger.info(f"alert ({event}) sent to {targets}")
    else:
        logger.warning(f"could not send the {event} alert to {targets}: {outcome['error']}")
    return outcome


_CAPTURED = re.compile(r"^\S+ \S+ - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")


def _last_line(text: str) -> str:
    """The last warning or error Apprise logged (its LogCapture lines, prefix stripped)."""
    lines = [line for line in text.splitlines() if " - DEBUG - " not in line and line.strip()]
    return mask_urls(_CAPTURED.sub("", lines[-1]).strip()) if lines else ""


def _apprise() -> Any:
    import apprise

    logging.getLogger("apprise").propagate = False  # its records reach us via LogCapture only
    logging.getLogger("apprise").addHandler(logging.NullHandler())
    return apprise


def sweep_ended(cfg: Mapping[str, Any] | None, where: str, codes: list[Any], table: str) -> None:
    """One alert for a whole multirun (its jobs send none): how many jobs failed, the worst exit
    code, the sweep folder and its leaderboard."""
    try:
        spec = NotifySpec.of(cfg)
        spec.check()
    except InputError as exc:
        logger.warning(f"no sweep alert: {exc}")
        return
    failed = [c for c in codes if c != 0]
    worst = max([c if isinstance(c, int) else 4 for c in codes] + [0])
    summary: dict[str, Any] = {
        "script": "sweep",
        "status": "failed" if failed else "ok",
        "exit_code": worst,
        "run_dir": where,
    }
    if failed:
        summary["error"] = {
            "message": f"{len(failed)} of {len(codes)} jobs failed (worst exit code {worst})",
            "hint": f"each job's error is in {table}",
        }
    send(spec, summary)
