"""Atomic replacement of a bar type's data files.

Preferred (Linux, local disk): build the bar type's next directory in ``<catalog>/.ntrader/staging``
(hard links to the unchanged files + the new file), then swap it with the live directory in ONE
``renameat2(RENAME_EXCHANGE)``. Every reader, ntrader's or a plain Nautilus one, sees either the old
or the new set of files — never a mix. A writer killed at any point leaves only a staging directory
behind, which the next writer deletes.

Fallback (no RENAME_EXCHANGE or no hard links) and object storage (S3 has no rename): write the
new file under a temp name, record the plan in a journal, then remove the replaced files and rename
(S3: copy) the new one into place. A killed writer's journal is rolled forward by the next ntrader
process that touches the catalog; ntrader readers wait for a live writer's journal to be applied.
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
    """Commits new data files for one catalog; call only while holding the catalog lock."""

    def __init__(self, store: Any, meta_dir: PurePath) -> None:
        self.store = store
        self.meta = meta_dir
        self.staging_root = Path(meta_dir / "staging")
        self.journal = meta_dir / "journal.json"

    def has_journal(self) -> bool:
        return bool(self.store.exists(self.journal))

    def stamp(self) -> str | None:
        """Object storage: changes with every applied commit (readers compare it around a read)."""
        return None if self.store.local else self.store.read_text(self.meta / "commit.stamp")

    def _restamp(self) -> None:
        if not self.store.local:
            self.store.write_text(self.meta / "commit.stamp", uuid.uuid4().hex)

    # ---------------------------------------------------------------- recovery
    def recover(self) -> None:
        """Finish or discard whatever a killed writer left: journal, staging dirs, temp files."""
        text = self.store.read_text(self.journal)
        if text is not None:
            try:
                plan = json.loads(text)
            except json.JSONDecodeError:
                plan = None  # torn journal: it is written before any rename, nothing was applied
            if plan:
                logger.warning(f"completing an interrupted catalog write ({plan['bar_type']})")
                self._apply(plan)
                self._restamp()
            self.store.remove(self.journal)
        tmp_dir = self.meta / "tmp"  # temp files of writers killed before their journal
        for name in self.store.list_names(tmp_dir):
            self.store.remove(tmp_dir / name)
        if self.store.local and self.staging_root.exists():
            for d in self.staging_root.iterdir():
                shutil.rmtree(d, ignore_errors=True)

    def put(self, final: PurePath, table: pa.Table) -> None:
        """A new whole file: temp + fsync + rename locally, one PUT on object storage."""
        if not self.store.local:
            self.store.write_table(final, table)
            return
        tmp = self.store.temp_path(final)
        write_table_durably(table, Path(tmp))
        self.store.rename(tmp, final)
        fsync_dir(Path(final).parent)

    # ---------------------------------------------------------------- commit
    def replace(self, bar_dir: PurePath, name: str, table: pa.Table, remove: list[PurePath]) -> int:
        """Make ``bar_dir`` hold its current files minus ``remove`` plus ``table`` as ``name``.

        Returns the new file's size in bytes.
        """
        global _exchange_supported
        exchange = self.store.local and os.environ.get(COMMIT_ENV) != "journal"
        if exchange and _exchange_supported is not False:
            try:
                return self._replace_by_exchange(Path(bar_dir), name, table, remove)
            except _ExchangeUnsupported as exc:
                _exchange_supported = False
                logger.info(f"atomic directory exchange unavailable ({exc}); using the journal")
        return self._replace_by_journal(bar_dir, name, table, remove)

    def _replace_by_exchange(
        self, bar_dir: Path, name: str, table: pa.Table, remove: list[PurePath]
    ) -> int:
        global _exchange_supported
        staging = self.staging_root / uuid.uuid4().hex
        staging.mkdir(parents=True)
        try:
            gone = {p.name for p in remove}
            if bar_dir.exists():
                for entry in os.scandir(bar_dir):
                    if entry.name.endswith(".parquet") and entry.name not in gone:
                        os.link(entry.path, staging / entry.name)
            size = write_table_durably(table, staging / name, **BAR_WRITE_OPTIONS)
            fsync_dir(staging)
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
        fsync_dir(bar_dir.parent)
        fault("after_swap")
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous generation
        return size

    def _replace_by_journal(
        self, bar_dir: PurePath, name: str, table: pa.Table, remove: list[PurePath]
    ) -> int:
        final = bar_dir / name
        tmp = self.store.temp_path(final)
        size = int(self.store.write_table(tmp, table, **BAR_WRITE_OPTIONS))
        fault("before_journal")
        plan = {
            "bar_type": bar_dir.name,
            "add": [[str(tmp), str(final)]],
            "remove": [str(p) for p in remove if p != final],
        }
        self.store.write_text(self.journal, json.dumps(plan))
        fault("after_journal")
        self._apply(plan)
        self._restamp()  # before the journal goes: a reader sees the journal or the new stamp
        self.store.remove(self.journal)
        return size

    def _apply(self, plan: dict[str, Any]) -> None:
        for old in plan["remove"]:
            self.store.remove(PurePath(old))
        fault("mid_apply")
        for tmp, final in plan["add"]:
            if self.store.exists(PurePath(tmp)):
                self.store.rename(PurePath(tmp), PurePath(final))
        if not self.store.local:
            return
        dirs = {Path(f).parent for _, f in plan["add"]} | {Path(f).parent for f in plan["remove"]}
        for d in dirs:
            if d.exists():
                fsync_dir(d)


class _ExchangeUnsupported(Exception):
    pass
