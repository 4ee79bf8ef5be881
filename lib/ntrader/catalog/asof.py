"""Reads as of a catalog version (``catalog.as_of=N``): a bar type's files as they were right
after commit ``N`` of the commit log (``commitlog``).

The file set of version ``N`` is today's set with every later commit of the bar type undone,
newest first: the names it added leave, the names it removed (or quarantined) come back. A name
that came back is read from the retained history (``history``), where commits keep the files they
remove for ``catalog.retain_days``; a name gone from there too (pruned by ``make gc`` or a writer
after the retention, or quarantined as corrupt) makes the version unreadable, said as such —
never a silent read of other data. Undoing from today's set also covers files older than the
commit log: they are live, or were removed by a logged commit.

The result is the same ``DataFile`` list a current read gets, so every reader (``read``,
``read_bars``, the streamed backtest, ``make scan``/``check``, footers, timestamps) reads the old
version through the same code. An as-of catalog is read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ntrader.catalog.files import DataFile, list_data_files
from ntrader.errors import IncompleteRun, InputError

if TYPE_CHECKING:
    from ntrader.catalog.history import History


class VersionPruned(IncompleteRun):
    """A catalog version that cannot be read any more: files it needs are gone (exit 1)."""


def check_version(value: Any, head: int) -> int:
    """``catalog.as_of`` as a version number of this catalog (``InputError`` otherwise)."""
    try:
        version = int(str(value).strip().removeprefix("v"))
    except ValueError:
        version = -1
    if version < 0 or str(value).strip() == "":
        raise InputError(
            f"catalog.as_of={value!r} is not a catalog version",
            hint="a number from `make log SYMBOL=…` (the version column): catalog.as_of=12",
        )
    if version > head:
        raise InputError(
            f"catalog.as_of={version}: this catalog's latest version is {head}",
            hint="`make log SYMBOL=…` lists the versions of a bar type",
        )
    return version


def files_as_of(
    history: History, bt: str, live: list[DataFile], version: int, retain_days: float
) -> list[DataFile]:
    """``bt``'s files as of catalog ``version``, given today's ``live`` files."""
    log = history.log
    later = [v for v in log.versions(bt) if v > version]
    if not later:
        return live
    by_name = {f.path.name: f for f in live}
    names = set(by_name)
    undone = []
    for v in reversed(later):
        entry = log.entry(bt, v)
        if entry is None:
            continue
        undone.append(v)
        names -= set(entry["added"])
        names |= set(entry["removed"]) | set(entry.get("quarantined", []))
    back = sorted(n for n in names if n not in by_name)
    retained = history.sizes(bt) if back else {}
    missing = [n for n in back if n not in retained]
    if missing:
        raise VersionPruned(
            f"{bt} as of catalog version {version}: {len(missing)} of its files are gone "
            f"(e.g. {missing[0]}): pruned after catalog.retain_days={retain_days:g}, or "
            "quarantined as corrupt",
            hint="that version cannot be read any more; `make log SYMBOL=…` lists the commits "
            f"since (v{min(undone)}…v{max(undone)})",
        )
    out = [by_name[n] for n in names if n in by_name]
    out += list_data_files(history.dir(bt), {n: retained[n] for n in back})
    out.sort(key=lambda f: (f.first_ns, f.last_ns))
    return out
