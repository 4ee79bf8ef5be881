"""The catalog's maintenance actions ``scripts/scan.py`` runs for ``make compact``, ``make log``,
``make gc`` and ``make scan ARGS=repair=true``: one call each, its console text, its
``summary.json`` part and its counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ntrader.catalog import commitlog, corruption

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog

ACTIONS = ("compact", "log", "repair", "gc")  # config keys of conf/scan.yaml, true = that action


@dataclass
class Maintained:
    action: str
    text: str
    summary: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)


def maintain(catalog: Catalog, action: str, bar_type: str | None, fmt: str) -> Maintained:
    """Run one of ``ACTIONS`` on ``bar_type`` (all bar types when None; ``log`` needs one)."""
    named = [bar_type] if bar_type else None
    if action == "compact":
        done = catalog.compact(named)
        return Maintained(action, done.render(), {"compaction": done.as_dict()}, done.counts())
    if action == "log":
        history = commitlog.history(catalog, bar_type)
        return Maintained(action, commitlog.render_history(history, fmt), history)
    if action == "repair":
        moved = catalog.quarantine_corrupt(named)
        text = corruption.render_quarantined(moved, catalog.url)
        summary = {"quarantined": [m.as_dict() for m in moved]}
        return Maintained(action, text, summary, {"quarantined": len(moved)})
    if action == "gc":
        pruned = catalog.gc()
        counts = {"files_deleted": pruned.files, "bytes_deleted": pruned.bytes}
        return Maintained(action, pruned.render(catalog.url), {"gc": pruned.as_dict()}, counts)
    raise ValueError(f"unknown maintenance action {action!r}")
