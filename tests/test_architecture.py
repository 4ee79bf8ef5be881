"""The layout keeps the shape the README promises: documented packages, thin scripts, small
modules, a module map generated from the docstrings, and public names that resolve."""

from __future__ import annotations

import ast
import importlib
import runpy
import subprocess
import sys

import pytest

from .conftest import REPO

LIB = REPO / "lib" / "ntrader"
PACKAGES = sorted(p.name for p in LIB.iterdir() if (p / "__init__.py").exists())
MAP = runpy.run_path(str(REPO / "docs" / "module_map.py"))


def test_readme_module_map_is_generated_from_the_docstrings():
    block = MAP["readme_block"]((REPO / "README.md").read_text())
    assert block is not None, "README lacks the <!-- modules:start/end --> markers"
    assert block == MAP["render"](), "README's module map is stale: run docs/module_map.py --write"


def test_every_package_says_what_it_owns_and_may_import():
    for pkg in [*PACKAGES, "ibkr/sim"]:
        doc = ast.get_docstring(ast.parse((LIB / pkg / "__init__.py").read_text())) or ""
        assert doc.strip(), f"ntrader.{pkg} has no docstring"
        assert "May import:" in doc, f"ntrader.{pkg}'s docstring does not say what it may import"


def test_every_module_has_a_docstring():
    for f in sorted(LIB.rglob("*.py")):
        assert ast.get_docstring(ast.parse(f.read_text())), f"{f.relative_to(REPO)}: no docstring"


def test_about_eight_packages_and_a_handful_of_core_modules():
    core = [f.stem for f in LIB.glob("*.py") if not f.name.startswith("_")]
    assert 6 <= len(PACKAGES) <= 9, PACKAGES
    assert len(core) <= 8, core


def test_scripts_are_thin():
    for script in sorted((REPO / "scripts").glob("[!_]*.py")):
        n = len(script.read_text().splitlines())
        assert n <= 80, f"{script.name} has {n} lines: move the work into the library"


def test_library_modules_stay_small():
    for f in sorted(LIB.rglob("*.py")):
        n = len(f.read_text().splitlines())
        assert n <= 420, f"{f.relative_to(REPO)} has {n} lines: split it by concept"


@pytest.mark.parametrize("package", [*PACKAGES, "ibkr.sim"])
def test_public_names_resolve(package):
    """Every name a package's ``__init__.pyi`` lists exists in the module it names."""
    mod = importlib.import_module(f"ntrader.{package}")
    assert mod.__all__, f"ntrader.{package} exports nothing"
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"ntrader.{package}.{name}"


def test_importing_one_package_does_not_import_its_siblings():
    """Lazy re-exports: the migrate script reads PostgreSQL before NautilusTrader is imported,
    and the simulator starts without the fetch side."""
    code = (
        "import sys, ntrader.legacy_pg.source, ntrader.ibkr.sim; "
        "print(sorted(m for m in sys.modules if m.startswith(('nautilus_trader', 'ib_async', "
        "'ntrader.catalog', 'ntrader.ibkr.fetcher'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
