"""Retained history: the data files commits removed, kept readable for ``retain_days``.

Layout, under the catalog's ``.ntrader`` (never under ``data/``: plain Nautilus readers do not see
it)::

    history/<bar type>/<file name>                    a removed data file, byte for byte
    history/<bar type>/commits/<ns>-<id>.json          one record per commit of that bar type:
        {"at": <unix ns>, "bar_type": …, "added": [names], "removed": [names]}

A commit retains the files it removes (a hard link, or on S3 a server-side copy) before the change
becomes visible, and records itself after: the records are the bar type's commit log over the
retention window, and a reader that listed a file a commit then removed reads it here by name.
A name is never reused for different content while it is live or retained (:func:`fresh_name`),
so one name means one content everywhere. The retained files are what reads as of an older
catalog version (``asof``) and reruns on it need, so they are kept for days (default 30), not
only for the length of a read. Pruning deletes retained files whose removal (their ctime locally,
their copy time on S3) is older than the retention, and records older than that: every writer
does a bounded pass under the lock (at most ``PRUNE_BATCH`` files, so a nightly commit never
stalls on a backlog), ``make gc`` a complete one (:meth:`History.gc`). The commit log is kept.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from loguru import logger

from ntrader.catalog.commitlog import CommitLog
from ntrader.catalog.files import interval_file_name
from ntrader.errors import InputError, SystemFailure

DEFAULT_RETAIN_DAYS = 30.0
DAY_S = 86_400.0
PRUNE_BATCH = 200  # retained files one writer's automatic pass deletes at most
_MAX_WIDEN = 100_000  # nanoseconds a stated interval may grow to find an unused name


def fresh_name(
    first_ns: int, last_ns: int, used: Iterable[str], lo: int | None, hi: int | None
) -> str:
    """A file name for data spanning ``[first_ns, last_ns]`` that is not in ``used``.

    The natural ``<first>_<last>.parquet`` when free; otherwise the stated interval is widened
    by the fewest nanoseconds (``first - k`` or ``last + k``) that give a free name while staying
    strictly after ``lo`` (the previous file's stated last) and before ``hi`` (the next file's
    stated first). Nautilus selects files by the stated interval: a wider one still covers the
    data, and files of a bar type stay disjoint."""
    taken = set(used)
    name = interval_file_name(first_ns, last_ns)
    if name not in taken:
        return name
    for k in range(1, _MAX_WIDEN):
        if first_ns - k >= 0 and (lo is None or first_ns - k > lo):
            name = interval_file_name(first_ns - k, last_ns)
            if name not in taken:
                return name
        if hi is None or last_ns + k < hi:
            name = interval_file_name(first_ns, last_ns + k)
            if name not in taken:
                return name
    raise SystemFailure(
        f"no unused file name for [{first_ns}, {last_ns}] within {_MAX_WIDEN} ns (a bug)",
        hint="run `make scan` and report the bar type",
    )


class History:
    """The retained history of one catalog (local directory or S3 prefix)."""

    def __init__(
        self, store: Any, meta_dir: PurePath, retain_days: float = DEFAULT_RETAIN_DAYS
    ) -> None:
        if not retain_days >= 0:
            raise InputError(
                f"catalog.retain_days={retain_days!r} must be a number of days >= 0",
                hint="catalog.retain_days=30 (0: keep replaced files only while being read)",
            )
        self.store = store
        self.root = meta_dir / "history"
        self.retain_days = float(retain_days)
        self.retain_s = self.retain_days * DAY_S
        self._pruned_all = False
        self._pruned: dict[str, float] = {}  # bar type -> when this process last pruned it
        self.log = CommitLog(store, meta_dir)  # kept: versions, never pruned

    def dir(self, bar_type: str) -> PurePath:
        return self.root / bar_type

    def path(self, bar_type: str, name: str) -> PurePath:
        return self.dir(bar_type) / name

    def names(self, bar_type: str) -> set[str]:
        return {n for n in self.store.list_names(self.dir(bar_type)) if n.endswith(".parquet")}

    def sizes(self, bar_type: str) -> dict[str, int | None]:
        """Retained file name -> size (None: not listed with the name, stat when needed)."""
        found = self.store.list_sized(self.dir(bar_type))
        return {n: size for n, size in found.items() if n.endswith(".parquet")}

    # ---------------------------------------------------------------- writers (under the lock)
    def link(self, bar_type: str, paths: list[PurePath]) -> None:
        """Local, before a directory swap: hard-link files about to be removed into history."""
        if not paths:
            return
        d = self.store.inside(self.dir(bar_type))
        Path(d).mkdir(parents=True, exist_ok=True)
        for p in paths:
            _link_over(p, self.store.inside(d / p.name))
        # no fsync: after a crash no reader of before it is left to need the retained copies

    def move(self, bar_type: str, live: PurePath) -> None:
        """Journal commits: move a live file into history (link + unlink; rename without hard
        links; a server-side copy + delete on S3). A file already moved is skipped."""
        dst = self.store.inside(self.path(bar_type, live.name))
        if not self.store.local:
            if self.store.exists(live):
                self.store.rename(live, dst)
            return
        if not os.path.lexists(self.store.inside(live)):
            return  # moved before (a rolled-forward journal)
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        try:
            _link_over(live, dst)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            os.replace(live, dst)  # no hard links on this filesystem
            os.utime(dst)  # its removal time, for pruning
            return
        os.unlink(live)

    def record(
        self,
        bar_type: str,
        added: list[str],
        removed: list[str],
        version: int | None = None,
        **more: list[str],
    ) -> None:
        """Record one commit of the bar type after it became visible: the commit log's entry
        ``version`` (begun before it; None: logged now) is finished; ``more``: e.g.
        ``quarantined=[names]`` (moved to ``.corrupt/``, not retained)."""
        at = time.time_ns()
        rec = {"at": at, "bar_type": bar_type, "added": added, "removed": removed, **more}
        path = self.dir(bar_type) / "commits" / f"{at:020d}-{uuid.uuid4().hex[:8]}.json"
        self.store.write_text(path, json.dumps(rec), durable=False)
        if version is None:
            self.log.append(bar_type, added, removed, **more)
        else:
            self.log.finish(version)

    def prune(self, bar_types: Iterable[str] | None = None) -> int:
        """A writer's bounded pass: retained files and records past the retention, at most
        ``PRUNE_BATCH`` files; returns files deleted.

        ``None``: every bar type, once per process; a bar type named is pruned at most once a
        minute (``retain_s / 10`` when shorter)."""
        now = time.time()
        if bar_types is None:
            if self._pruned_all:
                return 0
            self._pruned_all = True
            bar_types = self.store.list_dirs(self.root)
        due = []
        for bt in bar_types:
            if now - self._pruned.get(bt, -1e18) < min(self.retain_s / 10, 60.0):
                continue  # pruned a moment ago: at most one listing per bar type and minute
            self._pruned[bt] = now
            due.append(bt)
        result = self.gc(due, limit=PRUNE_BATCH, now=now)
        if result.files:
            logger.debug(
                f"pruned {result.files} retained file(s) older than {self.retain_days:g} days"
            )
        if result.left:
            logger.info(
                f"{result.left}+ retained file(s) past catalog.retain_days={self.retain_days:g} "
                "left for the next writer or `make gc`"
            )
        return result.files

    def gc(
        self, bar_types: Iterable[str] | None = None, limit: int | None = None, now: float = 0.0
    ) -> Pruned:
        """Delete retained files (and commit records) removed more than the retention ago, up
        to ``limit`` files (None: all); every bar type when ``bar_types`` is None. The writer
        lock must be held."""
        now = now or time.time()
        cutoff = now - self.retain_s
        out = Pruned(self.retain_days)
        for bt in self.store.list_dirs(self.root) if bar_types is None else bar_types:
            d = self.dir(bt)
            times = self.store.list_times(d)
            old = sorted(n for n, when in times.items() if n.endswith(".parquet") and when < cutoff)
            kept = sum(1 for n in times if n.endswith(".parquet")) - len(old)
            if limit is not None and out.files + len(old) > limit:
                out.left += out.files + len(old) - limit
                old = old[: max(0, limit - out.files)]
            sizes = self.store.list_sized(d) if old else {}
            for name in old:
                size = sizes.get(name)
                out.bytes += size if size is not None else self._size(d / name)
                self.store.remove(d / name)
                out.files += 1
                out.by_bar_type[bt] = out.by_bar_type.get(bt, 0) + 1
            out.kept += kept
            for name in self.store.list_names(d / "commits"):
                with contextlib.suppress(ValueError):
                    if int(name.split("-", 1)[0]) / 1e9 < cutoff:
                        self.store.remove(d / "commits" / name)
        return out

    def _size(self, path: PurePath) -> int:
        try:
            return int(self.store.size(path))
        except (OSError, FileNotFoundError):
            return 0


@dataclass
class Pruned:
    """What a pruning pass deleted (``make gc`` prints it)."""

    retain_days: float
    files: int = 0
    bytes: int = 0
    kept: int = 0  # retained files still inside the retention
    left: int = 0  # past the retention but over the pass's limit
    by_bar_type: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "retain_days": self.retain_days,
            "files_deleted": self.files,
            "bytes_deleted": self.bytes,
            "retained_files_kept": self.kept,
            "by_bar_type": self.by_bar_type,
        }

    def render(self, url: str) -> str:
        head = (
            f"gc {url}: deleted {self.files} retained file(s), {self.bytes:,} bytes, "
            f"removed by commits more than {self.retain_days:g} days ago"
        )
        lines = [head] + [f"  {bt}: {n}" for bt, n in sorted(self.by_bar_type.items())]
        lines.append(
            f"kept {self.kept} retained file(s) inside catalog.retain_days={self.retain_days:g}"
            " (reads as of older versions need them)"
        )
        return "\n".join(lines)


def _link_over(src: PurePath, dst: PurePath) -> None:
    """Hard-link ``src`` as ``dst``; an older ``dst`` of the same name (same bytes: a retried
    commit) is replaced unless it already is that file."""
    try:
        os.link(src, dst)
    except FileExistsError:
        if not os.path.samefile(src, dst):
            os.unlink(dst)
            os.link(src, dst)
