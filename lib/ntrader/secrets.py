"""Keep secrets out of everything ntrader writes: console, logs, summary.json, .hydra/ files.

A password inside a URL (``postgresql://user:PASSWORD@host/db``) and ``password=…`` key-value
pairs (libpq style) are replaced by ``***``.
"""

from __future__ import annotations

import re
from pathlib import Path

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'\"]+:)[^@\s'\"]+(?=@)")
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)", re.I)


def redact(text: str) -> str:
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    return _KV_PASSWORD.sub(r"\g<head>***", text)


def scrub_files(folder: Path, pattern: str = "*.yaml") -> None:
    """Redact secrets in place in the files of ``folder`` matching ``pattern``."""
    if not folder.exists():
        return
    for path in folder.glob(pattern):
        text = path.read_text()
        clean = redact(text)
        if clean != text:
            path.write_text(clean)
