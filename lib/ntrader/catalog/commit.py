"""Atomic replacement of a bar type's data files, keeping what it removes in the history.

Preferred (Linux, local disk): build the bar type's next directory in ``<catalog>/.ntrader/staging``
(hard links to the unchanged files + the new file), hard-link the files it drops into the retained
history (``history``), then swap it with the live directory in ONE ``renameat2(RENAME_EXCHANGE)``.
A commit that only adds a file links it into the live directory instead (one atomic new name). A
listing of the directory gets either the old or the new set of files, never a mix, and a file the
swap dropped stays readable, by name, in the history. A writer killed at any point leaves only a
staging directory behind, which the next writer deletes. (A plain Nautilus reader lists the
directory, then looks every name up again by path: a swap in between makes it skip a dropped file
silently or abort opening it. Add-only commits never do that to it; see the README.)

Fallback (no RENAME_EXCHANGE or no hard links) and object storage (S3 has no rename): write the
new file under a temp name, record the plan in a journal, then move the replaced files into the
history and rename (S3: copy) the new one into place, then change the commit stamp. Readers compare
the journal and the stamp around their listing and read through a journal (the plan says what the
listing will be); the next writer rolls a killed writer's journal forward. Readers never write.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import uuid
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa
from loguru import logger

from ntrader.catalog.files import BAR_WRITE_OPTIONS, fsync_dir, write_table_durably
from ntrader.catalog.history import History

FAULT_ENV = "NTRADER_FAULT"  # test hook: SIGKILL this process at a named point of a commit
COMMIT_ENV = "NTRADER_COMMIT"  # "journal" forces the fallback path (tests, exotic filesystems)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_exchange_supported: bool | None = None


def fault(point: str) -> None:
    """Kill the process at ``point`` when ``$NTRADER_FAULT`` names it (crash-safety tests)."""
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _exchange(a: Path, b: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(b))


class Committer:
    """Commits new data files for one catalog; call only while holding the catalog lock
    (``marker`` is the one reader-side call)."""

    def __init__(self, store: Any, meta_dir: PurePath, history: History) -> None:
        self.store = store
        self.meta = meta_dir
        self.history = history
        self.staging_root = Path(meta_dir / "staging")
        self.journal = meta_dir / "journal.json"
        self.stamp_path = meta_dir / "commit.stamp"

    def marker(self) -> tuple[str | None, str | None]:
        """The journal's text and the commit stamp. Equal before and after a listing: no journal
        commit was applied in between (exchange commits need no marker: a swap is atomic)."""
        return self.store.read_text(self.journal), self.store.read_text(self.stamp_path)

    def restamp(self) -> None:
        self.store.write_text(self.stamp_path, uuid.uuid4().hex)

    # ---------------------------------------------------------------- recovery
    def recover(self) -> None:
        """Finish or discard whatever a killed writer left: journal, staging dirs, temp files."""
        text = self.store.read_text(self.journal)
        if text is not None:
            plan = parse_plan(text)  # None: torn, written before any rename: nothing applied
            if plan:
                logger.warning(f"completing an interrupted catalog write ({plan['bar_type']})")
                self._finish(plan)
            else:
                self.store.remove(self.journal)
        self.history.log.recover(self._live_names)  # a commit visible, its log not finished
        tmp_dir = self.meta / "tmp"  # temp files of writers killed before their journal
        for name in self.store.list_names(tmp_dir):
            self.store.remove(tmp_dir / name)
        self.sweep_staging()

    def _live_names(self, bar_type: str) -> set[str]:
        return set(self.store.list_names(self.meta.parent / "data" / "bar" / bar_type))

    def sweep_staging(self) -> None:
        """Delete every staging directory (called under the lock: none is in use)."""
        if self.store.local and self.staging_root.exists():
            self.store.inside(self.staging_root)
            for d in self.staging_root.iterdir():
                shutil.rmtree(d, ignore_errors=True)

    def put(self, final: PurePath, table: pa.Table) -> None:
        """A new whole file: temp + fsync + rename locally, one PUT on object storage."""
        if not self.store.local:
            self.store.write_table(final, table)
            return
        tmp = self.store.inside(self.store.temp_path(final))
        write_table_durably(table, Path(tmp))
        self.store.rename(tmp, final)
        fsync_dir(Path(final).parent)

    # ---------------------------------------------------------------- commit
    def replace(self, bar_dir: PurePath, name: str, table: pa.Table, remove: list[PurePath]) -> int:
        """Make ``bar_dir`` hold its current files minus ``remove`` plus ``table`` as ``name``
        (a name no live or retained file has); ``remove`` goes to the history.

        Returns the new file's size in bytes.
        """
        global _exchange_supported
        removed = [p.name for p in remove if p.name != name]
        version = self.history.log.begin(bar_dir.name, [name], removed)
        try:
            exchange = self.store.local and os.environ.get(COMMIT_ENV) != "journal"
            if exchange and _exchange_supported is not False:
                try:
                    size = self._replace_by_exchange(Path(bar_dir), name, table, remove)
                except _ExchangeUnsupported as exc:
                    _exchange_supported = False
                    logger.info(f"atomic directory exchange unavailable ({exc}); using the journal")
                else:
                    self.history.record(bar_dir.name, [name], removed, version)
                    return size
            return self._replace_by_journal(bar_dir, name, table, remove, version)
        except BaseException:
            # visible or not, by its files (a journal left behind is rolled forward, and its
            # version finished, by the next writer)
            if self.store.read_text(self.journal) is None:
                self.history.log.recover(self._live_names)
            raise

    def _replace_by_exchange(
        self, bar_dir: Path, name: str, table: pa.Table, remove: list[PurePath]
    ) -> int:
        global _exchange_supported
        bar_dir = self.store.inside(bar_dir)
        staging = self.store.inside(self.staging_root / uuid.uuid4().hex)
        staging.mkdir(parents=True)
        add_only = not remove and bar_dir.exists()
        try:
            size = write_table_durably(table, staging / name, **BAR_WRITE_OPTIONS)
            if add_only:  # one new name: linked in place (no file of a listing disappears)
                fault("before_swap")
                os.link(staging / name, self.store.inside(bar_dir / name))
            else:
                gone = {p.name for p in remove}
                if bar_dir.exists():
                    for entry in os.scandir(bar_dir):
                        if entry.name.endswith(".parquet") and entry.name not in gone:
                            os.link(entry.path, staging / entry.name)
                fsync_dir(staging)
                self.history.link(bar_dir.name, [bar_dir / n for n in sorted(gone)])
                fault("before_swap")
                if bar_dir.exists():
                    _exchange(staging, bar_dir)
                else:
                    bar_dir.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(staging, bar_dir)
            _exchange_supported = True
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            unsupported = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EXDEV)
            if exc.errno in unsupported and not _exchange_supported:
                raise _ExchangeUnsupported(str(exc)) from exc
            raise
        fsync_dir(bar_dir if add_only else bar_dir.parent)
        fault("after_swap")
        shutil.rmtree(staging, ignore_errors=True)  # holds the previous generation, if swapped
        return size

    def _replace_by_journal(
        self, bar_dir: PurePath, name: str, table: pa.Table, remove: list[PurePath], version: int
    ) -> int:
        final = bar_dir / name
        tmp = self.store.temp_path(final)
        size = int(self.store.write_table(tmp, table, **BAR_WRITE_OPTIONS))
        fault("before_journal")
        plan = {
            "bar_type": bar_dir.name,
            "add": [[str(tmp), str(final), size]],
            "remove": [str(p) for p in remove if p != final],
            "history": str(self.history.dir(bar_dir.name)),
            "version": version,  # its commit log entry, begun
        }
        self.store.write_text(self.journal, json.dumps(plan))
        fault("after_journal")
        self._finish(plan)
        return size

    def _finish(self, plan: dict[str, Any]) -> None:
        self._apply(plan)
        self.restamp()  # before the journal goes: a reader sees the journal or the new stamp
        self.store.remove(self.journal)
        added = [PurePath(a[1]).name for a in plan["add"]]
        removed = [PurePath(p).name for p in plan["remove"]]
        self.history.record(plan["bar_type"], added, removed, plan.get("version"))

    def _apply(self, plan: dict[str, Any]) -> None:
        for old in plan["remove"]:
            self.history.move(plan["bar_type"], PurePath(old))
        fault("mid_apply")
        for tmp, final, *_ in plan["add"]:
            if self.store.exists(PurePath(tmp)):
                self.store.rename(PurePath(tmp), PurePath(final))
        if not self.store.local:
            return
        dirs = {Path(a[1]).parent for a in plan["add"]} | {Path(f).parent for f in plan["remove"]}
        dirs.add(Path(self.history.dir(plan["bar_type"])))
        for d in dirs:
            if d.exists():
                fsync_dir(d)


def parse_plan(text: str | None) -> dict[str, Any] | None:
    """A journal's plan, or None (no journal, or a torn one: nothing of it was applied)."""
    if not text:
        return None
    try:
        plan = json.loads(text)
    except json.JSONDecodeError:
        return None
    return plan if isinstance(plan, dict) and "add" in plan and "remove" in plan else None


class _ExchangeUnsupported(Exception):
    pass
