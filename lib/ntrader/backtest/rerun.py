"""Verified reruns (``make rerun RUN=…``): did the rerun read the same data and give the same
numbers as the original run?

The original run folder's ``manifest.json`` lists, per bar type, the files it read with their
content hashes; the rerun's own manifest lists what it read now. Same files → the results
(``summary.json`` ``result``, ``counts``, ``range``, ``adjustment``) are compared field by field:
"reproduced: identical", or each differing field with both values (exit 1).

When a bar type the original read was committed since (a merge import, a refetch, a split
repair), :func:`prepare_rerun` first says what changed — per bar type the commits (version, time,
run) and the bars changed, added and removed per session in the range read — and the rerun reads
the catalog as of the original's version (``catalog.as_of``, from the retained history): its
verdict is then about the same data, with the changes reported beside it. When retention pruned
files that version needs, the rerun reads today's catalog and, if its files differ, refuses:
"the data changed since the original run: NOT a reproduction" (exit 1, nothing proven).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntrader.catalog.asof import VersionPruned
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.changes import bar_changes, render_changes
from ntrader.catalog.commitlog import commits
from ntrader.errors import IncompleteRun, InputError

COMPARED = ("result", "counts", "range", "adjustment", "instruments", "bar_types")
VOLATILE = {"timings", "duration_s", "fetched_bars"}  # differ between any two runs


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read {path}: {exc}", hint="RUN= must be a backtest run folder"
        ) from None


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _diff(old: Any, new: Any, where: str, out: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            if k not in VOLATILE:
                _diff(old.get(k), new.get(k), f"{where}.{k}" if where else k, out)
    elif old != new:
        out.append({"field": where, "original": old, "rerun": new})


@dataclass
class RerunVerdict:
    original: str
    verdict: str  # identical | different | data changed
    differences: list[dict[str, Any]] = field(default_factory=list)
    data_changes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    as_of: int | None = None  # the catalog version the rerun read (the original's), if not today's
    changed_since: list[dict[str, Any]] = field(default_factory=list)  # what changed after it

    def as_dict(self) -> dict[str, Any]:
        return {
            "of": self.original,
            "verdict": self.verdict,
            "as_of": self.as_of,
            "changed_since": self.changed_since,
            "differences": self.differences,
            "data_changes": self.data_changes,
            "notes": self.notes,
        }

    def render(self) -> str:
        lines = [f"rerun of {self.original}: "]
        if self.as_of is not None:
            lines[0] += f"on catalog version {self.as_of} (the original's): "
        if self.verdict == "identical":
            lines[0] += "reproduced: identical"
        elif self.verdict == "different":
            lines[0] += f"NOT reproduced: {len(self.differences)} field(s) differ"
            lines += [
                f"  {d['field']}: {d['original']!r} -> {d['rerun']!r}"
                for d in self.differences[:20]
            ]
        else:
            lines[0] += "the data changed since the original run: NOT a reproduction"
            for c in self.data_changes:
                lines.append(
                    f"  {c['bar_type']}: files {len(c['gone'])} gone, {len(c['new'])} new"
                    f" ({c['rows_original']:,} -> {c['rows_rerun']:,} rows read)"
                )
                lines += [
                    f"    commit v{e['version']} {e['at'][:19]} by {e['run_id'] or e['script']}"
                    f": +{len(e['added'])} -{len(e['removed'])} file(s)"
                    for e in c["commits"][:10]
                ]
        if self.changed_since:
            lines.append("  the catalog changed since the original run (today's data differs):")
        for c in self.changed_since:
            lines.append(f"  {c['bar_type']}:")
            lines += [f"    {line}" for line in c["lines"]]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def raise_for_difference(self, summary: dict[str, Any]) -> None:
        if self.verdict == "identical":
            return
        what = "differs" if self.verdict == "different" else "read other data"
        raise IncompleteRun(
            f"the rerun of {self.original} {what}",
            hint="the differing fields are in summary.json under rerun; "
            + (
                "the data changed since and the original catalog version cannot be read any "
                "more (retention pruned it, or the original names no version); make log "
                "SYMBOL=… shows the commits"
                if self.verdict == "data changed"
                else "same data, other numbers: the code or its libraries changed (manifest.json)"
            ),
            result={**summary, "rerun": self.as_dict()},
        )


def _files(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return (manifest.get("data") or {}).get("bar_types") or {}


@dataclass
class RerunSetup:
    """Where a rerun reads: the catalog as of the original's version when the data changed."""

    catalog: Catalog
    as_of: int | None = None
    changed_since: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _commit_line(e: dict[str, Any]) -> str:
    return (
        f"commit v{e['version']} {e['at'][:19]} by {e['run_id'] or e['script']}: "
        f"+{len(e['added'])} -{len(e['removed']) + len(e.get('quarantined', []))} file(s)"
    )


def prepare_rerun(original_dir: str | Path, catalog: Catalog) -> RerunSetup:
    """Before the rerun: did the bar types the original read get commits since its catalog
    version? Then read as of that version (what changed is reported), if retention kept it."""
    manifest = _load(Path(original_dir) / "manifest.json") or {}
    data = manifest.get("data") or {}
    version = data.get("catalog_version")
    if version is None or catalog.as_of is not None:
        return RerunSetup(catalog)
    since = {
        bt: [e for e in commits(catalog, bt) if e["version"] > version] for bt in _files(manifest)
    }
    since = {bt: log for bt, log in since.items() if log}
    if not since:
        return RerunSetup(catalog)
    setup = RerunSetup(catalog)
    try:
        then = Catalog(catalog.url, retain_days=catalog.history.retain_days, as_of=version)
        for bt, log in sorted(since.items()):
            info = _files(manifest)[bt]
            changes = bar_changes(
                then, catalog, bt, info.get("first_ts_event"), info.get("last_ts_event")
            )
            lines = [*map(_commit_line, log), *render_changes(changes)]
            setup.changed_since.append({"bar_type": bt, "commits": log, **changes, "lines": lines})
    except VersionPruned as exc:
        setup.notes.append(f"cannot read catalog version {version}: {exc.message}")
        return setup
    setup.catalog, setup.as_of = then, version
    return setup


def verify_rerun(
    original_dir: str | Path,
    summary: dict[str, Any],
    manifest: dict[str, Any],
    code: dict[str, Any],
    setup: RerunSetup,
) -> RerunVerdict:
    """Compare a finished rerun (its ``summary`` part and data ``manifest``) with the run folder
    ``original_dir``; ``setup`` is :func:`prepare_rerun`'s (where the rerun read)."""
    catalog = setup.catalog
    folder = Path(original_dir)
    old_summary = _load(folder / "summary.json")
    if old_summary is None:
        raise InputError(f"{folder} holds no summary.json", hint="RUN= must be a backtest run")
    old_manifest = _load(folder / "manifest.json")
    verdict = RerunVerdict(str(folder), "identical", as_of=setup.as_of)
    verdict.changed_since, verdict.notes = setup.changed_since, list(setup.notes)
    if old_manifest is None:
        verdict.notes.append("the original run has no manifest.json: its data is not verified")
    else:
        old_code = old_manifest.get("code") or {}
        if old_code.get("git_commit") != code.get("git_commit"):
            verdict.notes.append(
                f"code: git commit {old_code.get('git_commit')} -> {code.get('git_commit')}"
            )
        old, new = _files(old_manifest), _files(manifest)
        for bt in sorted(set(old) | set(new)):
            a = {(f["name"], f.get("xxh3_128")) for f in (old.get(bt) or {}).get("files", [])}
            b = {(f["name"], f.get("xxh3_128")) for f in (new.get(bt) or {}).get("files", [])}
            if a == b:
                continue
            since = (old.get(bt) or {}).get("last_commit") or 0
            log = [e for e in commits(catalog, bt) if e["version"] > since]  # (today's log)
            verdict.data_changes.append(
                {
                    "bar_type": bt,
                    "gone": sorted(n for n, _ in a - b),
                    "new": sorted(n for n, _ in b - a),
                    "rows_original": (old.get(bt) or {}).get("rows_read", 0),
                    "rows_rerun": (new.get(bt) or {}).get("rows_read", 0),
                    "commits": log,
                }
            )
        if verdict.data_changes:
            verdict.verdict = "data changed"
            return verdict
    for key in COMPARED:
        _diff(_plain(old_summary.get(key)), _plain(summary.get(key)), key, verdict.differences)
    if verdict.differences:
        verdict.verdict = "different"
    return verdict
