"""The catalog's commit log: every commit of bar data (import, fetch, migrate, repair, compaction,
a quarantine) gets the next catalog version and an entry that is kept (never pruned).

Layout, under the catalog's ``.ntrader`` (outside ``data/``: plain Nautilus readers never see it)::

    log/HEAD                               the latest catalog version (an integer)
    log/bars/<bar type>/<version>.json     {"version": 7, "at": "2026-…Z", "bar_type": …,
                                            "added": [names], "removed": [names],
                                            "script": "import_csv", "run_id": "import_csv/…"}

Entries are appended by writers under the writer lock, right after the commit became visible:
``HEAD`` first, then the entry, so a writer killed in between leaves a version without an entry
(a gap), never two entries with one version. The writing script and run id come from the task
wrapper (``NTRADER_RUN_ID``); library calls are ``python``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from ntrader.errors import InputError
from ntrader.tabular import csv_text, json_text, text_table

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog

RUN_ID_ENV = "NTRADER_RUN_ID"


class CommitLog:
    def __init__(self, store: Any, meta_dir: PurePath) -> None:
        self.store = store
        self.root = meta_dir / "log"

    def head(self) -> int:
        """The latest catalog version (0: nothing committed since the log exists)."""
        text = self.store.read_text(self.root / "HEAD")
        try:
            return int((text or "0").strip())
        except ValueError:
            return 0

    def append(self, bar_type: str, added: list[str], removed: list[str], **more: Any) -> int:
        """Log one commit of ``bar_type`` as the next version (the writer lock is held)."""
        version = self.head() + 1
        self.store.write_text(self.root / "HEAD", str(version))
        run_id = os.environ.get(RUN_ID_ENV) or ""
        entry = {
            "version": version,
            "at": dt.datetime.now(dt.UTC).isoformat(),
            "bar_type": bar_type,
            "added": added,
            "removed": removed,
            "script": run_id.split("/", 1)[0] if run_id else "python",
            "run_id": run_id or None,
            **more,
        }
        self.store.write_text(self._dir(bar_type) / f"{version:010d}.json", json.dumps(entry))
        return version

    def _dir(self, bar_type: str) -> PurePath:
        return self.root / "bars" / bar_type

    def versions(self, bar_type: str) -> list[int]:
        """The catalog versions that committed ``bar_type``, ascending."""
        out = []
        for name in self.store.list_names(self._dir(bar_type)):
            stem = name.removesuffix(".json")
            if name.endswith(".json") and stem.isdigit():
                out.append(int(stem))
        return sorted(out)

    def latest(self, bar_type: str) -> int | None:
        have = self.versions(bar_type)
        return have[-1] if have else None

    def entries(self, bar_type: str) -> list[dict[str, Any]]:
        """``bar_type``'s commits, oldest first."""
        out = []
        for v in self.versions(bar_type):
            text = self.store.read_text(self._dir(bar_type) / f"{v:010d}.json")
            if text:
                out.append(json.loads(text))
        return out


def catalog_version(catalog: Catalog) -> int:
    """The catalog version: the number of its latest commit (0: none logged)."""
    return catalog.history.log.head()


def commits(catalog: Catalog, bar_type: str) -> list[dict[str, Any]]:
    """``bar_type``'s commit log, oldest first: version, time, files added and removed, the
    writing script and run id."""
    return catalog.history.log.entries(PurePath(catalog.bar_dir(str(bar_type))).name)


HISTORY_COLUMNS = ("version", "at", "script", "run_id", "added", "removed")


def history(catalog: Catalog, bar_type: str | None) -> dict[str, Any]:
    """``make log``: the bar type, the catalog version and the bar type's commits."""
    if not bar_type:
        raise InputError("the commit log is per bar type", hint="make log SYMBOL=AAPL [BAR=…]")
    return {
        "bar_type": bar_type,
        "catalog_version": catalog_version(catalog),
        "commits": commits(catalog, bar_type),
    }


def render_history(history: dict[str, Any], fmt: str) -> str:
    """``make log``'s output: JSON, CSV or a table (file counts; JSON lists the names)."""
    rows, bar_type, head = history["commits"], history["bar_type"], history["catalog_version"]
    if fmt == "json":
        return json_text(history)
    flat = [
        {**r, "at": str(r["at"])[:19], "added": len(r["added"]), "removed": len(r["removed"])}
        for r in rows
    ]
    if fmt == "csv":
        return csv_text(flat, HISTORY_COLUMNS)
    if not rows:
        return f"{bar_type}: no commit logged (catalog version {head})"
    return f"{bar_type}: {len(rows)} commit(s), catalog version {head}\n" + text_table(
        flat, HISTORY_COLUMNS
    )
