"""Malformed CSV files as data, shared by the unit tests of ``ntrader.importing.reader`` and the
end-to-end tests of the import script (expect exit code 2 and an untouched catalog).

Every case is self-contained: the file content, the reader settings it needs (``spec``: keyword
arguments of ``CsvSpec``, i.e. config keys ``csv.<key>``), the expected message fragment and the
expected FILE line numbers of the problems (header = line 1; empty for file-level errors, which
raise ``InputError`` rather than ``CsvValidationError``). Bars are 1-minute bars unless the case
says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MINUTE_NS = 60_000_000_000
HEADER = "timestamp,open,high,low,close,volume\n"


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes
    message_contains: str
    lines: list[int]
    spec: dict[str, Any] = field(default_factory=dict)
    bar_interval_ns: int = MINUTE_NS
    calendar_days: int = 0

    @property
    def file_level(self) -> bool:
        """True when the whole file is rejected (``InputError``, no line numbers)."""
        return not self.lines

    def write(self, directory: Path, name: str | None = None) -> Path:
        path = directory / (name or f"{self.id}.csv")
        if isinstance(self.text, bytes):
            path.write_bytes(self.text)
        else:
            path.write_bytes(self.text.encode("utf-8"))
        return path


def _rows(*rows: str) -> str:
    return HEADER + "".join(r + "\n" for r in rows)


R1 = "2024-01-02 09:30:00,100.00,101.00,99.50,100.50,1000"
R2 = "2024-01-02 09:31:00,100.50,101.20,100.10,101.00,1200"
R3 = "2024-01-02 09:32:00,101.00,101.50,100.80,101.30,900"
R4 = "2024-01-02 09:33:00,101.30,101.40,100.90,101.10,800"

CASES: list[Case] = [
    Case(
        "missing_volume_column",
        "timestamp,open,high,low,close\n2024-01-02 09:30:00,100,101,99,100.5\n",
        "missing required column(s): volume",
        [],
    ),
    Case(
        "no_header",
        R1 + "\n" + R2 + "\n",
        "no header line",
        [],
    ),
    Case("empty_file", "", "empty", []),
    Case("whitespace_only_file", "\n\n  \n", "empty", []),
    Case("header_only", HEADER, "no data rows", []),
    Case(
        "unparseable_price",
        _rows(R1, "2024-01-02 09:31:00,100.50,abc,100.10,101.00,1200", R3),
        "cannot parse 'abc'",
        [3],
    ),
    Case(
        "empty_cell",
        _rows(R1, R2, "2024-01-02 09:32:00,101.00,101.50,,101.30,900"),
        "low: missing value",
        [4],
    ),
    Case(
        "unparseable_timestamp",
        _rows(R1, "2024-01-02 09:3x:00,100.50,101.20,100.10,101.00,1200", R3),
        "cannot parse timestamp",
        [3],
    ),
    Case(
        "high_below_low",
        _rows(R1, R2, "2024-01-02 09:32:00,101.00,100.70,100.80,100.75,900"),
        "high < low",
        [4],
    ),
    Case(
        "high_below_open_close",
        _rows(R1, "2024-01-02 09:31:00,100.50,101.00,100.10,101.10,1200"),
        "high < max(open, close)",
        [3],
    ),
    Case(
        "low_above_open_close",
        _rows("2024-01-02 09:30:00,100.00,101.00,100.20,100.50,1000", R2),
        "low > min(open, close)",
        [2],
    ),
    Case(
        "zero_price",
        _rows(R1, R2, "2024-01-02 09:32:00,0,101.50,0,101.30,900"),
        "non-positive price",
        [4],
    ),
    Case(
        "negative_price",
        _rows("2024-01-02 09:30:00,-1.00,1.00,-2.00,0.50,1000", R2),
        "non-positive price",
        [2],
    ),
    Case(
        "negative_volume",
        _rows(R1, "2024-01-02 09:31:00,100.50,101.20,100.10,101.00,-5"),
        "negative volume",
        [3],
    ),
    Case(
        "duplicate_timestamp",
        _rows(R1, R2, R2.replace("1200", "1300"), R3),
        "duplicate timestamp",
        [4],
    ),
    Case(
        "out_of_order_timestamp",
        _rows(R1, R3, R2, R4),
        "out of order",
        [4],
    ),
    Case(
        "blank_line_in_middle",
        _rows(R1, R2, "", R3, R4),
        "blank line",
        [4],
    ),
    Case(
        "wrong_delimiter_single_column",
        HEADER.replace(",", ";") + R1.replace(",", ";") + "\n",
        "single column",
        [],
        spec={"delimiter": ","},
    ),
    Case(
        "too_few_fields",
        _rows(R1, "2024-01-02 09:31:00,100.50,101.20,100.10,101.00", R3),
        "expected 6 fields, found 5",
        [3],
    ),
    Case(
        "too_many_fields",
        _rows(R1, R2, R3 + ",7", R4),
        "expected 6 fields, found 7",
        [4],
    ),
    Case(
        "nonexistent_dst_local_time",
        _rows(
            "2024-03-10 01:58:00,100.00,101.00,99.50,100.50,1000",
            "2024-03-10 01:59:00,100.50,101.20,100.10,101.00,1200",
            "2024-03-10 02:30:00,101.00,101.50,100.80,101.30,900",
            "2024-03-10 03:00:00,101.30,101.40,100.90,101.10,800",
        ),
        "nonexistent local time",
        [4],
        spec={"tz": "America/New_York"},
    ),
    Case(
        "ambiguous_dst_local_time",
        _rows(
            "2024-11-03 00:59:00,100.00,101.00,99.50,100.50,1000",
            "2024-11-03 01:30:00,100.50,101.20,100.10,101.00,1200",
            "2024-11-03 02:00:00,101.00,101.50,100.80,101.30,900",
        ),
        "ambiguous local time",
        [3],
        spec={"tz": "America/New_York"},
    ),
    Case(
        "na_in_volume",
        _rows(R1, R2, "2024-01-02 09:32:00,101.00,101.50,100.80,101.30,N/A"),
        "cannot parse 'N/A'",
        [4],
    ),
    Case(
        "precision_exceeds_setting",
        _rows(R1, "2024-01-02 09:31:00,100.50,101.205,100.10,101.00,1200"),
        "more than price_precision=2",
        [3],
        spec={"price_precision": 2},
    ),
    Case(
        "mixed_timestamp_formats",
        _rows(R1, "01/02/2024 09:31:00,100.50,101.20,100.10,101.00,1200", R3),
        "cannot parse timestamp '01/02/2024 09:31:00'",
        [3],
    ),
    Case(
        "binary_garbage",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4,
        "not a CSV text file",
        [],
    ),
    Case(
        "several_problems_sorted_by_line",
        _rows(
            "2024-01-02 09:30:00,100.00,99.00,99.50,100.50,1000",
            R2,
            "2024-01-02 09:32:00,101.00,101.50,100.80,101.30,-1",
            "2024-01-02 09:32:00,101.00,101.50,100.80,101.30,5",
        ),
        "high < max(open, close)",
        [2, 4, 5],
    ),
    Case(
        "unknown_column_mapping",
        _rows(R1),
        "no such column",
        [],
        spec={"columns": {"close": "Adj Close"}},
    ),
    Case(
        "every_row_has_extra_fields",
        _rows(R1 + ",EXTRA", R2 + ",EXTRA"),
        "expected 6 fields, found 7",
        [2, 3],
    ),
]

assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
