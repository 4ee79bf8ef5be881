"""Single-writer locks for a catalog: a lock file on local disk, a lease object on S3.

Both expose the same small interface (``acquire(timeout)``, ``release()``, ``holder()``,
``check()``) and are re-entrant within one process, so code that already holds the lock can take
it again. Only writers take them: readers never do.

The S3 lease is one object ``<catalog>/.ntrader/<name>.lock`` holding JSON
``{"owner", "token", "expires"}``. It is created with ``If-None-Match: *`` (S3 conditional write:
exactly one of several concurrent creators succeeds), renewed every ``ttl/3`` seconds by a
background thread with ``If-Match: <etag>`` (compare-and-swap), and released with a conditional
delete. A lease whose ``expires`` has passed (its writer died) is taken over with ``If-Match`` on
the expired version, so two takers cannot both win. After every create or takeover the winner
reads the object back and checks its token: a server that checked the condition non-atomically
still ends with one holder. A writer that cannot renew (it stalled past the expiry and someone
took over) learns it from ``check()``, which the catalog calls before every commit.

Clocks: expiry is wall-clock time of the writer's machine; machines sharing a catalog must agree
within ``SKEW_S`` seconds (NTP does far better). A dead writer's lease is free after ``ttl`` +
``min(SKEW_S, ttl)`` seconds: 90 s by default, ``NTRADER_LEASE_TTL`` changes the ttl.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from ntrader.errors import CatalogBusy, SystemFailure

SKEW_S = 30.0
_CONDITIONAL_OK: set[str] = set()  # buckets whose server proved it honours If-None-Match
TTL_ENV = "NTRADER_LEASE_TTL"


def _timeout() -> type[Exception]:
    from filelock import Timeout

    return Timeout


def _sync(loop: Any, coro: Callable[[], Any]) -> Any:
    from fsspec.asyn import sync  # S3 leases only

    return sync(loop, coro)


def lease_ttl() -> float:
    return float(os.environ.get(TTL_ENV) or 60.0)


def _describe_owner() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"


class LocalLock:
    """``filelock`` lock file plus an owner note for the 'who holds it' message."""

    def __init__(
        self, path: PurePath, where: str, inside: Callable[[PurePath], object] | None = None
    ) -> None:
        self.path = str(path)
        self.where = where
        self._inside = inside  # containment check, run before the lock file is created
        self._file_lock: Any = None  # filelock is imported by the first writer, not by readers
        self._owner = self.path + ".owner"

    @property
    def _lock(self) -> Any:
        if self._file_lock is None:
            from filelock import FileLock

            self._file_lock = FileLock(self.path)
        return self._file_lock

    def holder(self) -> str:
        try:
            with open(self._owner) as fh:
                return fh.read().strip() or "another process"
        except OSError:
            return "another process"

    def acquire(self, timeout: float) -> None:
        if self._inside is not None:
            self._inside(PurePath(self.path))
            self._inside(PurePath(self._owner))
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if self._lock.is_locked:
            self._lock.acquire()  # re-entrant
            return
        try:
            self._lock.acquire(timeout=timeout)
        except _timeout() as exc:
            raise CatalogBusy(f"{self.where} stayed locked by {self.holder()}") from exc
        try:
            with open(self._owner, "w") as fh:
                fh.write(_describe_owner())
        except OSError:
            self._lock.release()  # e.g. another user's note: not writable by us
            raise

    def release(self) -> None:
        if self._lock.lock_counter == 1:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._owner)
        self._lock.release()

    def check(self) -> None:
        """A local lock file cannot be taken away from a live process."""


class LeaseLock:
    """An expiring lock object on S3, renewed in the background while held."""

    def __init__(self, fs: Any, path: PurePath, where: str, ttl: float | None = None) -> None:
        self.fs = fs
        self.key = str(path)
        self.bucket, _, self.obj = self.key.partition("/")
        self.where = where
        self.ttl = lease_ttl() if ttl is None else ttl
        self.token = uuid.uuid4().hex
        self._etag: str | None = None
        self._depth = 0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._mutex = threading.Lock()

    # ------------------------------------------------------------------ S3 calls
    def _body(self) -> bytes:
        note = {"owner": _describe_owner(), "token": self.token, "expires": time.time() + self.ttl}
        return json.dumps(note).encode()

    def _put(self, **condition: str) -> str:
        out = self.fs.call_s3(
            "put_object", Bucket=self.bucket, Key=self.obj, Body=self._body(), **condition
        )
        return str(out["ETag"])

    async def _get(self) -> tuple[bytes, str]:
        out = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.obj)
        async with out["Body"] as stream:
            body = await stream.read()
        return body, str(out["ETag"])

    def _read(self) -> tuple[dict[str, Any], str] | None:
        """The lock note and its ETag from ONE GET (so they belong together), or None."""
        try:
            body, etag = _sync(self.fs.loop, self._get)
        except FileNotFoundError:
            return None
        try:
            note = json.loads(body)
        except ValueError:
            note = {"owner": "unreadable lock object", "token": "", "expires": 0}
        return note, etag

    def _confirm(self) -> bool:
        got = self._read()
        if got and got[0].get("token") == self.token:
            self._etag = got[1]
            return True
        return False

    # ------------------------------------------------------------------ interface
    def holder(self) -> str:
        got = self._read()
        return str(got[0].get("owner", "another process")) if got else "nobody"

    def _try_once(self) -> bool:
        try:
            self._put(IfNoneMatch="*")
            return self._confirm()
        except OSError as exc:
            if not _precondition_failed(exc):
                raise
        got = self._read()
        if got is None:
            return False  # released between our put and read: try again
        note, etag = got
        if float(note.get("expires", 0)) + min(SKEW_S, self.ttl) >= time.time():
            return False
        try:  # the holder is dead: take over exactly that expired version
            self._put(IfMatch=etag)
        except OSError as exc:
            if _precondition_failed(exc) or isinstance(exc, FileNotFoundError):
                return False
            raise
        return self._confirm()

    def _require_conditional_writes(self) -> None:
        """Refuse a server that ignores ``If-None-Match`` (older S3-compatible stores): with it,
        two writers would both "create" the lease. Probed once per bucket and process."""
        if self.bucket in _CONDITIONAL_OK:
            return
        probe = f"{self.obj}.probe-{uuid.uuid4().hex}"
        put = {"Bucket": self.bucket, "Key": probe, "Body": b"probe", "IfNoneMatch": "*"}
        self.fs.call_s3("put_object", **put)
        try:
            self.fs.call_s3("put_object", **put)
            honoured = False
        except OSError as exc:
            honoured = _precondition_failed(exc)
            if not honoured:
                raise
        finally:
            with contextlib.suppress(OSError):
                self.fs.call_s3("delete_object", Bucket=self.bucket, Key=probe)
        if not honoured:
            raise SystemFailure(
                f"{self.where}: the object store ignores conditional writes (If-None-Match), so "
                "it cannot keep two writers apart; nothing was written",
                hint="use AWS S3 or an S3-compatible server with conditional writes "
                "(recent MinIO, Ceph, R2), or a local catalog directory",
            )
        _CONDITIONAL_OK.add(self.bucket)

    def acquire(self, timeout: float) -> None:
        if self._depth:
            self._depth += 1
            return
        self._require_conditional_writes()
        deadline = time.monotonic() + timeout
        delay = 0.05
        while not self._try_once():
            if time.monotonic() >= deadline:
                raise CatalogBusy(f"{self.where} stayed locked by {self.holder()}")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        self._depth = 1
        self._lost = None
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._mutex:
                if self._stop.is_set() or not self.renew_once():
                    return

    def renew_once(self) -> bool:
        """Extend the lease (compare-and-swap); False, and ``check()`` raises, when it was lost."""
        try:
            self._etag = self._put(IfMatch=self._etag or "")
            return True
        except OSError as exc:
            self._lost = f"lease renewal refused ({exc})"
            return False

    def check(self) -> None:
        """Raise when the lease was lost (renewal refused: another writer took over)."""
        if self._lost:
            raise SystemFailure(
                f"{self.where}: lost the write lock ({self._lost}); nothing further written",
                hint="another writer took over after this one stalled; rerun to finish the job",
            )

    def release(self) -> None:
        if self._depth > 1:
            self._depth -= 1
            return
        self._depth = 0
        self._stop.set()
        with self._mutex:
            pass
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._lost:
            return
        # Expired and taken over, or already gone: then it is not ours to delete.
        with contextlib.suppress(OSError):
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.obj, IfMatch=self._etag)


def _precondition_failed(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, FileExistsError) or "pre-condition" in text or "Precondition" in text
