"""Where run folders live: a local directory, or object storage (``NTRADER_RUNS=s3://bucket/runs``).

Hydra writes run folders on the local filesystem. When the runs root is a URL, Hydra is pointed at
a local *staging* folder that mirrors the URL,
``<tmp>/ntrader-staging/<scheme>/<bucket>/<prefix>/…`` (``<tmp>`` = ``NTRADER_STAGING``, else the
system temp dir), and the task wrapper uploads each
finished run folder to the same path in the store, then deletes the local copy. The store URL is
encoded in the staging path itself, so a Ray worker on another machine needs no ntrader setting to
know where its folder goes — only access to the store. Access comes from the standard AWS
variables / config (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``, ``~/.aws``, an instance role), read by s3fs/botocore; ntrader never copies
them anywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

MARKER = "ntrader-staging"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.+)$")


def runs_setting() -> str:
    """The configured runs root: ``NTRADER_RUNS`` (a directory or a URL), default ``runs``."""
    return os.environ.get("NTRADER_RUNS") or "runs"


def is_url(root: str) -> bool:
    """``s3://…``, ``gs://…`` … — anything but a plain path or ``file://``."""
    m = _SCHEME.match(root)
    return m is not None and m.group(1).lower() != "file"


def staging_base() -> Path:
    return Path(os.environ.get("NTRADER_STAGING") or tempfile.gettempdir()).absolute() / MARKER


def local_root(root: str | None = None) -> str:
    """The local directory Hydra writes run folders into (the staging mirror for a URL)."""
    root = root or runs_setting()
    m = _SCHEME.match(root)
    if not m or not is_url(root):
        return root.removeprefix("file://")
    scheme, rest = m.group(1).lower(), m.group(2).strip("/")
    if not rest or ".." in rest.split("/"):
        raise ValueError(f"runs root {root!r} needs a bucket (e.g. s3://bucket/runs)")
    return str(staging_base().joinpath(scheme, *rest.split("/")))


def store_url(local: str | Path) -> str | None:
    """The store URL a staged local folder belongs to; ``None`` for an ordinary local folder."""
    parts = Path(local).absolute().parts
    if MARKER not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index(MARKER)
    rest = parts[i + 1 :]
    if len(rest) < 2:
        return None
    return f"{rest[0]}://{'/'.join(rest[1:])}"


def location(local: str | Path) -> str:
    """Where a run folder ends up: its store URL, else the local path."""
    return store_url(local) or str(local)


def filesystem(where: str) -> tuple[Any, str]:
    """An fsspec filesystem and path for a URL or a local path (credentials from the env)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(where)
    return fs, path


def exists(where: str) -> bool:
    fs, path = filesystem(where)
    fs.invalidate_cache(path)
    return bool(fs.exists(path))


def upload(local_dir: Path, url: str, *, top_level_only: bool = False) -> int:
    """Copy every file under ``local_dir`` (dot folders like ``.hydra/`` included) to ``url``."""
    files = sorted(
        p for p in (local_dir.iterdir() if top_level_only else local_dir.rglob("*")) if p.is_file()
    )
    if not files:
        return 0
    fs, path = filesystem(url)
    targets = [f"{path}/{p.relative_to(local_dir).as_posix()}" for p in files]
    fs.put([str(p) for p in files], targets)
    fs.invalidate_cache(path)
    return len(files)


def publish(local_dir: Path) -> str | None:
    """Upload a finished staged run folder to its store URL, then delete the local copy.

    Returns the URL (``None`` for an ordinary local folder). Raises if the upload fails; the local
    copy is then kept.
    """
    url = store_url(local_dir)
    if url is None:
        return None
    upload(local_dir, url)
    # Empty parent folders stay: a sibling job may be creating its folder next to this one.
    shutil.rmtree(local_dir, ignore_errors=True)
    return url


class Folder:
    """A folder read and written through fsspec: a local path or a URL (``s3://…``)."""

    def __init__(self, where: str | Path) -> None:
        self.where = str(where).rstrip("/")
        self.fs, self.path = filesystem(self.where)
        self.name = self.path.rstrip("/").rsplit("/", 1)[-1]

    def child(self, name: str) -> Folder:
        return Folder(f"{self.where}/{name}")

    def read_text(self, name: str) -> str | None:
        try:
            return bytes(self.fs.cat_file(f"{self.path}/{name}")).decode()
        except FileNotFoundError:
            return None

    def write_text(self, name: str, text: str) -> str:
        self.fs.pipe_file(f"{self.path}/{name}", text.encode())
        return f"{self.where}/{name}"

    def job_folders(self) -> list[Folder]:
        """The numbered job folders, in job order."""
        self.fs.invalidate_cache(self.path)
        try:
            entries = self.fs.ls(self.path, detail=True)
        except FileNotFoundError:
            return []
        names = [
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e.get("type") == "directory"
        ]
        return [self.child(n) for n in sorted((n for n in names if n.isdigit()), key=int)]
