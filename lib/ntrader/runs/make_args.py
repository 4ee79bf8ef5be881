"""The public Make variables of ``make <target> VAR=value`` (passed byte for byte in the
environment) turned into a script's argv: checked, quoted Hydra overrides, never re-parsed by a
shell or expanded by make.

How a value travels: the Makefile re-exports every command-line variable with its raw text
(``override V := $(value V)``: make expands nothing a user typed) and exports each public variable
as ``NTRADER_MAKE_<VAR>``; a recipe names its target in ``NTRADER_MAKE_TARGET`` and runs the script
without arguments; :func:`ntrader.runs.entry` calls :func:`apply` before Hydra parses
``sys.argv``. A value becomes a single-quoted Hydra string (:func:`quote`: no grammar, no ``${…}``
interpolation); symbols, config-group names and integers are checked first (exit 2 naming the
value). ``ARGS`` is Hydra syntax by design and is split by :func:`shlex.split` (POSIX rules, no
expansion, no command substitution). ``make test``, ``test-all``, ``bench`` and ``sim`` run
``python -m ntrader.runs.make_args exec -- CMD…``, which appends the split ``ARGS`` (for ``sim``
after ``--port SIM_PORT``) and execs CMD.

Plain string work over ``os.environ``: no Hydra import, usable before Hydra starts.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

from ntrader.errors import INPUT_ERROR, InputError
from ntrader.symbols import shown, split_instrument_id

PREFIX = "NTRADER_MAKE_"
TARGET = f"{PREFIX}TARGET"
# The Makefile exports NTRADER_MAKE_<name> for each of these (its NTRADER_MAKE_VARS list).
VARIABLES = (
    *("CATALOG", "ARGS", "FORMAT", "SYMBOL", "SYMBOLS", "BAR", "START", "END", "MODE", "CSV"),
    *("DSN", "SET", "DATES", "STRATEGY", "RUN", "RUNS", "DAYS", "JOBS", "LAUNCHER"),
    *("RAY_ADDRESS", "SIM_PORT", "PLAN", "DEMO_CATALOG", "DEMO_START", "DEMO_END"),
)
LAUNCHERS = {"joblib": "joblib", "ray": "ntrader_ray", "submitit": "submitit"}
_GROUP_NAME = re.compile(r"[A-Za-z0-9_]+")
_INTEGER = re.compile(r"-?[0-9]+")
_QUOTE_FIX = re.compile(r"(\\*)('|\$\{|\Z)")


def quote(s: str) -> str:
    """``s`` as a single-quoted Hydra override value that reads back as exactly ``s``.

    Backslashes count only before a quote, before ``${`` and at the end (Hydra's rule), so those
    runs are doubled and the quote / ``${`` escaped; ``${`` is then a literal, never interpolated.
    """

    def fix(m: re.Match[str]) -> str:
        bs, nxt = m.group(1), m.group(2)
        if nxt == "'":
            return bs * 2 + "\\'"
        if nxt == "${":
            return bs * 2 + "\\${"
        if nxt == "":
            return bs * 2
        return bs + nxt

    return "'" + _QUOTE_FIX.sub(fix, s) + "'"


def _blank(value: str) -> bool:
    """Make's idea of empty (``$(if …)``, ``$(or …)``): nothing but blanks."""
    return not value.strip(" \t\n")


class MakeVars:
    """The public variables of one ``make`` call (unset = empty) and the checks made on them."""

    def __init__(self, values: Mapping[str, str], conf_dir: Path = Path("conf")) -> None:
        self.values = dict(values)
        self.conf_dir = conf_dir

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], conf_dir: Path = Path("conf")) -> MakeVars:
        return cls({n: environ.get(PREFIX + n, "") for n in VARIABLES}, conf_dir)

    def __getitem__(self, name: str) -> str:
        return self.values.get(name, "")

    def either(self, *names: str) -> tuple[str, str]:
        """The first set variable of ``names`` and its value (make's ``$(or …)``), else blanks."""
        for name in names:
            if not _blank(self[name]):
                return name, self[name]
        return names[0], ""

    def opt(self, key: str, name: str) -> list[str]:
        """``key='<value>'`` when ``name`` is set, else nothing."""
        value = self[name]
        return [] if _blank(value) else [f"{key}={quote(value)}"]

    def required(self, name: str, usage: str) -> str:
        if _blank(self[name]):
            raise InputError(f"{name} is missing", hint=f"usage: {usage}")
        return self[name]

    def symbol(self, key: str, name: str) -> list[str]:
        """``key='<symbol>'`` when set; the value must be a symbol or instrument id."""
        value = self[name]
        if _blank(value):
            return []
        _check_symbol(name, value)
        return [f"{key}={quote(value)}"]

    def symbol_list(self, *names: str, check: bool = True) -> list[str]:
        """The comma list in the first set variable of ``names``, each element checked (unless
        ``check`` is false: legacy table spellings) and quoted; blanks around commas dropped."""
        name, value = self.either(*names)
        if _blank(value):
            return []
        items = [item.strip(" \t") for item in value.split(",")]
        if check:
            for item in items:
                _check_symbol(name, item)
        return [quote(item) for item in items]

    def group(self, key: str, name: str) -> list[str]:
        """``key=<name>[,<name>…]`` when set: each a file of ``conf/<key>/`` (a sweep in a
        multirun, as Hydra reads a comma list)."""
        value = self[name]
        if _blank(value):
            return []
        folder = self.conf_dir / key
        have = sorted(p.stem for p in folder.glob("*.yaml"))
        items = [item.strip(" \t") for item in value.split(",")]
        for item in items:
            if not _GROUP_NAME.fullmatch(item) or item not in have:
                which = f": {shown(item)}" if len(items) > 1 else ""
                raise InputError(
                    f"{name}={shown(value)}{which} is not a conf/{key} file "
                    f"(conf/{key}/ has: {', '.join(have) or 'nothing'})",
                    hint=f"{name}= one of {', '.join(have)} (a comma list sweeps in `make sweep`;"
                    f' other Hydra syntax goes in ARGS="{key}=…")',
                )
        return [f"{key}={','.join(items)}"]

    def integer(
        self, name: str, example: int, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        """The whole number in ``name`` (None when unset), within ``lo..hi``."""
        value = self[name].strip(" \t")
        if not value:
            return None
        number = int(value) if _INTEGER.fullmatch(value) else None
        if number is None or (lo is not None and number < lo) or (hi is not None and number > hi):
            bounds = f" from {lo} to {hi}" if lo is not None and hi is not None else ""
            raise InputError(
                f"{name}={shown(self[name])} is not a whole number{bounds}",
                hint=f"e.g. {name}={example}",
            )
        return number

    def args(self) -> list[str]:
        """``ARGS`` split as a POSIX shell splits words, with no expansion of any kind."""
        try:
            return shlex.split(self["ARGS"])
        except ValueError as exc:
            raise InputError(
                f"ARGS={shown(self['ARGS'])} cannot be split into overrides: {exc}",
                hint="ARGS holds Hydra overrides separated by blanks; quote one holding blanks "
                "as in a shell: ARGS=\"'source.symbol_map={A: B}' tag=x\"",
            ) from None

    def common(self) -> list[str]:
        """What every script target takes last: CATALOG, BAR, then ARGS."""
        return [*self.opt("catalog.path", "CATALOG"), *self.opt("bars.spec", "BAR"), *self.args()]


def _check_symbol(name: str, value: str) -> None:
    try:
        split_instrument_id(value)
    except InputError as exc:
        raise InputError(f"{name}: {exc.message}", hint=exc.hint) from None


def _dates(m: MakeVars) -> list[str]:
    return [*m.opt("dates.start", "START"), *m.opt("dates.end", "END"), *m.group("dates", "DATES")]


def _backtest_args(m: MakeVars) -> list[str]:
    return [*_dates(m), *m.group("strategy", "STRATEGY"), *m.group("instruments", "SET")]


def _launcher(m: MakeVars) -> list[str]:
    """LAUNCHER=joblib|ray|submitit (joblib when only JOBS is set), with JOBS / RAY_ADDRESS."""
    jobs = m.integer("JOBS", 2)
    name = m["LAUNCHER"].strip(" \t") or ("joblib" if jobs is not None else "")
    if name and name not in LAUNCHERS:
        raise InputError(
            f"LAUNCHER={shown(m['LAUNCHER'])} is not a sweep launcher",
            hint=f"LAUNCHER= one of {'|'.join(LAUNCHERS)}",
        )
    out = [f"hydra/launcher={LAUNCHERS[name]}"] if name else []
    if name == "joblib" and jobs is not None:
        out.append(f"hydra.launcher.n_jobs={jobs}")
    elif name == "ray":
        out += m.opt("hydra.launcher.ray.init.address", "RAY_ADDRESS")
        if _blank(m["RAY_ADDRESS"]) and jobs is not None:
            out.append(f"hydra.launcher.ray.init.num_cpus={jobs}")
    return out


def _import(m: MakeVars) -> list[str]:
    csv = m.required("CSV", "make import CSV=path/to/bars.csv SYMBOL=NVDA")
    symbol = m.required("SYMBOL", f"make import CSV={csv} SYMBOL=NVDA")
    if "{stem}" in symbol:  # a batch: each file's symbol is checked when its name fills it in
        _check_symbol("SYMBOL", symbol.replace("{stem}", "A"))
        return [f"csv.path={quote(csv)}", f"symbol={quote(symbol)}", *m.opt("mode", "MODE")]
    return [f"csv.path={quote(csv)}", *m.symbol("symbol", "SYMBOL"), *m.opt("mode", "MODE")]


def _check(m: MakeVars) -> list[str]:
    m.required("SYMBOL", "make check SYMBOL=AAPL [START=YYYY-MM-DD END=YYYY-MM-DD]")
    scan = [*m.opt("start", "START"), *m.opt("end", "END"), *m.opt("format", "FORMAT")]
    return [*m.symbol("symbol", "SYMBOL"), *scan]


def _report(m: MakeVars) -> list[str]:
    span = [*m.opt("start", "START"), *m.opt("end", "END"), *m.group("instruments", "SET")]
    return ["report=true", *m.symbol("symbol", "SYMBOL"), *span]


def _fetch(m: MakeVars) -> list[str]:
    symbols = m.symbol_list("SYMBOLS", "SYMBOL")
    listed = [f"symbols=[{','.join(symbols)}]"] if symbols else []
    plan = m["PLAN"].strip().lower()
    if plan not in ("", "0", "1", "true", "false", "yes", "no"):
        raise InputError(f"PLAN={shown(m['PLAN'])} is not 1 or 0", hint="make fetch … PLAN=1")
    dry = ["fetch.dry_run=true"] if plan in ("1", "true", "yes") else []
    return [*listed, *_dates(m), *m.group("instruments", "SET"), *dry]


def _sweep(m: MakeVars) -> list[str]:
    symbols = m.symbol_list("SYMBOLS", "SYMBOL")
    swept = [f"symbol={','.join(symbols)}"] if symbols else []
    return ["-m", *swept, *_backtest_args(m), *_launcher(m)]


def _rerun(m: MakeVars) -> list[str]:
    run = m.required("RUN", "make rerun RUN=runs/backtest/<stamp>")
    config_dir = os.path.join(os.path.abspath(run), ".hydra")
    hydra = ["--config-dir", config_dir, "--config-name", "config", "+hydra=default"]
    # the saved config holds catalog and bars; rerun_of: compare with the original (verified)
    return [*hydra, "tag=rerun", f"++rerun_of={quote(os.path.abspath(run))}", *m.args()]


def _migrate(m: MakeVars) -> list[str]:
    symbols = m.symbol_list("SYMBOLS", "SYMBOL", check=False)  # as the legacy table spells them
    listed = [f"symbols=[{','.join(symbols)}]"] if symbols else []
    return [*listed, *m.opt("mode", "MODE")]


def _demo(first: str) -> Callable[[MakeVars], list[str]]:
    def build(m: MakeVars) -> list[str]:
        dates = [f"dates.start={quote(m['DEMO_START'])}", f"dates.end={quote(m['DEMO_END'])}"]
        return [first, *dates, f"catalog.path={quote(m['DEMO_CATALOG'])}", "tag=demo"]

    return build


# Per target: the overrides in today's order, and whether CATALOG, BAR and ARGS follow them.
SCRIPT_TARGETS: dict[str, tuple[Callable[[MakeVars], list[str]], bool]] = {
    "import": (_import, True),
    "scan": (lambda m: m.opt("format", "FORMAT"), True),
    "check": (_check, True),
    "compact": (lambda m: ["compact=true", *m.symbol("symbol", "SYMBOL")], True),
    "log": (
        lambda m: ["log=true", *m.symbol("symbol", "SYMBOL"), *m.opt("format", "FORMAT")],
        True,
    ),
    "gc": (lambda m: ["gc=true"], True),
    "doctor": (lambda m: ["doctor=true", *m.opt("format", "FORMAT")], True),
    "report": (_report, True),
    "fetch": (_fetch, True),
    "backtest": (lambda m: [*m.symbol("symbol", "SYMBOL"), *_backtest_args(m)], True),
    "sweep": (_sweep, True),
    "rerun": (_rerun, False),
    "migrate": (_migrate, True),
    "demo-fetch": (_demo("symbols=[AAPL]"), False),
    "demo-backtest": (_demo("symbol=AAPL"), False),
    "demo-report": (lambda m: ["report=true", f"catalog.path={quote(m['DEMO_CATALOG'])}"], False),
}


def script_argv(target: str, m: MakeVars) -> list[str]:
    """The script's arguments for ``make <target>`` (InputError on a bad value)."""
    if target not in SCRIPT_TARGETS:
        raise InputError(
            f"{TARGET}={shown(target)} is not a make target that runs a script",
            hint=f"one of {', '.join(SCRIPT_TARGETS)}",
        )
    build, common = SCRIPT_TARGETS[target]
    return [*build(m), *(m.common() if common else [])]


def tool_argv(target: str, m: MakeVars) -> list[str]:
    """What ``make test|test-all|bench|sim`` append to their command: sim's port, then ARGS."""
    port = m.integer("SIM_PORT", 7497, 0, 65535) if target == "sim" else None
    return [*(["--port", str(port)] if port is not None else []), *m.args()]


def apply(argv: list[str] | None = None, environ: MutableMapping[str, str] | None = None) -> None:
    """Called by ``make <target>`` (``NTRADER_MAKE_TARGET`` set): put the target's overrides
    before ``argv[1:]`` (default ``sys.argv``) and set the environment the target implies
    (``RUNS`` -> ``NTRADER_RUNS``, migrate's and doctor's ``DSN`` -> ``DATABASE_URL``); the
    ``NTRADER_MAKE_*`` variables are removed first, so a child process is not taken for a make
    target. Config groups are looked up next to the script, as Hydra does
    (``config_path="../conf"``)."""
    argv = sys.argv if argv is None else argv
    env = os.environ if environ is None else environ
    target = env.get(TARGET, "")
    m = MakeVars.from_environ(env, Path(argv[0]).resolve().parent.parent / "conf")
    for name in [k for k in env if k.startswith(PREFIX)]:
        del env[name]
    if not _blank(m["RUNS"]):
        env["NTRADER_RUNS"] = m["RUNS"]
    if target in ("migrate", "doctor") and not _blank(m["DSN"]):
        env["DATABASE_URL"] = m["DSN"]
    argv[1:] = [*script_argv(target, m), *argv[1:]]


def report(exc: InputError) -> None:
    """The two lines every input error prints on stderr."""
    print(f"input error: {exc}", file=sys.stderr)
    if exc.hint:
        print(f"what to do: {exc.hint}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """``python -m ntrader.runs.make_args exec -- CMD…``: exec CMD with the target's extra
    arguments (:func:`tool_argv`), without the ``NTRADER_MAKE_*`` variables."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[:2] != ["exec", "--"]:
        print("usage: python -m ntrader.runs.make_args exec -- CMD [ARG…]", file=sys.stderr)
        return INPUT_ERROR
    try:
        cmd = [*args[2:], *tool_argv(os.environ.get(TARGET, ""), MakeVars.from_environ(os.environ))]
    except InputError as exc:
        report(exc)
        return INPUT_ERROR
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
