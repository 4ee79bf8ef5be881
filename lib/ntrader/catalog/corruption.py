"""What a failed read of a catalog file means, and the quarantine of proven-corrupt files.

A reader never guesses. An operating-system error (permission denied, not a regular file, an I/O
error) is a ``SystemFailure`` naming the file, the cause and a hint, and nothing is changed. A
decode error is *proven* before it is called corruption: the file must be fully present (a regular
file, the size the listing gave, unchanged by ``stat`` across a second, fresh read) and fail to
decode again. Proven corruption is a ``CatalogCorruption`` that leaves the file where it is.
Only a writer holding the catalog lock moves files, to ``<catalog>/.corrupt/<relative path>``:
when a merge reads a corrupt overlapping file, and in the explicit repair
(``Catalog.quarantine_corrupt``, ``make scan ARGS=repair=true``).
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from loguru import logger

from ntrader.errors import CatalogCorruption, SystemFailure

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog
    from ntrader.catalog.commit import Committer

REPAIR = "`make scan ARGS=repair=true` moves it to .corrupt/"
REFILL = "then re-import or re-fetch that range (`make check SYMBOL=…` lists what is missing)"


class Vanished(Exception):
    """A listed file is gone from its live path and from every other source (read again)."""


class Changed(Exception):
    """A file changed or read differently the second time: not proven corrupt (read again)."""


@dataclass(frozen=True)
class Quarantined:
    """A proven-corrupt file moved out of the catalog by a writer."""

    path: str  # where it was
    moved_to: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "moved_to": self.moved_to, "reason": self.reason}


def os_level(exc: BaseException) -> bool:
    """An error of the operating system (it has an errno), not of the Parquet decoder."""
    return isinstance(exc, OSError) and exc.errno is not None


def os_failure(
    path: PurePath | str, exc: BaseException, what: str = "file"
) -> SystemFailure | Vanished:
    """The error for an OS-level failure to read ``path``; nothing is changed by any of them."""
    if isinstance(exc, FileNotFoundError):
        return Vanished(str(path))
    why = getattr(exc, "strerror", None) or str(exc)
    denied = getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM)
    if isinstance(exc, PermissionError) or denied:
        return SystemFailure(
            f"cannot read catalog {what} {path}: {why}",
            hint="not readable by this user: check its owner/permissions (ls -l); nothing was "
            "changed",
        )
    if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        return SystemFailure(
            f"catalog {what} {path} is not a regular {what} ({why})",
            hint="move whatever is at that path out of the catalog; nothing was changed",
        )
    return SystemFailure(
        f"I/O error reading catalog {what} {path}: {type(exc).__name__}: {why}",
        hint="if it was transient, rerun; if it persists, check the disk or the mount (dmesg); "
        "nothing was changed",
    )


def diagnose(
    identity: Callable[[PurePath], tuple[Any, ...]],
    root: PurePath,
    path: PurePath,
    listed_size: int | None,
    exc: BaseException,
    reread: Callable[[PurePath], object],
) -> Exception:
    """The exception a failed read of ``path`` stands for (returned, for the caller to raise).

    ``identity(path)`` is ``(is regular file, size, …)`` from a fresh ``stat``; ``reread(path)``
    reads the file again from scratch the same way. ``Vanished``/``Changed`` tell the caller to
    list again; ``CatalogCorruption`` is proven; anything else is a ``SystemFailure``."""
    if os_level(exc):
        return os_failure(path, exc)
    try:
        before = identity(path)
        if not before[0]:
            return os_failure(path, IsADirectoryError(errno.EISDIR, "not a regular file"))
        if listed_size is not None and before[1] != listed_size:
            return Changed(f"{path}: {before[1]} bytes, the listing said {listed_size}")
        reread(path)
    except (pa.ArrowException, OSError) as again:
        if os_level(again):
            return os_failure(path, again)
        try:
            if identity(path) != before:
                return Changed(f"{path} changed while being read")
        except OSError as gone:
            return os_failure(path, gone)
        return corruption(root, path, again)
    return Changed(f"{path} read fine the second time ({type(exc).__name__}: {exc})")


def corruption(root: PurePath, path: PurePath, exc: BaseException) -> CatalogCorruption:
    err = CatalogCorruption(
        f"corrupt Parquet file {_rel(root, path)} ({type(exc).__name__}: {exc}): fully present "
        "and failing to decode on a second read; left in place",
        hint=f"{REPAIR}; {REFILL}",
    )
    err.__cause__ = exc  # the decode error itself (what a quarantine records as the reason)
    return err


def local_identity(path: PurePath) -> tuple[Any, ...]:
    st = os.stat(path)
    return (stat.S_ISREG(st.st_mode), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _rel(root: PurePath, path: PurePath) -> PurePath:
    try:
        return PurePath(path).relative_to(root)
    except ValueError:
        return PurePath(path)


def quarantine(store: Any, path: PurePath, error: BaseException) -> Quarantined:
    """Move a proven-corrupt file to ``<catalog>/.corrupt/<relative path>`` (writers only, under
    the catalog lock)."""
    rel = _rel(store.root, path)
    if rel.is_absolute():
        rel = PurePath(PurePath(path).name)
    dest = store.root / ".corrupt" / rel
    if store.exists(dest):
        dest = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}")
    store.move_tree_entry(path, dest)
    reason = f"{type(error).__name__}: {error}"
    logger.warning(f"corrupt catalog file {path} moved to {dest}: {reason}")
    return Quarantined(str(path), str(dest), reason)


def corrupt_files(store: Any, files: list[Any]) -> Iterator[tuple[Any, CatalogCorruption]]:
    """Fully decode each ``DataFile`` at its live path; yields the proven-corrupt ones with
    their error. Any other failure is collected and raised (``SystemFailure``) at the end."""
    problems: list[str] = []
    for f in files:
        try:
            store.read_table(f.path)
            continue
        except (pa.ArrowException, OSError) as exc:
            err = diagnose(store.identity, store.root, f.path, f.size, exc, store.read_table)
        if isinstance(err, CatalogCorruption):
            yield f, err
        else:
            problems.append(f"{err} ({getattr(err, 'hint', None) or 'read it again'})")
    if problems:
        raise SystemFailure(
            f"{len(problems)} file(s) could not be checked and were left alone: "
            + "; ".join(problems[:5]),
            hint="fix what each message says, then run the repair again (corrupt files found "
            "before are moved already)",
        )


def quarantined_error(q: Quarantined, root: PurePath) -> CatalogCorruption:
    """What a writer that had to quarantine a file it was merging with reports."""
    return CatalogCorruption(
        f"corrupt Parquet file {_rel(root, PurePath(q.path))} ({q.reason}) moved to "
        f"{q.moved_to}; nothing was written",
        hint=f"rerun the same import/fetch to write this range; {REFILL}",
    )


def read_locked(store: Any, f: Any, committer: Committer) -> pa.Table:
    """A data file a writer reads under the lock (a merge's overlapping file, a compaction's
    input): a proven-corrupt one is moved to ``.corrupt/`` in a logged commit (the restamp then
    tells S3 readers) and the write stops."""
    try:
        return store.read_table(f.path)
    except (pa.ArrowException, OSError) as exc:
        err = diagnose(store.identity, store.root, f.path, f.size, exc, store.read_table)
        if isinstance(err, CatalogCorruption):
            bt, gone = f.path.parent.name, [f.path.name]
            version = committer.history.log.begin(bt, [], [], quarantined=gone)
            q = quarantine(store, f.path, err.__cause__ or exc)
            committer.history.record(bt, [], [], version, quarantined=gone)
            committer.restamp()
            raise quarantined_error(q, store.root) from exc
        if not isinstance(err, SystemFailure):  # vanished or changed under our lock
            raise SystemFailure(
                f"catalog file {f.path} changed while this writer held the lock ({err})",
                hint="something other than ntrader writes in the catalog; nothing was "
                "written, rerun",
            ) from exc
        raise err from exc


def render_quarantined(moved: list[Quarantined], catalog_url: str) -> str:
    """What ``make scan ARGS=repair=true`` prints."""
    lines = [f"moved {m.path} to {m.moved_to}: {m.reason}" for m in moved]
    return "\n".join(lines) or f"no corrupt file in {catalog_url}"


def quarantine_catalog(
    catalog: Catalog, committer: Committer, bar_types: list[str] | None
) -> list[Quarantined]:
    """``Catalog.quarantine_corrupt``: under the lock, each proven-corrupt file of ``bar_types``
    (all when None) moved to ``<catalog>/.corrupt/`` in its own logged commit."""
    moved: list[Quarantined] = []
    with catalog.locked():
        try:
            for bt in catalog.named(bar_types):  # all as listed: also a non-ntrader directory
                for f, err in corrupt_files(catalog.store, catalog.snapshots.files(bt)):
                    gone = [f.path.name]
                    version = catalog.history.log.begin(bt, [], [], quarantined=gone)
                    moved.append(quarantine(catalog.store, f.path, err.__cause__ or err))
                    catalog.history.record(bt, [], [], version, quarantined=gone)
        finally:
            if moved:  # S3 readers compare the stamp around their listing
                committer.restamp()
    return moved
