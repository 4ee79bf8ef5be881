"""Start-up: `make scan` / `make check` / `make import` import what they need and nothing else
(issue 13 §3).

Scan and check read Parquet footers and timestamps with pyarrow: no NautilusTrader (nor pandas on
an empty scan), no Ray/submitit launcher plugin, no report library; an import into a catalog that
holds the instrument needs no NautilusTrader either (pandas it does: pyarrow's numpy conversions
import it). Each script runs in a
subprocess under ``PYTHONPROFILEIMPORTTIME`` (``python -X importtime``), whose stderr lines name
every module imported — also when the run ends with ``os._exit`` (``runs.exit_now``).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pytest

from ntrader.instruments import bar_step, bar_type_for, resolve_instrument_id
from ntrader.runs import startup as task
from ntrader.symbols import bar_type_text, instrument_id_text, spec_step

from .conftest import REPO
from .test_scan import calendar_frame, write

NEVER = ("nautilus_trader", "ray", "plotly", "matplotlib", "submitit", "joblib")
NEVER_PLUGINS = ("hydra_plugins.hydra_ray_launcher.", "hydra_plugins.hydra_submitit_launcher.")


def imported(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy(mods: set[str], also: tuple[str, ...] = ()) -> list[str]:
    tops = NEVER + also
    return sorted(
        m for m in mods if m.split(".")[0] in tops or any(m.startswith(p) for p in NEVER_PLUGINS)
    )


TIMED = {"PYTHONPROFILEIMPORTTIME": "1"}


def test_scan_of_an_empty_catalog_imports_no_nautilus_pandas_or_launcher(tmp_path, run_script):
    (tmp_path / "empty").mkdir()
    r = run_script("scan", f"catalog.path={tmp_path / 'empty'}", "format=json", env=TIMED)
    assert r.code == 0, r.stderr[-3000:]
    assert json.loads(r.stdout) == []
    mods = imported(r.stderr)
    assert "pyarrow.parquet" in mods and "hydra" in mods  # the parse saw the imports
    assert heavy(mods, also=("pandas", "exchange_calendars")) == []


def test_check_of_a_small_catalog_imports_no_nautilus_or_launcher(catalog, run_script):
    bars = calendar_frame("2024-05-28", "2024-06-07")
    write(catalog, "AAPL", bars)
    plain = run_script("scan", f"catalog.path={catalog.root}", "symbol=AAPL", "format=json")
    r = run_script("scan", f"catalog.path={catalog.root}", "symbol=AAPL", "format=json", env=TIMED)
    assert r.code == 0, r.stderr[-3000:]
    assert r.stdout == plain.stdout  # the same report with the import trace on
    assert "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL" in r.stdout
    assert heavy(imported(r.stderr)) == []
    listing = run_script("scan", f"catalog.path={catalog.root}", "format=json", env=TIMED)
    assert [row["rows"] for row in json.loads(listing.stdout)] == [len(bars.ts_event)]
    assert heavy(imported(listing.stderr), also=("pandas", "exchange_calendars")) == []


def test_importing_a_session_into_a_known_instrument_imports_no_nautilus(catalog, run_script):
    """The nightly import path: the catalog holds the instrument, so the write needs only its
    price precision (read with pyarrow); a first import creates it (and imports Nautilus)."""
    csv = catalog.root.parent / "AAPL.csv"
    rows = ["2024-06-03 09:31:00,190.00,190.10,189.90,190.05,100"]
    rows += [f"2024-06-03 09:{m}:00,190.00,190.10,189.90,190.05,100" for m in range(32, 60)]
    csv.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    args = [f"catalog.path={catalog.root}", f"csv.path={csv}", "symbol=AAPL"]
    first = run_script("import_csv", *args, env=TIMED)
    assert first.code == 0, first.stderr[-3000:]
    assert "instrument created" in first.stdout
    assert "nautilus_trader" in {m.split(".")[0] for m in imported(first.stderr)}
    csv.write_text(csv.read_text().replace("2024-06-03", "2024-06-04"))
    again = run_script("import_csv", *args, env=TIMED)
    assert again.code == 0, again.stderr[-3000:]
    assert "added 29" in again.stdout and "instrument created" not in again.stdout
    assert heavy(imported(again.stderr)) == []
    assert len(catalog.read_bars("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")) == 58  # both sessions


def _launchers(*args: str) -> dict:
    """In a fresh interpreter: what ``skip_unasked_plugins`` hides, the launchers Hydra finds."""
    code = (
        "import json, sys\n"
        "from ntrader.runs import startup as task\n"
        "hidden = task.skip_unasked_plugins(sys.argv[1:])\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.launcher import Launcher\n"
        "found = sorted(p.__name__ for p in Plugins.instance().discover(Launcher))\n"
        "print(json.dumps({'hidden': hidden, 'found': found}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(p.stdout)


def test_launcher_plugins_are_scanned_only_when_an_override_asks():
    unasked = _launchers("format=json")
    assert unasked == {"hidden": list(task.LAUNCHER_PLUGINS.values()), "found": ["BasicLauncher"]}
    ray = _launchers("-m", "hydra/launcher=ntrader_ray")
    assert "RayLauncher" in ray["found"] and task.LAUNCHER_PLUGINS["ray"] not in ray["hidden"]
    job = _launchers("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert job["found"] == ["BasicLauncher", "JoblibLauncher"]
    sub = _launchers("-m", "hydra/launcher=submitit")
    assert "SlurmLauncher" in sub["found"] and "RayLauncher" not in sub["found"]
    assert _launchers("--info", "plugins")["hidden"] == []


def test_no_config_sets_hydra_mode_so_the_mode_probe_can_be_skipped():
    from hydra import compose, initialize_config_dir

    from ntrader.runs import register_resolvers

    register_resolvers()
    for name in ("scan", "import_csv", "backtest", "fetch", "migrate"):
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            cfg = compose(name, return_hydra_config=True)
        assert cfg.hydra.mode is None, name
    assert task.skip_mode_probe(["symbol=AAPL"]) is True
    assert task.skip_mode_probe(["hydra.mode=MULTIRUN"]) is False
    assert task.skip_mode_probe(["--config-dir=/x", "--config-name=legacy"]) is False


@pytest.mark.parametrize(
    "spec", ["1-MINUTE-LAST", "5-MINUTE-LAST", "1-HOUR-BID", "30-SECOND-MID", "1-DAY-LAST"]
)
def test_string_bar_types_match_nautilus(spec):
    for symbol in ("AAPL", "BRK.B.NYSE", "BRK-B"):
        iid = resolve_instrument_id(symbol, "NASDAQ", {"AAPL": "NASDAQ"})
        text = instrument_id_text(symbol, "NASDAQ", {"AAPL": "NASDAQ"})
        assert text == str(iid)
        bt = bar_type_for(iid, spec)
        assert bar_type_text(text, spec) == str(bt)
        assert spec_step(spec) == spec_step(str(bt)) == bar_step(bt)


def test_codec_fixed_precision_is_nautilus_own():
    from nautilus_trader.model.objects import FIXED_PRECISION

    from ntrader.catalog import codec

    assert codec.FIXED_PRECISION == FIXED_PRECISION


def test_iso_without_pandas_matches_pandas():
    import pandas as pd

    from ntrader.catalog.inventory import iso

    t = pd.Timestamp("2024-03-10 06:59:00", tz="UTC").value  # around the DST switch
    for ns in (t, t + 60_000_000_000, t + 3_600_000_000_000, t + 1_500, 0, t + 123_456_000):
        for tz in ("America/New_York", "UTC", "Europe/London"):
            want = pd.Timestamp(ns, tz="UTC").tz_convert(tz)
            assert iso(ns, tz) == want.isoformat()
            assert iso(ns, tz, daily=True) == str(
                pd.Timestamp(ns - 1, tz="UTC").tz_convert(tz).date()
            )
    assert dt.date.fromisoformat(iso(t, daily=True) or "") == dt.date(2024, 3, 10)
    assert iso(np.int64(t)) == iso(np.uint64(t)) == iso(t)  # footers give numpy integers
