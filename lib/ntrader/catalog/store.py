"""Where a catalog's files live: a local directory or an S3 prefix (``s3://bucket/catalog``).

``Catalog`` talks to its files only through a store, so the same code reads and writes both. Paths
are ``PurePath``s: a local ``Path``, or ``PurePosixPath("bucket/catalog/…")`` on S3 (the form
s3fs and NautilusTrader's catalog take).

S3 settings come from the standard AWS sources only — ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``~/.aws/credentials`` and ``config`` profiles
(``AWS_PROFILE``), ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` for an S3-compatible server (MinIO, Ceph, R2, moto). They are handed to the
clients in memory and never written anywhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog.files import TMP_SUFFIX, fsync_dir, temp_path_in, write_table_durably
from ntrader.catalog.lock import LeaseLock, LocalLock
from ntrader.errors import ConnectionFailure, InputError, SystemFailure

DEFAULT_CATALOG = Path("data/catalog")
FOOTER_GUESS = 64 * 1024  # bytes read from a file's end to get its Parquet footer in one request


def resolve_location(explicit: str | os.PathLike[str] | None = None) -> str:
    """``CATALOG`` (explicit) > ``$NAUTILUS_PATH/catalog`` > ``data/catalog``, as text."""
    if explicit:
        return str(explicit)
    if os.environ.get("NAUTILUS_PATH"):
        return os.path.join(os.environ["NAUTILUS_PATH"], "catalog")
    return str(DEFAULT_CATALOG)


def open_store(location: str | os.PathLike[str] | None = None) -> LocalStore | S3Store:
    text = resolve_location(location)
    if text.startswith("s3://"):
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
        self.root: PurePath = root
        self.url = str(root)

    def list_names(self, directory: PurePath) -> list[str]:
        try:
            return os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_sized(self, directory: PurePath) -> dict[str, int | None]:
        """Entry name -> size (None here: a local stat is cheap, done only when needed)."""
        return dict.fromkeys(self.list_names(directory))

    def list_tree(self, directory: PurePath) -> dict[str, dict[str, int | None]]:
        """Sub-directory name -> its entries (name -> size) for every sub-directory."""
        return {d: self.list_sized(directory / d) for d in self.list_dirs(directory)}

    def read_footers(self, files: list[Any]) -> list[pq.FileMetaData | Exception]:
        """Parquet metadata of each ``DataFile`` (an exception in place of an unreadable one)."""
        out: list[pq.FileMetaData | Exception] = []
        for f in files:
            try:
                out.append(pq.read_metadata(f.path))
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
        return pq.read_table(path, columns=columns)

    def read_metadata(self, path: PurePath) -> pq.FileMetaData:
        return pq.read_metadata(path)

    def write_table(self, path: PurePath, table: pa.Table, **options: object) -> int:
        return write_table_durably(table, Path(path), **options)

    def remove(self, path: PurePath) -> None:
        Path(path).unlink(missing_ok=True)

    def rename(self, src: PurePath, dst: PurePath) -> None:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)

    def move_tree_entry(self, src: PurePath, dst: PurePath) -> None:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))

    def read_text(self, path: PurePath) -> str | None:
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            return None

    def write_text(self, path: PurePath, text: str) -> None:
        """Atomically (temp + fsync + rename)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        fsync_dir(p.parent)

    def temp_path(self, final: PurePath) -> PurePath:
        return temp_path_in(self.root, final)

    def lock(self, name: str) -> LocalLock:
        return LocalLock(self.root / ".ntrader" / f"{name}.lock", f"catalog {self.url}")

    def nautilus(self) -> ParquetDataCatalog:
        return ParquetDataCatalog(str(self.root))


class S3Store:
    """A catalog under an S3 prefix, through s3fs (Python) and object_store (Nautilus' Rust)."""

    local = False

    def __init__(self, url: str) -> None:
        import s3fs

        rest = url.removeprefix("s3://").strip("/")
        if not rest or "@" in rest.split("/")[0]:
            raise InputError(
                f"catalog location {url!r} is not s3://bucket[/prefix]",
                hint="credentials never go in the URL: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            )
        self.root = PurePosixPath(rest)
        self.url = f"s3://{rest}"
        self.options = s3_options()
        self.fs = s3fs.S3FileSystem(
            **self.options["python"], use_listings_cache=False, skip_instance_cache=True
        )
        try:
            self.fs.ls(rest.split("/")[0], refresh=True)
        except FileNotFoundError as exc:
            raise InputError(
                f"bucket of {self.url} does not exist", hint="create it first (aws s3 mb …)"
            ) from exc
        except (OSError, Exception) as exc:
            endpoint = self.options["python"]["client_kwargs"].get("endpoint_url") or "AWS"
            raise ConnectionFailure(
                f"cannot reach the object store for {self.url} at {endpoint}: "
                f"{type(exc).__name__}: {exc}",
                hint="check AWS_ENDPOINT_URL, network and the AWS credentials "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
            ) from exc

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except FileNotFoundError:
            raise
        except PermissionError as exc:
            raise SystemFailure(f"{what} on {self.url}: access denied ({exc})") from exc
        except OSError as exc:
            raise ConnectionFailure(
                f"{what} on {self.url} failed: {exc}", hint="check the object store; rerun"
            ) from exc

    def list_names(self, directory: PurePath) -> list[str]:
        try:
            entries = self.fs.ls(str(directory), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def list_sized(self, directory: PurePath) -> dict[str, int | None]:
        try:
            entries = self.fs.ls(str(directory), detail=True, refresh=True)
        except FileNotFoundError:
            return {}
        return {
            e["name"].rsplit("/", 1)[-1]: int(e["size"]) for e in entries if e["type"] == "file"
        }

    def list_tree(self, directory: PurePath) -> dict[str, dict[str, int | None]]:
        """One paginated recursive LIST (1,000 keys a page) instead of one LIST per bar type."""
        try:
            found = self.fs.find(str(directory), detail=True, withdirs=False)
        except FileNotFoundError:
            return {}
        base = str(directory).rstrip("/") + "/"
        tree: dict[str, dict[str, int | None]] = {}
        for key, info in found.items():
            sub, _, name = key.removeprefix(base).partition("/")
            if name and "/" not in name:
                tree.setdefault(sub, {})[name] = int(info["size"])
        return tree

    def read_footers(self, files: list[Any]) -> list[pq.FileMetaData | Exception]:
        """One ranged GET per file (its last 64 KiB) for all files at once, parsed locally."""
        tails = [min(f.size or FOOTER_GUESS, FOOTER_GUESS) for f in files]
        sizes = [f.size if f.size is not None else self.size(f.path) for f in files]
        paths = [str(f.path) for f in files]
        got = self.fs.cat_ranges(
            paths, [n - t for n, t in zip(sizes, tails, strict=True)], sizes, on_error="return"
        )
        out: list[pq.FileMetaData | Exception] = []
        for path, size, data in zip(paths, sizes, got, strict=True):
            try:
                if isinstance(data, Exception):
                    raise data
                footer = int.from_bytes(data[-8:-4], "little") + 8 if len(data) >= 8 else size
                if footer > len(data):  # a footer larger than the guess: read exactly it
                    data = self.fs.cat_file(path, start=max(size - footer, 0), end=size)
                out.append(pq.read_metadata(pa.BufferReader(data)))
            except (pa.ArrowException, OSError) as exc:
                out.append(exc)
        return out

    def list_dirs(self, directory: PurePath) -> list[str]:
        try:
            entries = self.fs.ls(str(directory), detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return [
            e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory"
        ]

    def exists(self, path: PurePath) -> bool:
        try:
            self.fs.info(str(path), refresh=True)
            return True
        except FileNotFoundError:
            return False

    def size(self, path: PurePath) -> int:
        return int(self.fs.info(str(path), refresh=True)["size"])

    def read_table(self, path: PurePath, columns: list[str] | None = None) -> pa.Table:
        with self.fs.open(str(path), "rb") as fh:
            return pq.read_table(fh, columns=columns)

    def read_metadata(self, path: PurePath) -> pq.FileMetaData:
        with self.fs.open(str(path), "rb") as fh:
            return pq.read_metadata(fh)

    def write_table(self, path: PurePath, table: pa.Table, **options: object) -> int:
        """One PUT: the object appears whole or not at all."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **options)
        data = sink.getvalue().to_pybytes()
        self._call(f"writing {path}", lambda: self.fs.pipe_file(str(path), data))
        return len(data)

    def remove(self, path: PurePath) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call(f"removing {path}", lambda: self.fs.rm_file(str(path)))

    def rename(self, src: PurePath, dst: PurePath) -> None:
        """Server-side copy, then delete (S3 has no rename; callers journal it)."""
        self._call(f"copying {src}", lambda: self.fs.copy(str(src), str(dst)))
        self.remove(src)

    move_tree_entry = rename

    def read_text(self, path: PurePath) -> str | None:
        try:
            return str(self.fs.cat_file(str(path)).decode())
        except FileNotFoundError:
            return None

    def write_text(self, path: PurePath, text: str) -> None:
        self._call(f"writing {path}", lambda: self.fs.pipe_file(str(path), text.encode()))

    def temp_path(self, final: PurePath) -> PurePath:
        return temp_path_in(self.root, final)

    def lock(self, name: str) -> LeaseLock:
        return LeaseLock(self.fs, self.root / ".ntrader" / f"{name}.lock", f"catalog {self.url}")

    def nautilus(self) -> ParquetDataCatalog:
        return ParquetDataCatalog(
            str(self.root),
            fs_protocol="s3",
            fs_storage_options=self.options["python"],
            fs_rust_storage_options=self.options["rust"],
        )


def s3_options() -> dict[str, dict[str, Any]]:
    """s3fs and object_store options from the standard AWS environment / config files."""
    import botocore.session

    session = botocore.session.Session(profile=os.environ.get("AWS_PROFILE") or None)
    creds = session.get_credentials()
    frozen = creds.get_frozen_credentials() if creds else None
    region = (
        os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or session.get_config_variable("region")
        or "us-east-1"
    )
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    client_kwargs: dict[str, Any] = {"region_name": region}
    rust: dict[str, str] = {"region": region}
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
        rust["endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            rust["allow_http"] = "true"
    python: dict[str, Any] = {"client_kwargs": client_kwargs}
    if frozen is not None:
        python.update(key=frozen.access_key, secret=frozen.secret_key)
        rust.update(access_key_id=frozen.access_key, secret_access_key=frozen.secret_key)
        if frozen.token:
            python["token"] = frozen.token
            rust["session_token"] = frozen.token
    return {"python": python, "rust": rust}
