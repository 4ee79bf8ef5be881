"""``make clean-runs [DAYS=30] [RUNS=dir|s3://bucket/prefix]``: delete run folders that started
more than DAYS days ago, under the runs root ``RUNS`` names (else ``NTRADER_RUNS``, else ``runs``).

A run folder is ``<root>/<script>/<stamp>[_tag]`` or, for a sweep, ``<root>/<script>/multirun/
<stamp>[_tag]``; its age is the start time its name states (local time, as Hydra names it), so it
is the same on a local disk and on object storage (which has no folder times). Anything else under
the root — another tool's files, ``latest.json`` — is never touched. Prints each folder deleted
and a count; exit 2 for a DAYS that is not a whole number.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Iterator

from ntrader.errors import InputError, exit_code_for
from ntrader.runs import store

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)(_.*)?$")


def _started(name: str) -> dt.datetime | None:
    m = STAMP.match(name)
    if not m:
        return None
    try:
        return dt.datetime.strptime(m.group(1), "%Y-%m-%d_%H-%M-%S")
    except ValueError:
        return None


def run_folders(root: str) -> Iterator[tuple[str, dt.datetime]]:
    """Every run folder under ``root`` (local path or URL) with the start time its name says."""
    fs, base = store.filesystem(root)
    if not fs.exists(base):
        return
    for script in fs.ls(base, detail=True):
        if script["type"] != "directory":
            continue
        for entry in fs.ls(script["name"], detail=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if entry["type"] != "directory":
                continue
            if name == "multirun":
                for sweep in fs.ls(entry["name"], detail=True):
                    when = _started(sweep["name"].rstrip("/").rsplit("/", 1)[-1])
                    if sweep["type"] == "directory" and when:
                        yield sweep["name"], when
            elif (when := _started(name)) is not None:
                yield entry["name"], when


def clean_runs(root: str, days: int, now: dt.datetime | None = None) -> list[str]:
    """Delete the run folders under ``root`` that started more than ``days`` days ago."""
    cutoff = (now or dt.datetime.now()) - dt.timedelta(days=days)
    fs, _ = store.filesystem(root)
    gone = []
    for path, when in sorted(run_folders(root)):
        if when < cutoff:
            fs.rm(path, recursive=True)
            gone.append(path)
    return gone


def parse_days(text: str | None) -> int:
    value = (text or "30").strip()
    if not value.isdigit():
        raise InputError(
            f"DAYS={value!r} is not a whole number of days", hint="make clean-runs DAYS=7"
        )
    return int(value)


def main() -> int:
    """``make clean-runs``: DAYS and RUNS from the make variables."""
    try:
        days = parse_days(os.environ.get("NTRADER_MAKE_DAYS"))
        root = os.environ.get("NTRADER_MAKE_RUNS") or store.runs_setting()
        gone = clean_runs(root, days)
    except (InputError, OSError) as exc:
        hint = getattr(exc, "hint", None)
        print(f"clean-runs: {exc}" + (f" ({hint})" if hint else ""), file=sys.stderr)
        return exit_code_for(exc)
    for path in gone:
        print(path)
    print(f"deleted {len(gone)} run folder(s) started more than {days} day(s) ago under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
