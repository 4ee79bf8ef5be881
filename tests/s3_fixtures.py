"""A real S3-protocol server for tests: moto in server mode, in its own process.

(Its own process, not moto's in-process thread: NautilusTrader's Rust reader holds the GIL while it
waits for HTTP, so a server thread in the same interpreter could never answer it.)

Usage in a test module::

    from .s3_fixtures import s3_server  # noqa: F401  (the fixture is named `s3`)

``s3`` is session-scoped (one server per pytest worker, on a free loopback port) and yields an
``S3Server``: ``s3.endpoint``, ``s3.env`` (the standard AWS variables a script needs: dummy
credentials, region and ``AWS_ENDPOINT_URL``), ``s3.fresh_bucket()`` and ``s3.fs()`` (an s3fs
filesystem on the server). Clients talk HTTP to it exactly as to AWS; nothing is patched.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "AKIANTRADERTESTKEY01"
SECRET_KEY = "ntrader-test-secret-Zx81qLmN0pQrStUv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._n = itertools.count(1)
        self.env = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            skip_instance_cache=True,
            use_listings_cache=False,  # tests look again after every change
        )

    def nautilus_options(self) -> dict[str, Any]:
        """Keyword arguments for a plain ``ParquetDataCatalog`` on this server."""
        return {
            "fs_protocol": "s3",
            "fs_storage_options": {
                "key": ACCESS_KEY,
                "secret": SECRET_KEY,
                "client_kwargs": {"endpoint_url": self.endpoint},
            },
            "fs_rust_storage_options": {
                "endpoint_url": self.endpoint,
                "allow_http": "true",
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "region": "us-east-1",
            },
        }

    def fresh_bucket(self) -> str:
        import boto3

        name = f"ntrader-{os.getpid()}-{next(self._n)}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)
        return name


def start_server(log: Any) -> tuple[subprocess.Popen[bytes], S3Server]:
    """``python -m moto.server`` on a free loopback port; returns once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    return proc, S3Server(f"http://127.0.0.1:{port}")


@contextlib.contextmanager
def running_server(log_path: Path) -> Iterator[S3Server]:
    """A moto server for the block, its AWS variables in ``os.environ`` (so in-process code and
    child processes find it); both undone afterwards."""
    with open(log_path, "wb") as log:
        server, srv = start_server(log)
        saved = {k: os.environ.get(k) for k in srv.env}
        os.environ.update(srv.env)
        try:
            yield srv
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_server(tmp_path_factory.mktemp("moto") / "server.log") as srv:
        yield srv
