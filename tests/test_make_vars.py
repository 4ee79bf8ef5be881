"""`make <target> VAR=value` hands every value to the script byte for byte and runs nothing that is
in it: quotes, `$` (`$D`, `$(id)`, `${HOME}`), `;`, backticks, blanks, `|`, `&`, unicode and
payloads that would create a file `pwned` go through real `make` subprocesses (the venv stamp
held old with `-o`, so no `uv sync` runs). `quote` round-trips any string through Hydra."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from ntrader.runs.make_args import PREFIX, VARIABLES, MakeVars, quote, script_argv
from ntrader.symbols import shown

from .conftest import REPO

MAKE = ["make", "-s", "-o", ".venv/.synced"]
SAMPLE = REPO / "data" / "samples" / "AAPL-1min-sample.csv"
MAKEFILE = (REPO / "Makefile").read_text()
TARGETS = sorted(set(re.findall(r"^([a-z][a-z0-9_-]*):", MAKEFILE, re.M)))
# A file name (no '/') and a value holding everything a shell or make would act on.
NAME = (
    'O\'Neil "q" $Dollar $D $(id) ${HOME} ;|& `id` é 日本 '
    + "';touch pwned;' $(touch pwned) `touch pwned`"
)
PARSER = OverridesParser.create()


def hostile(tmp: Path, tag: str = "") -> str:
    return f'{tag}{NAME} \\x $(shell touch {tmp}/pwned) ";touch {tmp}/pwned;" ${{oc.env:HOME}}'


def clean_env(**extra: str) -> dict[str, str]:
    """No make flags, public variables or ntrader settings of the calling process."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DATABASE_URL", "NAUTILUS_PATH"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and k not in VARIABLES and not k.startswith("NTRADER_")
    }
    return {**env, **extra}


def make(target: str, *flags: str, env: dict[str, str] | None = None, **variables: str):
    """``make -s <flags> <target> VAR=value …`` in the repo; a clean environment by default."""
    args = [*MAKE, *flags, target, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(
        args, cwd=REPO, env=env or clean_env(), capture_output=True, text=True, timeout=180
    )


@pytest.fixture(autouse=True)
def nothing_ran(tmp_path: Path):
    """After each test: no `pwned` file in the repo, the test's tmp tree or the cwd."""
    assert not (REPO / "pwned").exists(), "a pwned file was left in the repo (remove it)"
    yield
    found = [p for p in (REPO / "pwned", Path.cwd() / "pwned") if p.exists()]
    found += list(tmp_path.rglob("pwned"))
    assert not found, f"a payload ran: {found}"


def cfg_job(target: str, tmp: Path, **variables: str) -> dict:
    """The script's composed config (`--cfg job --resolve` in ARGS), with a hostile tag."""
    tag = shlex.quote("tag=" + quote(hostile(tmp, "tag:")))  # ARGS holds Hydra syntax
    args = f"{tag} --cfg job --resolve"  # Hydra's options after the overrides
    p = make(target, RUNS=str(tmp / "runs"), ARGS=args, **variables)
    assert p.returncode == 0, p.stderr[-3000:]
    cfg = yaml.safe_load(p.stdout)
    assert cfg["tag"] == hostile(tmp, "tag:")
    return cfg


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(),
        st.lists(
            st.sampled_from(["\\", "'", '"', "${", "}", "$", "\x00", "\n", " ", ",", "=", "a"])
        ).map("".join),
    )
)
def test_quote_round_trips_through_hydra_and_omegaconf(s):
    node = OmegaConf.create({"key": None})
    node.key = PARSER.parse_override(f"key={quote(s)}").value()
    assert node.key == s


def test_quoted_lists_and_sweeps_keep_each_element():
    items = ["a,b", "x]y", "${oc.env:HOME}", "q'\\"]
    node = OmegaConf.create({"key": None})
    node.key = PARSER.parse_override(f"key=[{','.join(map(quote, items))}]").value()
    assert list(node.key) == items
    sweep = PARSER.parse_override(f"key={','.join(map(quote, items[:2]))}")
    assert sweep.is_sweep_override()
    assert [PARSER.parse_override(f"k={v}").value() for v in sweep.sweep_string_iterator()] == [
        "a,b",
        "x]y",
    ]


def test_no_recipe_puts_a_value_on_its_command_line(tmp_path):
    """`make -n` prints every command a target would run: no value shows up in any of them."""
    values = {v: f"MARK{v}{hostile(tmp_path)}" for v in VARIABLES}
    for target in TARGETS:
        p = make(target, "-n", **values)
        assert "MARK" not in p.stdout + p.stderr, (target, p.stdout)


def test_make_exports_each_value_raw(tmp_path):
    """What the Makefile exports: NTRADER_MAKE_<VAR> with the exact bytes, and every command-line
    variable itself unexpanded (make would run a `$(shell …)` in it while exporting)."""
    listed = re.search(r"^NTRADER_MAKE_VARS := ((?:.*\\\n)*.*)$", MAKEFILE, re.M)
    assert listed and listed.group(1).replace("\\\n", " ").split() == list(VARIABLES)
    dump = tmp_path / "dump.mk"
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    dump.write_text(f"dump:\n\t@{sys.executable} -c '{code}'\n")
    values = {v: hostile(tmp_path, f"{v}:") for v in VARIABLES}
    files = ("-f", "Makefile", "-f", str(dump))
    p = make("dump", *files, env=clean_env(IBKR_HOST=f"h$(shell touch {tmp_path}/pwned)"), **values)
    assert p.returncode == 0, p.stderr
    env = json.loads(p.stdout)
    for v, value in values.items():
        assert env[PREFIX + v] == value, v
        assert env[v] == value, v
    assert env["IBKR_HOST"] == f"h$(shell touch {tmp_path}/pwned)"
    defaults = json.loads(make("dump", *files).stdout)
    assert defaults[PREFIX + "SIM_PORT"] == "7497" and defaults[PREFIX + "CSV"] == ""
    assert defaults[PREFIX + "DEMO_CATALOG"] == "data/demo/catalog"


def test_import_writes_exactly_the_catalog_and_runs_folder_named(tmp_path):
    csv = tmp_path / f"{NAME}.csv"
    shutil.copy(SAMPLE, csv)
    catalog = tmp_path / "ca$t;'x é 日本 $(touch pwned) `id`"
    runs = tmp_path / "ru$ns 'x' `touch pwned`"
    p = make(
        "import",
        CSV=str(csv),
        SYMBOL="NVDA",
        MODE="merge",
        BAR="1-MINUTE-LAST",
        CATALOG=str(catalog),
        RUNS=str(runs),
        ARGS="'tag=t1' csv.tz=America/New_York",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert (catalog / "data" / "bar" / "NVDA.NASDAQ-1-MINUTE-LAST-EXTERNAL").is_dir()
    (run,) = (runs / "import_csv").glob("*_t1")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["counts"]["rows_read"] == 1530, summary
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    assert (cfg.csv.path, cfg.catalog.path, cfg.mode) == (str(csv), str(catalog), "merge")
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    assert overrides[:3] == [f"csv.path={quote(str(csv))}", "symbol='NVDA'", "mode='merge'"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([csv.name, catalog.name, runs.name])


@pytest.mark.parametrize(
    ("target", "variables", "expect"),
    [
        ("import", {"CSV": "csv.path", "MODE": "mode"}, {"SYMBOL": ("symbol", "nvda")}),
        ("scan", {"FORMAT": "format"}, {}),
        ("check", {"START": "start", "END": "end", "FORMAT": "format"}, {}),
        ("fetch", {"START": "dates.start", "END": "dates.end"}, {"SET": ("", "mega_caps")}),
        ("backtest", {}, {"DATES": ("", "2024q1"), "STRATEGY": ("", "opening_range")}),
        ("migrate", {"DSN": "dsn", "MODE": "mode"}, {"SYMBOLS": ("", "brk/b, x'y$D")}),
    ],
)
def test_every_variable_reaches_the_config_verbatim(tmp_path, target, variables, expect):
    common = {"CATALOG": "catalog.path", "BAR": "bars.spec"}
    values = {v: hostile(tmp_path, f"{v}:") for v in {**variables, **common}}
    fixed = {v: value for v, (_, value) in expect.items()}
    if target in ("check", "backtest"):
        fixed["SYMBOL"] = "aapl"
    cfg = cfg_job(target, tmp_path, **values, **fixed)
    for v, key in {**variables, **common}.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == values[v], v
    if "SYMBOL" in fixed:
        assert cfg["symbol"] == fixed["SYMBOL"]
    if target == "fetch":
        assert cfg["instruments"]["symbols"][:2] == ["AAPL", "MSFT"]  # SET=mega_caps
    if target == "backtest":
        assert cfg["dates"] == {"start": "2024-01-01", "end": "2024-03-31"}
        assert cfg["strategy"]["path"].endswith(":OpeningRange")
    if target == "migrate":
        assert cfg["symbols"] == ["brk/b", "x'y$D"]  # as the legacy table spells them


def test_fetch_symbols_become_a_list(tmp_path):
    cfg = cfg_job("fetch", tmp_path, SYMBOLS="AAPL, msft,BRK.B", DATES="2024q2")
    assert cfg["symbols"] == ["AAPL", "msft", "BRK.B"]
    assert cfg["dates"] == {"start": "2024-04-01", "end": "2024-06-30"}


@pytest.mark.parametrize(
    ("target", "variable", "value", "bad"),
    [
        ("check", "SYMBOL", "' OR 1=1--", "' OR 1=1--"),
        ("import", "SYMBOL", "${oc.env:HOME}", "${oc.env:HOME}"),
        ("fetch", "SYMBOLS", "AAPL,a';touch pwned;'", "a';touch pwned;'"),
        ("backtest", "SYMBOL", "$(touch pwned)", "$(touch pwned)"),
        ("sweep", "SYMBOLS", "AAPL, `touch pwned`", "`touch pwned`"),
    ],
)
def test_symbols_are_checked_before_the_script_starts(tmp_path, target, variable, value, bad):
    runs = tmp_path / "runs"
    p = make(target, CSV=str(SAMPLE), RUNS=str(runs), **{variable: value})
    assert p.returncode == 2, p.stderr[-3000:]
    assert f"input error: {variable}: invalid symbol {shown(bad)}" in p.stderr, p.stderr
    assert "what to do: use a ticker" in p.stderr
    assert re.search(r"scripts/\w+\.py exited with code 2", p.stderr)
    (summary,) = runs.rglob("summary.json")  # the run folder of a failed start
    s = json.loads(summary.read_text())
    assert s["exit_code"] == 2 and shown(bad) in s["error"]["message"]


@pytest.mark.parametrize(
    ("target", "variable", "value", "group"),
    [
        ("backtest", "STRATEGY", "x;touch pwned", "strategy"),
        ("fetch", "DATES", "2024q1,$(touch pwned)", "dates"),
        ("sweep", "SET", "../instruments/mega_caps", "instruments"),
    ],
)
def test_config_group_names_are_checked(tmp_path, target, variable, value, group):
    p = make(target, SYMBOL="AAPL", RUNS=str(tmp_path / "runs"), **{variable: value})
    assert p.returncode == 2, p.stderr[-3000:]
    have = ", ".join(sorted(f.stem for f in (REPO / "conf" / group).glob("*.yaml")))
    assert f"input error: {variable}={shown(value)}" in p.stderr, p.stderr
    assert f"(conf/{group}/ has: {have})" in p.stderr


@pytest.mark.parametrize(
    ("target", "variables", "says"),
    [
        ("sweep", {"JOBS": "2;touch pwned"}, "JOBS='2;touch pwned' is not a whole number"),
        ("sim", {"SIM_PORT": "7497`touch pwned`"}, "SIM_PORT='7497`touch pwned`' is not a whole"),
        ("sim", {"SIM_PORT": "65536"}, "SIM_PORT='65536' is not a whole number from 0 to 65535"),
        ("clean-runs", {"DAYS": "7;touch pwned"}, "DAYS='7;touch pwned' is not a whole number"),
        ("clean-runs", {"DAYS": "$(touch pwned)"}, "DAYS='$(touch pwned)' is not a whole number"),
        ("sweep", {"LAUNCHER": "ray;touch pwned"}, "LAUNCHER=joblib|ray|submitit (not 'ray;touch"),
    ],
)
def test_numbers_and_launchers_are_checked(tmp_path, target, variables, says):
    p = make(target, RUNS=str(tmp_path / "runs"), **variables)
    assert p.returncode == 2, p.stderr[-3000:]
    assert says in p.stdout + p.stderr, p.stdout + p.stderr


def test_usage_messages_for_missing_variables(tmp_path):
    env = clean_env()
    cases = [
        ("import", {}, "usage: make import CSV=path/to/bars.csv SYMBOL=NVDA [BAR=1-MINUTE-LAST]"),
        ("import", {"CSV": "a b'$(id)"}, "usage: make import CSV=a b'$(id) SYMBOL=NVDA [BAR=…]"),
        ("check", {}, "usage: make check SYMBOL=AAPL [START=YYYY-MM-DD END=YYYY-MM-DD]"),
        ("rerun", {"RUN": str(tmp_path / "no 'such' $(touch pwned)")}, "usage: make rerun RUN="),
        ("migrate", {}, "usage: make migrate DSN=postgresql://user:pass@host:5432/db"),
    ]
    for target, variables, says in cases:
        p = make(target, env=env, **variables)
        assert p.returncode == 2 and says in p.stdout, (target, p.stdout, p.stderr)


def test_scan_names_a_bad_format_exactly(tmp_path):
    p = make("scan", FORMAT="json';touch pwned;'", RUNS=str(tmp_path / "runs"))
    assert p.returncode == 2
    assert "input error: unknown format \"json';touch pwned;'\"" in p.stderr, p.stderr


def test_sweep_jobs_get_the_values(tmp_path):
    runs, catalog = tmp_path / "runs", tmp_path / "c$t 'x' `touch pwned`"
    start = hostile(tmp_path, "START:")
    args = "ibkr.auto_fetch=false reports.tearsheet=false tag=sw"
    p = make(
        "sweep", SYMBOLS="AAPL,msft", START=start, CATALOG=str(catalog), RUNS=str(runs), ARGS=args
    )
    assert p.returncode == 2, p.stderr[-3000:]
    jobs = sorted(runs.glob("backtest/multirun/*_sw/[0-9]"))
    cfgs = [OmegaConf.load(j / ".hydra" / "config.yaml") for j in jobs]
    assert [c.symbol for c in cfgs] == ["AAPL", "msft"]
    assert all(c.dates.start == start and c.catalog.path == str(catalog) for c in cfgs)


def test_sweep_launcher_overrides():
    def argv(**values: str) -> list[str]:
        return script_argv("sweep", MakeVars(values, REPO / "conf"))

    assert argv(JOBS="3")[1:] == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"]
    address = "h'o$D:6379"
    assert argv(LAUNCHER="ray", RAY_ADDRESS=address, JOBS="3")[1:] == [
        "hydra/launcher=ntrader_ray",
        f"hydra.launcher.ray.init.address={quote(address)}",
    ]
    assert argv(LAUNCHER="ray", JOBS="3")[-1] == "hydra.launcher.ray.init.num_cpus=3"
    assert argv(LAUNCHER="submitit") == ["-m", "hydra/launcher=submitit"]
    assert argv(SYMBOLS="AAPL,MSFT", DATES="2024q1,2024q2")[:3] == [
        "-m",
        "symbol='AAPL','MSFT'",
        "dates=2024q1,2024q2",
    ]


def test_rerun_reads_the_folder_it_is_given(tmp_path):
    run = tmp_path / "ru'n $D;`touch pwned`" / "x"
    (run / ".hydra").mkdir(parents=True)
    saved = make("backtest", SYMBOL="MSFT", RUNS=str(tmp_path / "runs"), ARGS="--cfg job")
    assert saved.returncode == 0, saved.stderr
    (run / ".hydra" / "config.yaml").write_text(saved.stdout)
    p = make("rerun", RUN=str(run), RUNS=str(tmp_path / "runs"), ARGS="--cfg job --resolve")
    assert p.returncode == 0, p.stderr[-3000:]
    cfg = yaml.safe_load(p.stdout)
    assert (cfg["symbol"], cfg["tag"]) == ("MSFT", "rerun")


def test_migrate_dsn_keeps_its_dollars_and_hides_its_password(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = f"postgresql://us$Der:Mk4$Dollar9@127.0.0.1:{port}/d$Db"
    runs = tmp_path / "runs"
    p = make("migrate", DSN=dsn, CATALOG=str(tmp_path / "cat"), RUNS=str(runs))
    assert p.returncode == 2 and "scripts/migrate.py exited with code 3" in p.stderr, p.stderr
    assert f"postgresql://us$Der:***@127.0.0.1:{port}/d$Db" in p.stderr
    assert "database d$Db" in p.stderr and "Mk4$Dollar9" not in p.stdout + p.stderr
    assert not [f for f in runs.rglob("*") if f.is_file() and b"Mk4$Dollar9" in f.read_bytes()]


def resolved_config(script: str, env: dict[str, str]) -> dict:
    """``scripts/<script>.py --cfg job --resolve`` in ``env``: the config it would run with."""
    p = subprocess.run(
        [sys.executable, f"scripts/{script}.py", "--cfg", "job", "--resolve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return yaml.safe_load(p.stdout)


def test_demo_variables_reach_the_scripts(tmp_path):
    """`make demo` runs its scripts with NTRADER_MAKE_TARGET=demo-fetch / demo-backtest /
    demo-report; its DEMO_* values arrive as given (the simulator run itself is `make demo`)."""
    values = {v: hostile(tmp_path, f"{v}:") for v in ("DEMO_CATALOG", "DEMO_START", "DEMO_END")}
    env = clean_env(
        NTRADER_MAKE_TARGET="demo-fetch",
        NTRADER_RUNS=str(tmp_path / "runs"),
        **{PREFIX + k: v for k, v in values.items()},
    )
    cfg = resolved_config("fetch", env)
    assert cfg["symbols"] == ["AAPL"] and cfg["tag"] == "demo"
    assert cfg["dates"] == {"start": values["DEMO_START"], "end": values["DEMO_END"]}
    assert cfg["catalog"]["path"] == values["DEMO_CATALOG"]
    env["NTRADER_MAKE_TARGET"] = "demo-report"  # the report of the demo catalog ending make demo
    cfg = resolved_config("scan", env)
    assert cfg["report"] is True and cfg["catalog"]["path"] == values["DEMO_CATALOG"]


def test_tools_get_args_split_by_shlex_without_a_shell(tmp_path):
    p = make("sim", SIM_PORT="0", ARGS="--fault 'no such$D é;`touch pwned`=1'")
    assert p.returncode == 2 and "unknown fault 'no such$D é;`touch pwned`'" in p.stderr, p.stderr
    out = tmp_path / "bench"
    p = make("bench", ARGS=f"--only 'x$D é;$(touch pwned)' --out {shlex.quote(str(out))}")
    assert p.returncode == 2 and "unknown benchmark(s) x$D é;$(touch pwned);" in p.stderr, p.stderr
    p = make("test", ARGS="--co -q 'tests/no such $D;`touch pwned`.py'")
    assert p.returncode == 2, p.stdout[-2000:]
    assert "file or directory not found: tests/no such $D;`touch pwned`.py" in p.stdout + p.stderr


def test_the_launcher_execs_without_the_make_variables():
    code = (
        "import json, os, sys; "
        "print(json.dumps([sys.argv[1:], [k for k in os.environ if k.startswith('NTRADER_MAKE')]]))"
    )
    env = clean_env(NTRADER_MAKE_TARGET="test", NTRADER_MAKE_ARGS="-k 'a b' $(id) `id` \\$x")
    p = subprocess.run(
        [sys.executable, "-m", "ntrader.runs.make_args", "exec", "--", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(p.stdout) == [["-k", "a b", "$(id)", "`id`", "$x"], []]
