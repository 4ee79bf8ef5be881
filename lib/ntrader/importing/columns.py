"""Column detection for CSV bar files: the header line, delimiter sniffing and header aliases.

Maps each role (timestamp or date + time, open, high, low, close, volume) to a column index, from
explicit ``csv.columns`` mappings first and the accepted header names (:data:`ALIASES`) otherwise.
A first column without a header (a pandas index, ``df.to_csv()``) is the timestamp column when it
holds dates or date-times and no other column is a timestamp.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from ntrader.errors import InputError
from ntrader.importing.timestamps import timestamp_kind

__all__ = [
    "ALIASES",
    "DELIMITERS",
    "PRICE_ROLES",
    "ROLES",
    "UnnamedTimestampColumn",
    "column_label",
    "column_probe",
    "hydra_value",
    "normalize_header",
    "read_header",
    "resolve_columns",
]

PRICE_ROLES = ("open", "high", "low", "close")
ROLES = ("timestamp", "date", "time", "open", "high", "low", "close", "volume", "adj_close")
DELIMITERS = (",", ";", "\t", "|")

# Accepted header names per role, after normalization (lower case, trimmed, "_" -> " ",
# whitespace collapsed, "<...>" brackets removed). Earlier names win when several are present.
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "datetime",
        "date time",
        "date/time",
        "time stamp",
        "ts",
        "dt",
        "gmt time",
        "local time",
        "utc time",
        "open time",
    ),
    "date": ("date", "day", "trade date"),
    "time": ("time",),
    "open": ("open", "o", "open price"),
    "high": ("high", "h", "high price"),
    "low": ("low", "l", "low price"),
    "close": ("close", "c", "last", "close/last", "close price", "last price"),
    "volume": ("volume", "vol", "v", "tickvol", "tick volume"),
    # optional: split- and dividend-adjusted closes next to the closes -> dividend factors
    "adj_close": ("adj close", "adjusted close", "adj. close", "adjclose", "adjusted close price"),
}

_MAPPING_HINT = (
    "map a column explicitly with config csv.columns.<role>=<header> "
    "(roles: timestamp, date, time, open, high, low, close, volume, adj_close), "
    'e.g. csv.columns.close="Adj Close"'
)


def normalize_header(header: str) -> str:
    """A header as matched against :data:`ALIASES`."""
    text = header.strip().strip('"').strip().lower()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    text = text.replace("_", " ")
    return re.sub(r"\s+", " ", text).strip()


def _is_unnamed(header: str) -> bool:
    norm = normalize_header(header)
    return norm == "" or re.fullmatch(r"unnamed: ?\d+", norm) is not None


def column_label(names: list[str], i: int) -> str:
    """Column ``i`` as messages name it: its header, or ``(unnamed column N)``."""
    return f"(unnamed column {i + 1})" if not names[i].strip() else names[i]


class UnnamedTimestampColumn(InputError):
    """No timestamp column, but a column without a header holds timestamps that are not taken
    on a guess (epoch integers, or a column other than the first). ``overrides`` (config key ->
    value) names it: ``csv.columns.timestamp`` = its header, empty for a blank one."""

    def __init__(self, message: str, advice: str, overrides: dict[str, str]) -> None:
        named = " ".join(f"{k}={hydra_value(v)}" for k, v in overrides.items())
        super().__init__(message, f"{advice}: {named}")
        self.advice = advice
        self.overrides = overrides


_PLAIN = re.compile(r"[A-Za-z0-9_./%:@+\-]+(?: [A-Za-z0-9_./%:@+\-]+)*")
_NUMBER = re.compile(r"[+-]?(?:\d[\d_]*)?(?:\.\d*)?(?:[eE][+-]?\d+)?")
_KEYWORDS = ("true", "false", "null", "nan", "inf", "+inf", "-inf")
_DQUOTE_FIX = re.compile(r'(\\*)("|\$\{|\Z)')


def hydra_value(value: str) -> str:
    """``value`` as a Hydra override value that reads back as exactly this string: plain when
    Hydra takes it as is, ``''`` when empty, else double-quoted (no ``${…}`` interpolation)."""
    if value == "":
        return "''"
    if _PLAIN.fullmatch(value) and not _NUMBER.fullmatch(value) and value.lower() not in _KEYWORDS:
        return value

    def fix(m: re.Match[str]) -> str:  # backslashes count only before a quote, ${ and the end
        bs, nxt = m.group(1), m.group(2)
        if nxt == '"':
            return bs * 2 + '\\"'
        if nxt == "${":
            return bs * 2 + "\\${"
        return bs * 2

    return '"' + _DQUOTE_FIX.sub(fix, value) + '"'


def _looks_like_value(text: str) -> bool:
    text = text.strip()
    return (
        bool(text)
        and bool(re.search(r"\d", text))
        and re.fullmatch(r"[\d\s.,:/+\-TZ$]+", text) is not None
    )


MAX_HEADER_BYTES = 65_536  # a header naming a few columns is far shorter


def read_header(data: bytes, path: Path, delimiter: str | None) -> tuple[list[str], str]:
    """(header names, delimiter) of the file's first line; ``delimiter`` None = sniff it."""
    first = re.split(rb"\r\n|\r|\n", data[: MAX_HEADER_BYTES + 1], maxsplit=1)[0]
    if len(first) > MAX_HEADER_BYTES:
        raise InputError(
            f"{path}: the first line is longer than {MAX_HEADER_BYTES:,} bytes: not a header line",
            hint="the first line must name the columns, e.g. timestamp,open,high,low,close,volume",
        )
    text = first.decode("utf-8", errors="replace")
    if not text.strip():
        raise InputError(
            f"{path}: the first line is blank; expected a header line",
            hint="the first line must name the columns, e.g. timestamp,open,high,low,close,volume",
        )
    if delimiter is not None:
        delim = "\t" if delimiter.lower() in ("tab", "\\t") else delimiter
    else:
        counts = {d: text.count(d) for d in DELIMITERS}
        delim = max(DELIMITERS, key=lambda d: counts[d])
        if counts[delim] == 0:
            delim = ","
    names = next(csv.reader([text], delimiter=delim))
    return [n.strip() for n in names], delim


PROBE_BYTES = 1 << 18  # the head of the file a column's first cells are judged from
PROBE_ROWS = 100


def column_probe(
    data: bytes, delim: str, timestamp_format: str | None, epoch_unit: str | None
) -> Callable[[int], str | None]:
    """``probe(i)``: what column ``i``'s first cells hold (``timestamps.timestamp_kind``)."""
    rows: list[list[str]] = []
    loaded = False

    def probe(i: int) -> str | None:
        nonlocal loaded
        if not loaded:
            loaded = True
            head = data[:PROBE_BYTES]
            if len(data) > PROBE_BYTES:  # drop the cut last line
                head = head[: head.rfind(b"\n") + 1]
            try:
                reader = csv.reader(io.StringIO(head.decode("utf-8", "replace")), delimiter=delim)
                next(reader, None)  # the header line
                for row in reader:
                    rows.append(row)
                    if len(rows) >= PROBE_ROWS:
                        break
            except csv.Error:
                rows.clear()
        return timestamp_kind([r[i] for r in rows if len(r) > i], timestamp_format, epoch_unit)

    return probe


def resolve_columns(
    names: list[str],
    columns: Mapping[str, str],
    path: Path,
    delim: str,
    probe: Callable[[int], str | None] | None = None,
) -> tuple[dict[str, int], list[str]]:
    """(role -> column index, ignored headers) from explicit ``columns`` (role -> header) and
    the aliases; InputError naming the headers found when a required role has no column.

    ``probe(i)`` says what column ``i``'s first cells hold (``timestamps.timestamp_kind``): with
    no timestamp, date or time column, an unnamed FIRST column of dates or date-times is the
    timestamp (a pandas index); an unnamed column of epoch integers, or another unnamed column of
    timestamps, is named in an :class:`UnnamedTimestampColumn` error instead of taken on a
    guess."""
    norms = [normalize_header(n) for n in names]
    roles: dict[str, int] = {}
    for role, header in columns.items():
        if role not in ROLES:
            raise InputError(
                f"unknown column role {role!r} in csv.columns",
                hint=f"roles are: {', '.join(ROLES)}",
            )
        wanted = normalize_header(str(header))
        matches = [i for i, n in enumerate(names) if n == header] or [
            i for i, n in enumerate(norms) if n == wanted
        ]
        if not matches:
            raise InputError(
                f"{path}: csv.columns.{role}={header!r} but the header has no such column; "
                f"headers found: {names}",
                hint="use one of the headers found (matched case-insensitively)",
            )
        roles[role] = matches[0]
    taken = set(roles.values())

    def find(role: str) -> int | None:
        for alias in ALIASES[role]:
            for i, n in enumerate(norms):
                if n == alias and i not in taken:
                    return i
        return None

    explicit_ts = {"timestamp", "date", "time"} & roles.keys()
    if not explicit_ts:
        found = find("timestamp")
        if found is not None:
            roles["timestamp"] = found
        else:
            for role in ("date", "time"):
                found = find(role)
                if found is not None:
                    roles[role] = found
    elif "timestamp" not in roles:
        for role in ("date", "time"):
            if role not in roles:
                found = find(role)
                if found is not None:
                    roles[role] = found
    if "timestamp" not in roles:
        if "date" in roles and "time" not in roles:
            roles["timestamp"] = roles.pop("date")
        elif "time" in roles and "date" not in roles:
            roles["timestamp"] = roles.pop("time")
    else:
        roles.pop("date", None)
        roles.pop("time", None)
    kinds: dict[int, str | None] = {}

    def kind(i: int) -> str | None:
        if i not in kinds:
            kinds[i] = probe(i) if probe is not None else None
        return kinds[i]

    if (
        not {"timestamp", "date", "time"} & roles.keys()
        and names
        and _is_unnamed(names[0])
        and 0 not in roles.values()
        and kind(0) == "datetime"
    ):
        roles["timestamp"] = 0
    taken = set(roles.values())
    for role in (*PRICE_ROLES, "volume", "adj_close"):
        if role not in roles:
            found = find(role)
            if found is not None:
                roles[role] = found
                taken.add(found)

    missing = [r for r in ("timestamp", *PRICE_ROLES, "volume") if r not in roles]
    if "timestamp" in missing and "date" in roles:
        missing.remove("timestamp")
    if missing:
        if len(names) == 1:
            shown = repr(names[0]) if len(names[0]) <= 80 else repr(names[0][:79] + "…")
            raise InputError(
                f"{path}: the header line has a single column {shown} when split on "
                f"{delim!r}; the delimiter is probably wrong",
                hint="set the delimiter explicitly with config csv.delimiter (one of , ; tab |)",
            )
        if sum(_looks_like_value(n) for n in names) * 2 >= len(names):
            raise InputError(
                f"{path}: no header line: the first line looks like data ({','.join(names)[:80]})",
                hint="add a header line, e.g. timestamp,open,high,low,close,volume",
            )
        accepted = "; ".join(f"{r}: {', '.join(ALIASES[r])}" for r in ALIASES)
        message = (
            f"{path}: missing required column(s): {', '.join(missing)}; headers found: "
            f"{names}; accepted names (case-insensitive) — {accepted}"
        )
        if "timestamp" in missing:
            _unnamed_timestamp(names, roles, kind, message)
        raise InputError(message, hint=_MAPPING_HINT)
    return roles, [
        names[i] if not _is_unnamed(names[i]) else f"(unnamed column {i + 1})"
        for i in range(len(names))
        if i not in set(roles.values()) and not (i == 0 and _is_unnamed(names[i]))
    ]


def _unnamed_timestamp(
    names: list[str], roles: Mapping[str, int], kind: Callable[[int], str | None], message: str
) -> None:
    """Raise :class:`UnnamedTimestampColumn` when an unused column without a header holds
    timestamps and ``csv.columns.timestamp=<its header>`` would select it (the first column of
    that header)."""
    used = set(roles.values())
    for i, name in enumerate(names):
        if i in used or not _is_unnamed(name) or names.index(name) != i:
            continue
        what = kind(i)
        if what is None:
            continue
        holds = "epoch integers" if what == "epoch" else "dates or date-times"
        raise UnnamedTimestampColumn(
            f"{message}. Column {i + 1} has no header ({name!r}) and holds {holds}",
            advice=f"if column {i + 1} holds the bar timestamps, name it",
            overrides={"csv.columns.timestamp": name},
        )
