"""How to read a CSV file of bars (the ``csv`` group of ``conf/import_csv.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CsvSpec:
    tz: str = "America/New_York"  # zone for naive timestamps (the exchange's)
    label: str = "open"  # "open" | "close": what the CSV timestamp marks
    # explicit role -> header; roles: timestamp, date, time, open, high, low, close, volume,
    # adj_close
    columns: Mapping[str, str] = field(default_factory=dict)
    timestamp_format: str | None = None  # strptime format, None = auto
    epoch_unit: str | None = None  # "s"|"ms"|"us"|"ns", None = auto by magnitude
    delimiter: str | None = None  # None = sniff from the header line
    price_precision: int | None = None  # None = infer (max decimals seen, cap 9)
    size_precision: int | None = None  # None = infer from volume column (cap 9)
    max_errors: int = 20  # how many problems to list
    # import_csv: refuse rows spaced unlike the bar spec (daily rows as 1-minute bars …), from
    # Python as from `make import` (csv.check_spacing); False imports the rows as they are
    check_spacing: bool = True

    @classmethod
    def from_config(cls, csv: Mapping[str, Any], price_precision: int | None = None) -> CsvSpec:
        """From the ``csv`` group of ``conf/import_csv.yaml`` (unset columns are detected)."""
        return cls(
            tz=csv["tz"],
            label=csv["label"],
            columns={k: str(v) for k, v in csv["columns"].items() if v is not None},
            timestamp_format=csv["timestamp_format"],
            epoch_unit=csv["epoch_unit"],
            delimiter=csv["delimiter"],
            max_errors=int(csv["max_errors"]),
            price_precision=price_precision,
            check_spacing=bool(csv.get("check_spacing", True)),
        )
