"""The catalog, through its store (a directory or an ``s3://`` prefix): does it exist, may this user
write it, who holds the write lock, what a killed writer left (a journal, staging directories,
temp files) and what ``.corrupt/`` holds.

Nothing under ``data/`` is touched. The writability probe creates and removes one small file in
``<catalog>/.ntrader/`` (the root when that does not exist yet); the lock probe takes a shared
``flock`` on the lock file for an instant (a writer starting in that instant waits one poll).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import socket
import time
import uuid
from pathlib import Path, PurePath
from typing import Any

from ntrader.catalog.commit import parse_plan
from ntrader.catalog.guard import is_not_writable, not_writable
from ntrader.doctor.findings import Finding, fail, from_error, ok, warn
from ntrader.errors import SYSTEM_ERROR, NtraderError

_NOTE = re.compile(r"pid (\d+) on (\S+) since (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
STUCK_S = 6 * 3600  # a lock held longer than this looks like a stuck writer
RECOVER = "make gc completes it now (so does the next make import / fetch / compact)"


def catalog_findings(store: Any) -> list[Finding]:
    """The catalog's findings (a missing catalog is a warning: the first writer creates it)."""
    root, url = store.root, store.url
    if not store.exists(root):
        missing = warn(
            "catalog",
            f"no catalog at {url} yet",
            "nothing to do: the first make fetch / make import creates it (CATALOG=… or "
            "NAUTILUS_PATH if you expected one here)",
        )
        return [missing, _creatable(store)]
    bar_types = store.list_dirs(root / "data" / "bar")
    out = [ok("catalog", f"{url}: {len(bar_types)} bar type(s)"), _writable(store)]
    lock, busy = _lock(store)
    return [*out, lock, _leftovers(store, busy), _corrupt(store)]


# ---------------------------------------------------------------- writable
def _creatable(store: Any) -> Finding:
    if not store.local:
        return _writable(store)
    parent = Path(store.root)
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        return ok("catalog.writable", f"{parent} is writable: the first writer can create it")
    return fail(
        "catalog.writable",
        f"cannot create {store.url}: {parent} is not writable by this user",
        "point CATALOG at a directory you may write (or ask its owner for write access)",
        SYSTEM_ERROR,
    )


def _writable(store: Any) -> Finding:
    """Create and remove one probe file in ``.ntrader/`` (or the root)."""
    meta = store.root / ".ntrader"
    folder = meta if not store.local or os.path.isdir(meta) else store.root
    probe = folder / f".doctor-{uuid.uuid4().hex[:12]}.tmp"
    try:
        if store.local:
            Path(probe).write_text("ntrader doctor\n")
            os.unlink(probe)
        else:
            store.write_text(probe, "ntrader doctor\n")
            store.remove(probe)
    except NtraderError as exc:
        return from_error("catalog.writable", exc)
    except OSError as exc:
        if is_not_writable(exc):
            return from_error("catalog.writable", not_writable(store.url, exc))
        return fail(
            "catalog.writable",
            f"writing a probe file in {_at(store, folder)} failed: {exc}",
            "check the file system (mounted, not full, permissions)",
            SYSTEM_ERROR,
        )
    return ok("catalog.writable", f"created and removed a probe file in {_at(store, folder)}")


# ---------------------------------------------------------------- lock
def _lock(store: Any) -> tuple[Finding, bool]:
    """(finding, whether a writer holds the lock now)."""
    if not store.local:
        return _lease(store)
    path = Path(store.root) / ".ntrader" / "write.lock"
    note = _read(Path(f"{path}.owner"))
    held = _flock_held(path)
    if held is None and note is None:
        return ok("catalog.lock", "free (no writer)"), False
    if not held:
        if note is None:
            return ok("catalog.lock", "free (no writer)"), False
        return warn(
            "catalog.lock",
            f"stale owner note {path}.owner ({note}): that writer was killed before it released "
            "the lock; nobody holds it now",
            "nothing to do: the next writer takes the lock and replaces the note (or delete "
            "the .owner file)",
        ), False
    if note is None:
        return ok("catalog.lock", "held by a writer that is starting (no owner note yet)"), True
    return _held(path, note), True


def _held(path: Path, note: str) -> Finding:
    m = _NOTE.fullmatch(note)
    if not m:
        return ok("catalog.lock", f"held by {note} (a write is running)")
    pid, host, since = int(m.group(1)), m.group(2), m.group(3)
    age = time.time() - time.mktime(time.strptime(since, "%Y-%m-%d %H:%M:%S"))
    if host == socket.gethostname() and not _alive(pid):
        return warn(
            "catalog.lock",
            f"held, but its owner note names pid {pid}, which is not running ({note})",
            f"find the holder: fuser -v {path} (a child of pid {pid} may hold it)",
        )
    if age > STUCK_S:
        return warn(
            "catalog.lock",
            f"held by {note}, for {age / 3600:.1f} h: a stuck writer?",
            f"look at that process (ps -p {pid}); other writers wait catalog.lock_timeout",
        )
    return ok("catalog.lock", f"held by {note} (a write is running; others wait for it)")


def _lease(store: Any) -> tuple[Finding, bool]:
    key = store.root / ".ntrader" / "write.lock"
    text = store.read_text(key)
    if text is None:
        return ok("catalog.lock", "free (no lease object)"), False
    try:
        note = json.loads(text)
        owner, expires = str(note.get("owner", "?")), float(note.get("expires", 0))
    except (ValueError, TypeError, AttributeError):
        owner, expires = "an unreadable lease", 0.0
    left = expires - time.time()
    if left > 0:
        return ok("catalog.lock", f"leased by {owner} (renewed; {left:.0f} s left)"), True
    when = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return warn(
        "catalog.lock",
        f"expired lease of {owner} (expired {when}): that writer died",
        "nothing to do: the next writer takes the lease over once it has expired",
    ), False


def _flock_held(path: Path) -> bool | None:
    """Whether another process holds ``flock`` on ``path`` (None: no lock file, or unknown)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return True if exc.errno in (errno.EAGAIN, errno.EACCES) else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return None


# ---------------------------------------------------------------- leftovers, .corrupt/
def _leftovers(store: Any, busy: bool) -> Finding:
    meta = store.root / ".ntrader"
    where = _at(store, meta / "journal.json")
    journal = store.read_text(meta / "journal.json")
    staging = store.list_dirs(meta / "staging") if store.local else []
    temps = store.list_names(meta / "tmp")
    if busy and (journal is not None or staging or temps):
        return ok("catalog.journal", "a commit is in progress (the lock is held)")
    if journal is not None:
        plan = parse_plan(journal)
        what = (
            f"an interrupted commit of {plan.get('bar_type')} left {where}: "
            "ntrader's readers read through it; a plain ParquetDataCatalog may not see it whole"
            if plan
            else f"a torn {where} (nothing of it was applied)"
        )
        return warn("catalog.journal", what, RECOVER)
    if staging or temps:
        parts = [f"{len(staging)} staging dir(s)"] if staging else []
        left = " and ".join([*parts, *([f"{len(temps)} temp file(s)"] if temps else [])])
        return warn(
            "catalog.journal", f"{left} left in {_at(store, meta)} by a killed writer", RECOVER
        )
    return ok("catalog.journal", "no interrupted commit")


def _corrupt(store: Any) -> Finding:
    folder = store.root / ".corrupt"
    files = _tree(store, folder)
    if not files:
        return ok("catalog.corrupt", "nothing quarantined")
    total, at = sum(files.values()), _at(store, folder)
    remove = f"rm -r {at}" if store.local else f"aws s3 rm --recursive {at}/"
    names = sorted(files)
    shown = ", ".join(names[:3]) + (f" … (+{len(names) - 3})" if len(names) > 3 else "")
    return warn(
        "catalog.corrupt",
        f"{len(files)} quarantined file(s), {total:,} bytes in {at}: {shown}",
        "their bars are gone from the catalog: re-fetch or re-import those ranges (make check "
        f"SYMBOL=… lists the gaps), then delete them: {remove}",
    )


def _at(store: Any, path: PurePath) -> str:
    """``path`` as people write it: a local path, or ``s3://bucket/key``."""
    return str(path) if store.local else f"s3://{path}"


def _tree(store: Any, folder: PurePath) -> dict[str, int]:
    """Every file under ``folder`` (path relative to it -> bytes)."""
    out: dict[str, int] = {}
    if store.local:
        for base, _dirs, names in os.walk(folder):
            for name in names:
                p = Path(base) / name
                with contextlib.suppress(OSError):
                    out[str(p.relative_to(folder))] = p.stat().st_size
        return out
    try:
        found = store.fs.find(str(folder), detail=True, withdirs=False)
    except FileNotFoundError:
        return out
    prefix = str(folder).rstrip("/") + "/"
    return {k.removeprefix(prefix): int(v.get("size") or 0) for k, v in found.items()}
