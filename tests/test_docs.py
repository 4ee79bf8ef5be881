"""Docs match the code: every Make target and script is documented in README and `make help`."""

from __future__ import annotations

import re
import subprocess

import yaml

from .conftest import REPO

README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()
TARGETS = sorted(set(re.findall(r"^([a-z][a-z0-9_-]*):", MAKEFILE, re.M)))


def test_every_make_target_has_help_text_and_a_readme_example():
    help_out = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True)
    assert help_out.returncode == 0
    for t in TARGETS:
        assert re.search(rf"^{re.escape(t)}:.*## ", MAKEFILE, re.M), f"{t} has no ## help text"
        assert re.search(rf"^\s+{re.escape(t)}\s", help_out.stdout, re.M), f"{t} not in make help"
        assert f"make {t}" in README, f"README shows no example of `make {t}`"


def test_help_is_the_default_goal():
    out = subprocess.run(["make", "-s"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "make TARGET" in out.stdout


def test_every_script_is_documented():
    for script in sorted((REPO / "scripts").glob("[!_]*.py")):
        assert f"scripts/{script.name}" in README, f"{script.name} missing from README"
        assert (REPO / "conf" / script.name.replace(".py", ".yaml")).exists()


def test_every_config_key_carries_an_override_comment():
    """Each leaf key of the primary configs and groups has a comment on its line or above."""
    for path in sorted((REPO / "conf").rglob("*.yaml")):
        if path.parent.name == "hydra":
            continue
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^\s*([A-Za-z_][\w]*):\s*(\S.*)?$", line)
            if not m or m.group(1) == "defaults" or line.strip().startswith("- "):
                continue
            value = (m.group(2) or "").split("#")[0].strip()
            if not value:  # a mapping header; its children carry the comments
                continue
            prev = lines[i - 1].strip() if i else ""
            assert "#" in line or prev.startswith("#") or _in_commented_block(lines, i), (
                f"{path.relative_to(REPO)}:{i + 1} `{m.group(1)}` has no comment"
            )
        yaml.safe_load(path.read_text())


def _in_commented_block(lines: list[str], i: int) -> bool:
    """A key inside a block (e.g. a venue map) whose header line carries the comment."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    for j in range(i - 1, -1, -1):
        ind = len(lines[j]) - len(lines[j].lstrip())
        if lines[j].strip() and ind < indent:
            return "#" in lines[j] or (j > 0 and lines[j - 1].strip().startswith("#"))
    return False


def test_readme_troubleshooting_lists_messages_the_code_emits():
    for fragment in ("invalid bar spec", "moved to", "stayed locked by", "missing required column"):
        assert fragment in README
        assert subprocess.run(["grep", "-rq", fragment, "lib"], cwd=REPO).returncode == 0, fragment
