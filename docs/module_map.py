"""README's module map, generated from the package and module docstrings (so it cannot drift).

    python docs/module_map.py            # print the map
    python docs/module_map.py --write    # refresh README.md between the modules markers

``tests/test_architecture.py`` fails when README's copy differs from what this prints.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib" / "ntrader"
README = REPO / "README.md"
START, END = "<!-- modules:start -->", "<!-- modules:end -->"


def docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def summary(doc: str) -> str:
    """The first paragraph of a docstring, on one line."""
    return " ".join(doc.split("\n\n", 1)[0].split())


def may_import(doc: str) -> str:
    """The package docstring's ``May import: …`` paragraph, on one line."""
    for para in doc.split("\n\n"):
        if para.startswith("May import:"):
            return " ".join(para.split())
    return ""


def _modules(folder: Path) -> list[str]:
    lines = []
    for f in sorted(folder.glob("*.py")):
        if f.name.startswith("_"):
            continue
        lines.append(f"  - `{f.stem}` — {summary(docstring(f))}")
    for sub in sorted(p for p in folder.iterdir() if (p / "__init__.py").exists()):
        lines.append(f"  - `{sub.name}/` — {summary(docstring(sub / '__init__.py'))}")
    return lines


def render() -> str:
    """The markdown of the map: core modules, then each package, then the scripts."""
    out = [
        "`lib/ntrader` is the library, one concept per package; each package's `__init__.py` "
        "says what it owns and what it may import, and `make lint` enforces those layers "
        "(import-linter contracts in `pyproject.toml`).",
        "",
        "- **core** (`ntrader.<module>`, imported by every layer)",
        *_core(),
    ]
    for pkg in sorted(p for p in LIB.iterdir() if (p / "__init__.py").exists()):
        doc = docstring(pkg / "__init__.py")
        out.append(f"- **`ntrader.{pkg.name}`** — {summary(doc)}")
        rule = may_import(doc)
        if rule:
            out.append(f"  *{rule}*")
        out.extend(_modules(pkg))
    out.append("- **`scripts/`** — " + summary(docstring(REPO / "scripts" / "__init__.py")))
    for f in sorted((REPO / "scripts").glob("*.py")):
        if not f.name.startswith("_"):
            out.append(f"  - `{f.name}` — {summary(docstring(f))}")
    return "\n".join(out)


def _core() -> list[str]:
    return [
        f"  - `{f.stem}` — {summary(docstring(f))}"
        for f in sorted(LIB.glob("*.py"))
        if not f.name.startswith("_")
    ]


def readme_block(text: str) -> str | None:
    if START not in text or END not in text:
        return None
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write() -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{render()}\n{END}{tail}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(render())
