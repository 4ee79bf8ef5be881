"""A catalog under an S3 prefix (``s3://bucket/catalog``): the object-storage ``Store``.

Reads and writes go through s3fs (Python) and object_store (NautilusTrader's Rust reader), with the
same interface as ``LocalStore``. Object keys are checked to stay under the prefix before any
write. S3 settings come from the standard AWS sources only — ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``~/.aws/credentials`` and ``config`` profiles
(``AWS_PROFILE``), ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` for an S3-compatible server (MinIO, Ceph, R2, moto). They are handed to the
clients in memory and never written anywhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ntrader.catalog.files import temp_path_in
from ntrader.catalog.guard import KeyFence, not_writable
from ntrader.catalog.lock import LeaseLock
from ntrader.errors import ConnectionFailure, InputError

if TYPE_CHECKING:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

FOOTER_GUESS = 64 * 1024  # bytes read from a file's end to get its Parquet footer in one request


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
        self.inside = KeyFence(self.root).inside
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
            raise not_writable(self.url, exc) from exc
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
        files = [f if f.size is not None else _sized(self, f) for f in files]
        tails = [min(f.size or FOOTER_GUESS, FOOTER_GUESS) for f in files]
        sizes = [f.size or 0 for f in files]
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

    def list_times(self, directory: PurePath) -> dict[str, float]:
        """Object name -> its LastModified (seconds): when it was written or copied here."""
        try:
            entries = self.fs.ls(str(directory), detail=True, refresh=True)
        except FileNotFoundError:
            return {}
        return {
            e["name"].rsplit("/", 1)[-1]: e["LastModified"].timestamp()
            for e in entries
            if e["type"] == "file" and e.get("LastModified") is not None
        }

    def identity(self, path: PurePath) -> tuple[Any, ...]:
        info = self.fs.info(str(path), refresh=True)
        return (info["type"] == "file", int(info["size"]), info.get("ETag"))

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
        self.inside(path)
        self._call(f"writing {path}", lambda: self.fs.pipe_file(str(path), data))
        return len(data)

    def remove(self, path: PurePath) -> None:
        self.inside(path)
        with contextlib.suppress(FileNotFoundError):
            self._call(f"removing {path}", lambda: self.fs.rm_file(str(path)))

    def rename(self, src: PurePath, dst: PurePath) -> None:
        """Server-side copy, then delete (S3 has no rename; callers journal it)."""
        self.inside(src)
        self.inside(dst)
        self._call(f"copying {src}", lambda: self.fs.copy(str(src), str(dst)))
        self.remove(src)

    move_tree_entry = rename

    def read_text(self, path: PurePath) -> str | None:
        try:
            return str(self.fs.cat_file(str(path)).decode())
        except FileNotFoundError:
            return None

    def write_text(self, path: PurePath, text: str, durable: bool = True) -> None:
        self.inside(path)
        self._call(f"writing {path}", lambda: self.fs.pipe_file(str(path), text.encode()))

    def temp_path(self, final: PurePath) -> PurePath:
        return temp_path_in(self.root, final)

    def lock(self, name: str) -> LeaseLock:
        path = self.inside(self.root / ".ntrader" / f"{name}.lock")
        return LeaseLock(self.fs, path, f"catalog {self.url}")

    def nautilus(self) -> ParquetDataCatalog:
        from nautilus_trader.persistence.catalog import ParquetDataCatalog  # only when asked

        return ParquetDataCatalog(
            str(self.root),
            fs_protocol="s3",
            fs_storage_options=self.options["python"],
            fs_rust_storage_options=self.options["rust"],
        )


def _sized(store: S3Store, f: Any) -> Any:
    """``f`` with its size from a HEAD request (0 when it is gone: its read then fails)."""
    try:
        return replace(f, size=store.size(f.path))
    except FileNotFoundError:
        return replace(f, size=0)


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
