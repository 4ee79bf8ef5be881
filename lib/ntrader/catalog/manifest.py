"""What data a run read, provably: per bar type the pinned files with bytes, rows, first/last
``ts_event`` and a content hash (xxh3-128), and the instrument definition's hash.

Hashing reads every byte once; the hashes are cached in ``$NTRADER_CACHE/file_hashes.sqlite``
(default ``~/.cache/ntrader``), outside the catalog — readers never write to it. The cache key is
the catalog, bar type, file name and size: a catalog never reuses a file name for other content
(``ntrader.catalog.history``), so a name and size name one content. A cache that cannot be opened
or written is skipped (the hashes are computed), never an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import xxhash
from loguru import logger

if TYPE_CHECKING:
    from ntrader.catalog.stream import PinnedBars

HASH = "xxh3_128"
_CHUNK = 4 << 20


def cache_dir() -> Path:
    return Path(os.environ.get("NTRADER_CACHE") or Path.home() / ".cache" / "ntrader")


def hash_file(path: str | os.PathLike[str]) -> str:
    """The xxh3-128 of a file's bytes, hex."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class HashCache:
    """File hashes by (catalog, bar type, name, size); counts hits and misses."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "file_hashes.sqlite"
        self.hits = self.misses = 0
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS hashes (key TEXT PRIMARY KEY, hash TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            logger.debug(f"hash cache {self.path} not used: {exc}")
            self._db = None

    def hash(self, key: str, path: str) -> str:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                row = self._db.execute("SELECT hash FROM hashes WHERE key = ?", (key,)).fetchone()
                if row:
                    self.hits += 1
                    return str(row[0])
        self.misses += 1
        digest = hash_file(path)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error), self._db:
                self._db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?)", (key, digest))
        return digest

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.path), "hits": self.hits, "misses": self.misses}


def _ts_range(md: pq.FileMetaData) -> tuple[int | None, int | None]:
    """First and last ``ts_event`` from the footer's statistics."""
    col = md.schema.names.index("ts_event")
    lo: int | None = None
    hi: int | None = None
    for i in range(md.num_row_groups):
        stats = md.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max:
            return None, None
        lo = int(stats.min) if lo is None else min(lo, int(stats.min))
        hi = int(stats.max) if hi is None else max(hi, int(stats.max))
    return lo, hi


def pinned_files(url: str, pinned: PinnedBars, cache: HashCache) -> list[dict[str, Any]]:
    """One entry per pinned file of ``pinned`` (the bytes the run read)."""
    out = []
    for f, path in zip(pinned.files, pinned.paths, strict=True):
        size = os.stat(path).st_size
        md = pq.read_metadata(path)
        first, last = _ts_range(md)
        key = f"{url}|{pinned.bar_type}|{f.path.name}|{size}"
        out.append(
            {
                "name": f.path.name,
                "bytes": size,
                "rows": md.num_rows,
                "first_ts_event": first,
                "last_ts_event": last,
                HASH: cache.hash(key, path),
            }
        )
    return out


def definition_hash(instrument: Any) -> str:
    """The xxh3-128 of a Nautilus instrument's definition (its ``to_dict``, keys sorted)."""
    d = type(instrument).to_dict(instrument)
    d.pop("ts_event", None)  # when the definition was stamped, not what it says
    d.pop("ts_init", None)
    text = json.dumps(d, sort_keys=True, default=str)
    return xxhash.xxh3_128_hexdigest(text.encode())
