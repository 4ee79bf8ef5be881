"""Hostile input at every edge: symbols, bar specs, paths, CSV content, config values, ports and
DSNs. Each case runs the script as a user does and asserts the exit code, the message, and that
nothing was written outside the catalog (a listing of the catalog's parent before and after);
a property test feeds ANY string as a symbol to the import."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ntrader.catalog import Catalog
from ntrader.errors import InputError
from ntrader.importing import import_csv
from ntrader.runs.make_args import quote

from .conftest import REPO
from .pg_fixtures import pg_server  # noqa: F401  (the `pg` fixture)
from .test_migrate import COLS, UTC, bars, create_table

SAMPLE = REPO / "data" / "samples" / "AAPL-1min-sample.csv"
HEADER = "timestamp,open,high,low,close,volume\n"
GOOD_ROW = "2024-05-29 09:30:00,190.01,190.03,189.95,190.01,23215\n"


def listing(root: Path, skip: Path) -> dict[str, int]:
    """Every file and directory under ``root`` except ``skip`` (the catalog) and its contents."""
    out: dict[str, int] = {}
    for p in root.rglob("*"):
        if p == skip or skip in p.parents:
            continue
        out[str(p.relative_to(root))] = p.stat().st_size if p.is_file() else -1
    return out


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """``work/`` holds the inputs and, three levels down, the catalog ``work/a/b/cat``."""
    w = tmp_path / "work"
    (w / "a" / "b").mkdir(parents=True)
    shutil.copy(SAMPLE, w / "sample.csv")
    return w


def write_csv(work: Path, name: str, text: str | bytes) -> Path:
    p = work / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def expect(run_script, work: Path, script: str, *args: str, code: int, says: str, env=None):
    cat = work / "a" / "b" / "cat"
    before = listing(work, cat)
    r = run_script(script, f"catalog.path={cat}", *args, env=env)
    assert r.code == code, (r.code, r.stderr[-2500:])
    assert says in r.stderr, r.stderr[-2500:]
    assert listing(work, cat) == before, "something was written outside the catalog"
    summary = r.summary()
    assert summary["exit_code"] == code and says in summary["error"]["message"] + str(
        summary["error"]["hint"]
    )
    return r


# ------------------------------------------------------------------ symbols (import, check, …)
BAD_SYMBOLS = [
    "A/../../../../outside",
    "A/./B",
    "A//B",
    "..",
    "A..B",
    "A\\B",
    "A\nB",
    "X" * 300,
    "' OR 1=1--",
    "a';touch pwned;'",
    "ÄPPLE",
    "A  B",
    " /etc/passwd",
]


@pytest.mark.parametrize("symbol", BAD_SYMBOLS, ids=range(len(BAD_SYMBOLS)))
def test_import_rejects_a_hostile_symbol(run_script, work, symbol):
    r = expect(
        run_script,
        work,
        "import_csv",
        f"csv.path={work / 'sample.csv'}",
        f"symbol={quote(symbol)}",
        code=2,
        says="invalid symbol",
    )
    cat = work / "a" / "b" / "cat"
    assert not cat.exists() or not any(cat.rglob("*.parquet"))
    assert "pwned" not in os.listdir(REPO) and not (work / "pwned").exists()
    assert r.stdout == ""


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("scan", ["symbol='../../x'"]),
        ("scan", ["symbol='x;rm -rf /'"]),
        ("backtest", ["symbol='A/../B'", "ibkr.auto_fetch=false"]),
        (
            "fetch",
            ["symbols=['AAPL','X/../../y']", "dates.start=2024-01-02", "dates.end=2024-01-03"],
        ),
    ],
    ids=["check-dotdot", "check-semicolon", "backtest", "fetch-list"],
)
def test_every_script_rejects_a_hostile_symbol(run_script, work, script, args):
    expect(run_script, work, script, *args, code=2, says="invalid symbol")


# ------------------------------------------------------------------ bar specs
@pytest.mark.parametrize(
    ("bar", "says"),
    [
        ("-5-MINUTE-LAST", "invalid bar spec"),
        ("1-MINUTE-LAST-INTERNAL", "EXTERNAL"),
        ("1-MIN", "invalid bar spec"),
        ("0-MINUTE-LAST", "step 1.."),
        ("1-WEEK-LAST", "aggregation one of"),
        ("1-MINUTE-LAST/../../x", "invalid bar spec"),
    ],
)
def test_import_rejects_a_bad_bar_spec(run_script, work, bar, says):
    expect(
        run_script,
        work,
        "import_csv",
        f"csv.path={work / 'sample.csv'}",
        "symbol=AAPL",
        f"bars.spec={quote(bar)}",
        code=2,
        says=says,
    )


# ------------------------------------------------------------------ paths
def test_csv_path_that_is_a_directory(run_script, work):
    expect(
        run_script, work, "import_csv", f"csv.path={work}", "symbol=AAPL", code=2, says="not a file"
    )


def test_csv_path_that_does_not_exist(run_script, work):
    missing = work / "nope.csv"
    expect(
        run_script,
        work,
        "import_csv",
        f"csv.path={missing}",
        "symbol=AAPL",
        code=2,
        says="not found",
    )


def test_csv_path_that_is_empty(run_script, work):
    empty = write_csv(work, "empty.csv", "")
    expect(run_script, work, "import_csv", f"csv.path={empty}", "symbol=AAPL", code=2, says="empty")


def test_csv_path_that_is_a_device(run_script, work):
    args = ["csv.path=/dev/null", "symbol=AAPL"]
    expect(run_script, work, "import_csv", *args, code=2, says="not a file")


# ------------------------------------------------------------------ CSV content
CSV_CASES = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, "not a CSV text file"),
    "utf16": (HEADER.encode("utf-16"), "not a CSV text file"),
    "long-header": ("timestamp,open," + "x" * 70_000 + "\n", "longer than 65,536 bytes"),
    "long-line": (
        HEADER + GOOD_ROW + "2024-05-29 09:31:00,1,1,1," + "9" * 10_000_000 + ",1\n",
        "bytes long",
    ),
    "nan-price": (HEADER + "2024-05-29 09:30:00,nan,1,1,1,1\n", "problem"),
    "inf-price": (HEADER + "2024-05-29 09:30:00,inf,inf,inf,inf,1\n", "problem"),
    "negative-volume": (HEADER + "2024-05-29 09:30:00,1,1,1,1,-5\n", "problem"),
    "high-below-low": (HEADER + "2024-05-29 09:30:00,1,0.5,2,1,1\n", "problem"),
    "garbage-time": (HEADER + "yesterday-ish,1,1,1,1,1\n", "timestamp"),
    "formula-cell": (HEADER + "2024-05-29 09:30:00,=cmd|' /C calc'!A0,1,1,1,1\n", "problem"),
    "nul-in-cell": (HEADER + "2024-05-29 09:30:00,1\x00,1,1,1,1\n", "not a CSV text file"),
    "header-only": (HEADER, "no data rows"),
    "missing-column": (
        "timestamp,open,high,low,volume\n2024-05-29 09:30:00,1,1,1,1\n",
        "missing required column",
    ),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_hostile_csv_content(run_script, work, case):
    content, says = CSV_CASES[case]
    path = write_csv(work, f"{case}.csv", content)
    expect(run_script, work, "import_csv", f"csv.path={path}", "symbol=AAPL", code=2, says=says)


# ------------------------------------------------------------------ config values and ports
@pytest.mark.parametrize(
    ("script", "args", "says"),
    [
        ("import_csv", ["mode=bogus", "symbol=AAPL"], "conflict mode"),
        ("import_csv", ["csv.tz=Mars/Base", "symbol=AAPL"], "time zone"),
        ("import_csv", ["csv.delimiter=ab", "symbol=AAPL"], "delimiter"),
        ("scan", ["format=xml"], "unknown format"),
        ("scan", ["symbol=AAPL", "start=2024-13-45"], "is not a date"),
        ("scan", ["symbol=AAPL", "check.hours=weird"], "hours"),
        (
            "backtest",
            ["symbol=AAPL", "dates.start=2024-06-04", "dates.end=2024-05-29"],
            "is after END",
        ),
        (
            "fetch",
            ["symbols=[AAPL]", "dates.start=2024-06-04", "dates.end=2024-05-29"],
            "is after END",
        ),
        (
            "fetch",
            ["symbols=[AAPL]", "dates.start=2024-05-29", "dates.end=2024-05-29", "ibkr.port=70000"],
            "invalid IBKR port",
        ),
        (
            "fetch",
            [
                "symbols=[AAPL]",
                "dates.start=2024-05-29",
                "dates.end=2024-05-29",
                "ibkr.client_id=abc",
            ],
            "invalid IBKR setting",
        ),
        (
            "fetch",
            ["symbols=[AAPL]", "dates.start=2024-05-29", "dates.end=2024-05-29", "ibkr.retries=0"],
            "retries",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_config_values(run_script, work, script, args, says):
    extra = [f"csv.path={work / 'sample.csv'}"] if script == "import_csv" else []
    expect(run_script, work, script, *extra, *args, code=2, says=says)


def test_ibkr_port_from_the_environment_that_is_not_a_port(run_script, work):
    args = ["symbols=[AAPL]", "dates.start=2024-05-29", "dates.end=2024-05-29"]
    env = {"IBKR_PORT": "notaport"}
    expect(run_script, work, "fetch", *args, code=2, says="invalid IBKR setting", env=env)


def test_backtest_with_a_bad_account_type(run_script, work):
    cat = work / "a" / "b" / "cat"
    import_csv(Catalog(cat), work / "sample.csv", "AAPL")
    args = [
        "symbol=AAPL",
        "dates.start=2024-05-29",
        "dates.end=2024-05-31",
        "venue.account_type=BOGUS",
    ]
    expect(run_script, work, "backtest", *args, code=2, says="unknown account type")


# ------------------------------------------------------------------ DSNs and legacy rows
def test_dsn_to_a_closed_port_is_a_connection_error_without_the_password(run_script, work):
    env = {"DATABASE_URL": "postgresql://u:Mk4$Dollar9'x@127.0.0.1:1/db"}
    r = expect(run_script, work, "migrate", code=3, says="", env=env)
    assert "Mk4$Dollar9" not in r.stderr + r.stdout + str(r.summary())


def test_dsn_that_is_not_a_dsn(run_script, work):
    expect(
        run_script, work, "migrate", code=2, says="DSN", env={"DATABASE_URL": "not a dsn;rm -rf"}
    )


def test_table_name_injection_is_an_identifier_not_sql(pg, run_script, work):
    dsn = pg.dsn(database=pg.fresh_db())
    create_table(pg, dsn)
    pg.load(dsn, "market_data", COLS, bars("AAPL", dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC), 5))
    table = "market_data; DROP TABLE market_data"
    expect(
        run_script,
        work,
        "migrate",
        f"source.table={quote(table)}",
        code=2,
        says="not found",
        env={"DATABASE_URL": dsn},
    )
    assert pg.execute(dsn, "SELECT count(*) FROM market_data") == [(5,)]


def test_a_hostile_symbol_in_a_legacy_row_is_rejected_and_the_rest_migrates(pg, run_script, work):
    dsn = pg.dsn(database=pg.fresh_db())
    create_table(pg, dsn)
    start = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    pg.load(
        dsn, "market_data", COLS, [*bars("X/../../../../PWNED", start, 5), *bars("AAPL", start, 5)]
    )
    cat = work / "a" / "b" / "cat"
    before = listing(work, cat)
    r = run_script("migrate", f"catalog.path={cat}", env={"DATABASE_URL": dsn})
    assert r.code == 0, r.stderr[-2000:]
    assert "invalid symbol" in r.stdout and "X/../../../../PWNED" in r.stdout
    assert listing(work, cat) == before
    assert Catalog(cat).availability("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL").rows == 5
    assert not any("PWNED" in str(p) for p in cat.rglob("*"))


# ------------------------------------------------------------------ property: any symbol
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    symbol=st.one_of(
        st.text(max_size=40),
        st.text(alphabet=st.sampled_from(list("AZaz09./\\- _~:$'\"\x00\n")), max_size=30),
        st.sampled_from(["BRK.B", "BRK B", "BRK-B", "aapl", "A1.NYSE", "SPY.ARCA"]),
    )
)
def test_any_symbol_is_rejected_or_written_only_under_the_catalog(tmp_path_factory, symbol):
    work = tmp_path_factory.mktemp("prop")
    cat = work / "a" / "b" / "cat"
    cat.parent.mkdir(parents=True)
    shutil.copy(SAMPLE, work / "sample.csv")
    before = listing(work, cat)
    try:
        import_csv(Catalog(cat), work / "sample.csv", symbol)
    except InputError as exc:
        assert "invalid" in exc.message
    else:
        (bar_dir,) = (cat / "data" / "bar").iterdir()
        assert bar_dir.parent == cat / "data" / "bar" and any(bar_dir.glob("*.parquet"))
    assert listing(work, cat) == before
    for p in cat.rglob("*") if cat.exists() else []:
        assert Path(os.path.realpath(p)).is_relative_to(os.path.realpath(cat))


@pytest.mark.parametrize("script", ["scan", "import_csv"])
def test_catalog_that_is_a_regular_file(run_script, work, script):
    not_a_dir = write_csv(work, "catalog.txt", "I am a file\n")
    before = listing(work, work / "none")
    extra = [f"csv.path={work / 'sample.csv'}", "symbol=AAPL"] if script == "import_csv" else []
    r = run_script(script, f"catalog.path={not_a_dir}", *extra)
    assert r.code == 2 and "is a file, not a directory" in r.stderr, r.stderr[-2000:]
    assert listing(work, work / "none") == before and not_a_dir.read_text() == "I am a file\n"
