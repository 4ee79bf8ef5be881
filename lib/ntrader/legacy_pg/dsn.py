"""PostgreSQL DSNs, kept secret: normalisation, parsing, redaction and scrubbing of any text.

The DSN password never leaves this module: ``redact_dsn`` shows
``postgresql://user:***@host:port/db``, ``Scrubber`` removes the password from any text (driver
errors included) and ``scrub_hydra_files`` from a run folder's ``.hydra/*.yaml``.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from loguru import logger
from psycopg.conninfo import conninfo_to_dict

from ntrader.errors import InputError


def parse_dsn(dsn: str) -> dict[str, Any]:
    """libpq's key/value view of the DSN; ``InputError`` (no secret shown) when it is malformed."""
    try:
        return conninfo_to_dict(normalize_dsn(dsn))
    except psycopg.ProgrammingError as exc:
        raise InputError(
            "the DSN is not a valid PostgreSQL connection string",
            hint="use DATABASE_URL=postgresql://user:password@host:5432/database",
        ) from exc


def normalize_dsn(dsn: str) -> str:
    """SQLAlchemy-style ``postgresql+psycopg://`` -> ``postgresql://`` (libpq's form)."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", dsn.strip())


def redact_dsn(dsn: str | None) -> str:
    """``postgresql://user:***@host:port/db`` — never the password."""
    if not dsn:
        return "(no DSN)"
    try:
        d = conninfo_to_dict(normalize_dsn(dsn))
    except Exception:
        return "postgresql://(unparseable DSN, hidden)"
    user = d.get("user") or ""
    auth = f"{user}:***@" if d.get("password") else (f"{user}@" if user else "")
    host = str(d.get("host") or "")
    port = f":{d['port']}" if d.get("port") else ""
    db = d.get("dbname") or ""
    if host.startswith("/") or "," in host:
        return f"postgresql://{auth}/{db}?host={host}{port and '&port=' + port[1:]}"
    return f"postgresql://{auth}{host}{port}/{db}"


def target_of(dsn: str) -> str:
    """host:port/database for error messages (no user, no password)."""
    d = parse_dsn(dsn)
    host = d.get("host") or os.environ.get("PGHOST") or "localhost (default socket)"
    return f"host {host}, port {d.get('port') or 5432}, database {d.get('dbname') or '(default)'}"


class Scrubber:
    """Removes the DSN and its password (plain and URL-quoted) from any text."""

    def __init__(self, dsn: str | None) -> None:
        self.secrets: list[str] = []
        if dsn:
            self.secrets.append(dsn.strip())
            with contextlib.suppress(Exception):
                pw = conninfo_to_dict(normalize_dsn(dsn)).get("password")
                if pw:
                    self.secrets += sorted({str(pw), quote(str(pw), safe="")}, key=len)[::-1]
        self.redacted = redact_dsn(dsn)

    def __call__(self, text: object) -> str:
        out = str(text)
        for i, s in enumerate(self.secrets):
            if i == 0:  # the whole DSN
                out = out.replace(s, self.redacted)
            else:  # the password as a token of its own: a password "p" must not eat every 'p'
                out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])", "***", out)
        return out


def scrub_hydra_files(run_dir: Path, dsn: str | None) -> None:
    """A DSN given as a Hydra override (not via DATABASE_URL) would sit in ``run_dir/.hydra/``:
    redact it there (a warning says so)."""
    scrub = Scrubber(dsn)
    for f in (Path(run_dir) / ".hydra").glob("*.yaml"):
        text = f.read_text()
        clean = scrub(text)
        if clean != text:
            f.write_text(clean)
            logger.warning(f"redacted the DSN password in {f.name}; pass it as DATABASE_URL")
