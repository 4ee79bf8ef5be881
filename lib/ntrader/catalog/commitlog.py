"""The catalog's commit log: every commit of bar data (import, fetch, migrate, repair, compaction,
a quarantine) gets the next catalog version and an entry that is kept (never pruned).

Layout, under the catalog's ``.ntrader`` (outside ``data/``: plain Nautilus readers never see it)::

    log/HEAD                               the latest catalog version (an integer)
    log/bars/<bar type>/<version>.json     {"version": 7, "at": "2026-…Z", "bar_type": …,
                                            "added": [names], "removed": [names],
                                            "script": "import_csv", "run_id": "import_csv/…"}

Entries are written by writers under the writer lock in two steps around the commit itself:
before it becomes visible, ``log/PENDING`` names the next version and its entry is written; after
it, ``HEAD`` becomes that version and ``PENDING`` goes. The next writer (:meth:`CommitLog.recover`,
under the lock) settles a ``PENDING`` a killed writer left: its entry is kept and ``HEAD`` moved
when the commit's files are live (it became visible), else the entry is deleted. So every visible
commit has exactly one entry and no version is used twice. A reader between the two steps may
see an entry whose commit is not visible yet: undoing it for a read as of an older version
(``asof``) removes names that are not there and restores names that still are, which changes
nothing. The writing script and run id come from the task wrapper (``NTRADER_RUN_ID``); library
calls are ``python``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from loguru import logger

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

    def begin(self, bar_type: str, added: list[str], removed: list[str], **more: Any) -> int:
        """Write the entry of the next version before its commit becomes visible (the writer
        lock is held); :meth:`finish` after the commit, :meth:`abort` when it failed."""
        version = self.head() + 1
        self.store.write_text(self.root / "PENDING", json.dumps([version, bar_type]))
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
        self.store.write_text(self._path(bar_type, version), json.dumps(entry))
        return version

    def finish(self, version: int) -> None:
        """The commit of ``version`` is visible: it becomes the catalog version."""
        self.store.write_text(self.root / "HEAD", str(version))
        self.store.remove(self.root / "PENDING")

    def append(self, bar_type: str, added: list[str], removed: list[str], **more: Any) -> int:
        """Log a commit that is already visible (``begin`` + ``finish``)."""
        version = self.begin(bar_type, added, removed, **more)
        self.finish(version)
        return version

    def pending(self) -> tuple[int, str] | None:
        """The version and bar type a writer began and did not finish, if any."""
        try:
            version, bar_type = json.loads(self.store.read_text(self.root / "PENDING") or "null")
            return int(version), str(bar_type)
        except (TypeError, ValueError):
            return None

    def recover(self, live_names: Callable[[str], set[str]]) -> None:
        """Settle the ``PENDING`` a killed writer left (under the lock): ``live_names(bar type)``
        are the bar type's live file names now."""
        if self.store.read_text(self.root / "PENDING") is None:
            return
        pending = self.pending()
        if pending is None:  # torn before its content: nothing was begun
            self.store.remove(self.root / "PENDING")
            return
        version, bar_type = pending
        entry = self.entry(bar_type, version)
        if entry is not None and version > self.head():
            live = live_names(bar_type)
            added, gone = entry["added"], entry["removed"] + entry.get("quarantined", [])
            if all(n in live for n in added) and not any(n in live for n in gone):
                logger.warning(f"logging catalog version {version}: its writer was killed")
                self.finish(version)
                return
        if entry is not None and version > self.head():
            self.store.remove(self._path(bar_type, version))
        self.store.remove(self.root / "PENDING")

    def _path(self, bar_type: str, version: int) -> PurePath:
        return self._dir(bar_type) / f"{version:010d}.json"

    def entry(self, bar_type: str, version: int) -> dict[str, Any] | None:
        text = self.store.read_text(self._path(bar_type, version))
        return json.loads(text) if text else None

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

    def latest(self, bar_type: str, upto: int | None = None) -> int | None:
        """The last version that committed ``bar_type`` (at or before ``upto``, when given)."""
        limit = self.head() if upto is None else upto
        have = [v for v in self.versions(bar_type) if v <= limit]
        return have[-1] if have else None

    def entries(self, bar_type: str) -> list[dict[str, Any]]:
        """``bar_type``'s commits, oldest first."""
        out = []
        head = self.head()
        for v in self.versions(bar_type):
            e = self.entry(bar_type, v) if v <= head else None  # above: not (yet) visible
            if e:
                out.append(e)
        return out


def catalog_version(catalog: Catalog) -> int:
    """The catalog version a read sees: the number of its latest commit (0: none logged), or
    the version a catalog opened ``as_of`` reads."""
    return catalog.history.log.head() if catalog.as_of is None else catalog.as_of


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
