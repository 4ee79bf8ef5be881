"""Render lists of records as an aligned text table, CSV or JSON (the FORMAT= of every report);
write a JSON report file atomically with its secrets redacted."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ntrader.errors import InputError
from ntrader.secrets import redact

FORMATS = ("table", "json", "csv")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"FORMAT= one of {', '.join(FORMATS)}")
    return fmt


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(r.get(c), int | float) for r in rows if r.get(c) is not None)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")


def json_text(payload: Any) -> str:
    return json.dumps(payload, indent=2, default=str)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON, secrets redacted, replacing ``path`` in one rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(redact(json.dumps(payload, indent=2, default=str)) + "\n")
    os.replace(tmp, path)
