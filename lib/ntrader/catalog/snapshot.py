"""Snapshot reads: every read sees all the files of one commit of a bar type, while writers commit.

A commit never reuses a file name for different content, and the files it removes stay readable
in the retained history (``history``) for ``retain_s`` seconds. So a reader lists a bar type's
files once — from one directory generation (local exchange commits) and under an unchanged commit
marker (journal commits, S3), reading through a journal's plan when one is pending — and then reads
each listed file from its live path or, if a commit removed it meanwhile, from its retained copy.
A listed file gone from both (older than the retention), or one that read differently twice,
restarts the read from a fresh listing. Readers take no lock and write nothing in the catalog.

``read_bars`` hands files to Nautilus' Rust reader, which aborts the whole process (a panic, not
an exception) when a file vanishes under it. It therefore only gets paths that cannot vanish: on
Linux, symlinks in a private temp directory to ``/proc/self/fd/N`` of files this process holds
open (no copy, no write in the catalog); elsewhere, and on S3, copies in that directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from ntrader.catalog.asof import files_as_of
from ntrader.catalog.commit import Committer, parse_plan
from ntrader.catalog.corruption import Changed, Vanished, diagnose, local_identity, os_failure
from ntrader.catalog.files import DataFile, list_data_files
from ntrader.catalog.history import History
from ntrader.errors import CatalogBusy, NtraderError, SystemFailure

if TYPE_CHECKING:  # imported in decode_bars: listing, footers and timestamps need only pyarrow
    from nautilus_trader.model.data import Bar
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

T = TypeVar("T")
READ_TRIES = 8  # fresh listings per read (each after a vanished/changed file)
LIST_TRIES = 60  # listings per snapshot while journal commits keep landing
PROC_FD = "/proc/self/fd"
_PINNABLE = os.path.isdir(PROC_FD)


class Snapshots:
    """Snapshot reads of one catalog (no lock, no writes in the catalog)."""

    def __init__(
        self,
        store: Any,
        committer: Committer,
        history: History,
        bar_root: PurePath,
        as_of: int | None = None,
    ) -> None:
        self.store = store
        self.as_of = as_of  # a catalog version: its files instead of the current ones
        self.committer = committer
        self.history = history
        self.bar_root = bar_root
        self._local_nautilus: ParquetDataCatalog | None = None

    # ---------------------------------------------------------------- listing
    def read(self, fn: Callable[[], T]) -> T:
        """``fn()`` (which lists and reads), again from a fresh listing after a vanished or
        changed file."""
        last: Exception | None = None
        for attempt in range(READ_TRIES):
            try:
                return fn()
            except (Vanished, Changed) as exc:
                last = exc
                time.sleep(0.002 * attempt)
        raise SystemFailure(
            f"catalog {self.store.url}: files kept vanishing or changing while being read "
            f"({READ_TRIES} listings; last: {last})",
            hint="something other than an ntrader writer removes or rewrites files in the "
            "catalog, or reads take longer than catalog.retain_s; rerun",
        )

    def _marker(self) -> tuple[str | None, str | None]:
        try:
            return self.committer.marker()
        except OSError as exc:
            failure = os_failure(self.committer.journal, exc)
            raise failure from exc

    def _stable(self, list_fn: Callable[[], T], where: PurePath) -> tuple[dict[str, Any] | None, T]:
        """``list_fn()`` with no journal commit applied during it, and the pending plan."""
        for attempt in range(LIST_TRIES):
            before = self._marker()
            try:
                out = list_fn()
            except OSError as exc:
                raise os_failure(where, exc, "directory") from exc
            if self._marker() == before:
                return parse_plan(before[0]), out
            time.sleep(min(0.001 * 2**attempt, 0.05))
        raise CatalogBusy(
            f"catalog {self.store.url} kept changing while being listed ({LIST_TRIES} tries)",
            hint="writers are committing continuously; rerun when the import/fetch is done",
        )

    def files(self, bar_type: str) -> list[DataFile]:
        """One bar type's files as of one commit, each with its retained copy as a fallback."""
        d = self.bar_root / bar_type
        plan, entries = self._stable(lambda: self.store.list_sized(d), d)
        return self._view(bar_type, entries, plan)

    def tree(self, bar_types: list[str]) -> dict[str, list[DataFile]]:
        """``files`` of many bar types from ONE listing of the bar tree."""
        plan, tree = self._stable(lambda: self.store.list_tree(self.bar_root), self.bar_root)
        return {bt: self._view(bt, tree.get(bt, {}), plan) for bt in bar_types}

    def _view(
        self, bt: str, entries: dict[str, int | None], plan: dict[str, Any] | None
    ) -> list[DataFile]:
        d = self.bar_root / bt
        if plan and plan.get("bar_type") == bt:  # a commit in progress: read what it will be
            entries = dict(entries)
            for p in plan["remove"]:
                entries.pop(PurePath(p).name, None)
            pending: dict[str, PurePath] = {}
            for tmp, final, *size in plan["add"]:
                entries[PurePath(final).name] = size[0] if size else None
                pending[PurePath(final).name] = PurePath(tmp)
            files = list_data_files(d, entries)
            files = [
                f.also_at(pending[f.path.name]) if f.path.name in pending else f for f in files
            ]
        else:
            files = list_data_files(d, entries)
        files = [f.also_at(self.history.path(bt, f.path.name)) for f in files]
        if self.as_of is None:
            return files
        return files_as_of(self.history, bt, files, self.as_of, self.history.retain_days)

    # ---------------------------------------------------------------- reading one file
    def read_one(self, f: DataFile, read: Callable[[PurePath], T]) -> T:
        """``read(path)`` from the first source of ``f`` that is there; failures diagnosed."""
        for src in f.sources:
            try:
                return read(src)
            except (pa.ArrowException, OSError) as exc:
                if isinstance(exc, FileNotFoundError):
                    continue
                err = diagnose(self.store.identity, self.store.root, src, f.size, exc, read)
                if isinstance(err, Vanished):
                    continue
                raise err from exc
        raise Vanished(str(f.path))

    def table(self, f: DataFile, columns: list[str] | None = None) -> pa.Table:
        return self.read_one(f, lambda p: self.store.read_table(p, columns=columns))

    def footers(self, files: list[DataFile]) -> list[pq.FileMetaData]:
        """Parquet metadata of each file, read in one batch (concurrent on S3); a failed one is
        read again from its sources and diagnosed."""
        got = self.store.read_footers(files)
        out: list[pq.FileMetaData] = []
        for f, md in zip(files, got, strict=True):
            if isinstance(md, Exception):
                md = self.read_one(f, self.store.read_metadata)
            out.append(md)
        return out

    # ---------------------------------------------------------------- files for the Rust reader
    @contextlib.contextmanager
    def pinned(self, bar_type: str, files: list[DataFile]) -> Iterator[list[str]]:
        """Paths to ``files`` that stay valid, with the same bytes, until the block ends."""
        tmp = tempfile.mkdtemp(prefix="ntrader-read-")
        fds: list[int] = []
        try:
            d = os.path.join(tmp, bar_type)
            os.mkdir(d)
            paths = [os.path.join(d, f.path.name) for f in files]
            if self.store.local and _PINNABLE:
                for f, path in zip(files, paths, strict=True):
                    fds.append(self.read_one(f, _open_regular))
                    os.symlink(f"{PROC_FD}/{fds[-1]}", path)
            else:
                self._copy(files, paths)
            yield paths
        finally:
            for fd in fds:
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)

    def decode_bars(
        self,
        bt: str,
        files: list[DataFile],
        paths: list[str],
        start_ns: int | None,
        end_ns: int | None,
    ) -> list[Bar]:
        """Nautilus' Rust reader over ``paths`` (pinned copies of ``files``)."""
        from nautilus_trader.core.nautilus_pyo3 import drop_cvec_pycapsule
        from nautilus_trader.model.data import Bar, capsule_to_list
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        if self._local_nautilus is None:  # any local catalog: it only reads the files given
            self._local_nautilus = ParquetDataCatalog(tempfile.gettempdir())
        # The Rust session must be dropped on this thread (it is "unsendable"): never leave it
        # to the garbage collector, which may run on another thread.
        session: Any = None
        result: Any = None
        try:
            session = self._local_nautilus.backend_session(
                data_cls=Bar, identifiers=[bt], start=start_ns, end=end_ns, files=paths
            )
            result = session.to_query_result()
            bars: list[Bar] = []
            for chunk in result:
                bars.extend(capsule_to_list(chunk))
                drop_cvec_pycapsule(chunk)
            return bars
        except Exception as exc:  # find the culprit file and say what is wrong with it
            traceback.clear_frames(exc.__traceback__)  # drops Nautilus' half-built session here
            for f, path in zip(files, paths, strict=True):
                try:
                    _footer(PurePath(path))
                except (pa.ArrowException, OSError) as bad:
                    pinned = PurePath(path)  # a local path (a pin or a copy), also on S3
                    tmp = pinned.parent.parent
                    err = diagnose(local_identity, tmp, pinned, f.size, bad, _footer)
                    if isinstance(err, NtraderError):  # say which catalog file it is
                        rel = str(f.path.relative_to(self.store.root))
                        text = err.message.replace(str(pinned), str(f.path))
                        err.message = text.replace(str(pinned.relative_to(tmp)), rel)
                        err.args = (err.message,)
                    raise err from exc
            raise SystemFailure(f"reading {bt} failed: {exc}") from exc
        finally:
            del result, session

    def _copy(self, files: list[DataFile], paths: list[str]) -> None:
        if self.store.local:
            for f, path in zip(files, paths, strict=True):
                fd = self.read_one(f, _open_regular)
                with os.fdopen(fd, "rb") as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            return
        got = self.store.fs.cat([str(f.path) for f in files], on_error="return")
        for f, path in zip(files, paths, strict=True):
            data = got.get(str(f.path))
            if not isinstance(data, bytes):
                data = self.read_one(f.also_at(), lambda p: self.store.fs.cat_file(str(p)))
            with open(path, "wb") as dst:
                dst.write(data)


def _footer(path: PurePath) -> pq.FileMetaData:
    with pa.OSFile(str(path)) as fh:
        return pq.read_metadata(fh)


def _open_regular(path: PurePath) -> int:
    """An open descriptor on ``path``, which must be a regular file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(21, "not a regular file", str(path))
    return fd
