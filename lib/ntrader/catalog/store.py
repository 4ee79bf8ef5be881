"""Where a catalog's files live: a local directory or an S3 prefix (``s3://bucket/catalog``).

``Catalog`` talks to its files only through a store, so the same code reads and writes both. Paths
are ``PurePath``s: a local ``Path``, or ``PurePosixPath("bucket/catalog/…")`` on S3 (the form
s3fs and NautilusTrader's catalog take). Every mutating call checks first that its path stays
inside the catalog (``guard``); a local directory listing is taken from one directory generation.
The S3 store lives in ``s3store``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ntrader.catalog.files import TMP_SUFFIX, fsync_dir, temp_path_in, write_table_durably
from ntrader.catalog.guard import LocalFence, check_local_root
from ntrader.catalog.lock import LocalLock
from ntrader.errors import InputError

if TYPE_CHECKING:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from ntrader.catalog.s3store import S3Store

DEFAULT_CATALOG = Path("data/catalog")


def resolve_location(explicit: str | os.PathLike[str] | None = None) -> str:
    """``CATALOG`` (explicit) > ``$NAUTILUS_PATH/catalog`` > ``data/catalog``, as text."""
    if explicit:
        return str(explicit)
    if os.environ.get("NAUTILUS_PATH"):
        return os.path.join(os.environ["NAUTILUS_PATH"], "catalog")
    return str(DEFAULT_CATALOG)


def open_store(location: str | os.PathLike[str] | None = None) -> LocalStore | S3Store:
    """The store for a catalog location (``resolve_location``): a directory or an S3 prefix."""
    text = resolve_location(location)
    if text.startswith("s3://"):
        from ntrader.catalog.s3store import S3Store

        return S3Store(text)
    if "://" in text and not text.startswith("file://"):
        raise InputError(
            f"catalog location {text!r} is not supported",
            hint="use a local directory or an S3 URL (s3://bucket/prefix; S3-compatible servers "
            "via AWS_ENDPOINT_URL)",
        )
    return LocalStore(Path(text.removeprefix("file://")).expanduser().absolute())


class LocalStore:
    """A catalog directory on local disk: fsync'd writes, atomic renames, a lock file."""

    local = True

    def __init__(self, root: Path) -> None:
        check_local_root(root)
        self.root: PurePath = root
        self.url = str(root)
        self.inside = LocalFence(root).inside

    def list_names(self, directory: PurePath) -> list[str]:
        try:
            return os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_sized(self, directory: PurePath) -> dict[str, int | None]:
        """Entry name -> size (None here: a local stat is cheap, done only when needed).

        From ONE generation of the directory: a commit swaps in a new directory and empties the
        old one, so a listing races that only if the directory changed identity meanwhile."""
        for _ in range(100):
            before = _dir_identity(directory)
            names = self.list_names(directory)
            if _dir_identity(directory) == before:
                return dict.fromkeys(names)
        return dict.fromkeys(names)  # 100 commits during one listing: the last one is as good

    def list_times(self, directory: PurePath) -> dict[str, float]:
        """Entry name -> when it last changed (seconds; max of mtime and ctime)."""
        out: dict[str, float] = {}
        with (
            contextlib.suppress(FileNotFoundError, NotADirectoryError),
            os.scandir(directory) as it,
        ):
            for e in it:
                with contextlib.suppress(FileNotFoundError):
                    st = e.stat()
                    out[e.name] = max(st.st_mtime, st.st_ctime)
        return out

    def identity(self, path: PurePath) -> tuple[Any, ...]:
        """(regular file?, size, …) from a fresh stat: equal only if the file did not change."""
        st = os.stat(path)
        return (stat.S_ISREG(st.st_mode), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

    def list_tree(self, directory: PurePath) -> dict[str, dict[str, int | None]]:
        """Sub-directory name -> its entries (name -> size) for every sub-directory."""
        return {d: self.list_sized(directory / d) for d in self.list_dirs(directory)}

    def read_footers(self, files: list[Any]) -> list[pq.FileMetaData | Exception]:
        """Parquet metadata of each ``DataFile`` (an exception in place of an unreadable one)."""
        out: list[pq.FileMetaData | Exception] = []
        for f in files:
            try:
                out.append(self.read_metadata(f.path))
            except (pa.ArrowException, OSError) as exc:
                out.append(exc)
        return out

    def list_dirs(self, directory: PurePath) -> list[str]:
        try:
            return [e.name for e in os.scandir(directory) if e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def exists(self, path: PurePath) -> bool:
        return os.path.exists(path)

    def size(self, path: PurePath) -> int:
        return os.stat(path).st_size

    def read_table(self, path: PurePath, columns: list[str] | None = None) -> pa.Table:
        with pa.OSFile(str(path)) as fh:  # one file, never a directory read as a dataset
            return pq.read_table(fh, columns=columns)

    def read_metadata(self, path: PurePath) -> pq.FileMetaData:
        with pa.OSFile(str(path)) as fh:
            return pq.read_metadata(fh)

    def write_table(self, path: PurePath, table: pa.Table, **options: object) -> int:
        return write_table_durably(table, self.inside(path), **options)

    def remove(self, path: PurePath) -> None:
        self.inside(path).unlink(missing_ok=True)

    def rename(self, src: PurePath, dst: PurePath) -> None:
        self.inside(src)
        self.inside(dst).parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)

    def move_tree_entry(self, src: PurePath, dst: PurePath) -> None:
        self.inside(src)
        self.inside(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))

    def read_text(self, path: PurePath) -> str | None:
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            return None

    def write_text(self, path: PurePath, text: str, durable: bool = True) -> None:
        """Atomically (temp + rename); ``durable``: fsync'd too."""
        p = self.inside(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
        with open(tmp, "w") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, p)
        if durable:
            fsync_dir(p.parent)

    def temp_path(self, final: PurePath) -> PurePath:
        return temp_path_in(self.root, final)

    def lock(self, name: str) -> LocalLock:
        path = self.root / ".ntrader" / f"{name}.lock"
        return LocalLock(path, f"catalog {self.url}", inside=self.inside)

    def nautilus(self) -> ParquetDataCatalog:
        from nautilus_trader.persistence.catalog import ParquetDataCatalog  # only when asked

        return ParquetDataCatalog(str(self.root))


def _dir_identity(directory: PurePath) -> tuple[int, int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
