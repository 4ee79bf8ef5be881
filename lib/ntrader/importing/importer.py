"""CSV file -> catalog: parse and validate (``reader``), then write under the conflict mode.

An import refuses rows spaced unlike its bar spec (``CsvSpec.check_spacing``): coarser rows pass
only as a series with gaps the catalog already holds at the spec's spacing over the same range.
Its errors suggest the ``make import …`` command that fixes them, complete and pasteable into a
POSIX shell: CSV, SYMBOL, BAR, MODE, a CATALOG other than the default and the ``csv.*`` settings
as ``ARGS`` (values quoted for the shell; ``ARGS`` is split as a shell splits words).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from loguru import logger
from tqdm import tqdm

from ntrader.catalog.catalog import Catalog, WriteResult
from ntrader.catalog.conflict import check_mode
from ntrader.catalog.inventory import iso
from ntrader.catalog.store import resolve_location
from ntrader.errors import InputError
from ntrader.importing.adjusted import factors_from_csv
from ntrader.importing.columns import UnnamedTimestampColumn, hydra_value
from ntrader.importing.reader import CsvSpec, read_csv_bars
from ntrader.importing.validation import Spacing, describe_step, modal_step, spec_for_step
from ntrader.symbols import bar_type_text, instrument_id_text, instrument_of, spec_of, spec_step

if TYPE_CHECKING:  # the import path never imports NautilusTrader unless it creates an instrument
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.instruments import Instrument

DEFAULT_BAR = "1-MINUTE-LAST"  # conf/bars/minute.yaml: what `make import` uses without BAR=
PROGRESS_MIN_BYTES = 20_000_000  # show progress bars (on a terminal) from ~400k rows up


@dataclass(frozen=True)
class ImportReport:
    csv: str
    bar_type: str
    rows_read: int
    first: str | None
    last: str | None
    columns: dict[str, str]
    ignored_columns: list[str]
    write: WriteResult
    factors: dict[str, object] | None = None  # from an Adj Close column: the version kept

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["write"] = self.write.as_dict()
        return out

    def counts(self) -> dict[str, int]:
        """The ``counts`` of ``summary.json``."""
        w = self.write
        return {
            "rows_read": self.rows_read,
            "rows_added": w.rows_added,
            "rows_replaced": w.rows_replaced,
            "rows_removed": w.rows_removed,
            "rows_skipped": w.rows_skipped,
            "files_written": w.files_written,
            "bytes_written": w.bytes_written,
        }

    def render(self, catalog_url: str, seconds: float) -> str:
        """What an import prints: rows read/added/replaced/removed/skipped, range, files, speed."""
        w = self.write
        skipped = f"{w.rows_skipped:,}"
        if w.rows_skipped:
            skipped += " (already in the catalog; MODE=merge or MODE=overwrite replaces them)"
        created = " · instrument created" if w.instrument_created else ""
        rate = self.rows_read / max(seconds, 1e-9)
        f = self.factors
        factors = (
            f"\n  dividend factors from {self.columns.get('adj_close')}: v{f['version']} "
            f"({'new version' if f['new_version'] else 'unchanged'}; {f['dividends']} "
            f"dividend(s) in {f['first']} .. {f['last']})"
            if f
            else ""
        )
        return (
            f"Imported {self.csv} -> {self.bar_type} (catalog {catalog_url})\n"
            f"  rows read {self.rows_read:,} · added {w.rows_added:,} · replaced "
            f"{w.rows_replaced:,} · removed {w.rows_removed:,} · skipped {skipped}\n"
            f"  range {self.first} .. {self.last}\n"
            f"  files written {w.files_written} ({w.bytes_written:,} bytes), replaced "
            f"{w.files_removed}{created}\n"
            f"  {seconds:.2f} s ({rate:,.0f} rows/s)"
            f"{factors}"
        )


def import_csv(
    catalog: Catalog,
    path: str | os.PathLike[str],
    instrument_id: InstrumentId | str,
    bar_type: BarType | str | None = None,
    *,
    mode: str = "skip",
    spec: CsvSpec | None = None,
    price_precision: int | None = None,
) -> ImportReport:
    """Import one CSV file of bars for ``bar_type``; the catalog is untouched if it is invalid.

    ``instrument_id``: an ``InstrumentId``, ``AAPL.NASDAQ`` or a bare ``AAPL`` (default venue);
    ``bar_type`` defaults to its 1-minute bars."""
    check_mode(mode)  # before the file is read
    instrument_id = instrument_id_text(str(instrument_id))  # validated, as text
    bar_type = (
        bar_type_text(instrument_of(bar_type), spec_of(bar_type))
        if bar_type
        else bar_type_text(instrument_id, "1-MINUTE-LAST")
    )
    spec = csv_spec = spec or CsvSpec()
    csv_path = Path(path)
    if csv_path.exists() and not csv_path.is_file():
        raise InputError(f"not a file: {csv_path}", hint="give the path of a CSV file (CSV=…)")
    if not csv_path.is_file():
        raise InputError(f"CSV file not found: {csv_path}", hint="check the CSV=… path")
    step = spec_step(bar_type)
    bar_spec = spec_of(bar_type)

    def command(overrides: Mapping[str, object] | None = None, bar: str | None = None) -> str:
        return make_import_command(
            csv_path,
            instrument_id,
            bar or bar_spec,
            catalog,
            mode=mode,
            spec=csv_spec,
            price_precision=price_precision,
            overrides=overrides,
            show_bar=bar is not None,
        )

    def judge(spacing: Spacing) -> None:
        verdict = spacing.verdict
        if verdict in ("ok", "unknown"):
            return
        if verdict == "coarser" and _catalog_has_spacing(catalog, bar_type, spacing):
            logger.info(
                f"rows are {describe_step(spacing.step_ns or 0)} apart: read as {bar_spec} bars "
                f"with gaps, as {bar_type} already holds bars {describe_step(spacing.expected_ns)} "
                "apart over the same range"
            )
            return
        raise _spacing_error(csv_path, spacing, bar_spec, command)

    size = csv_path.stat().st_size
    show = sys.stderr.isatty() and size >= PROGRESS_MIN_BYTES
    progress = tqdm(
        total=size, unit="B", unit_scale=True, desc=f"parse {csv_path.name}", disable=not show
    )
    with progress:
        try:
            parsed = read_csv_bars(
                csv_path,
                bar_interval_ns=step.interval_ns,
                calendar_days=step.calendar_days,
                spec=spec,
                on_spacing=judge if spec.check_spacing else None,
            )
        except UnnamedTimestampColumn as exc:
            raise InputError(exc.message, hint=f"{exc.advice}: {command(exc.overrides)}") from None
        progress.update(size)
    bars = parsed.bars
    logger.info(
        f"read {parsed.rows_read:,} rows from {csv_path.name} "
        f"(columns: {', '.join(f'{k}={v}' for k, v in parsed.columns.items())})"
    )
    if parsed.ignored_columns:
        logger.info(f"ignored columns: {', '.join(parsed.ignored_columns)}")
    precision = bars.price_precision if price_precision is None else int(price_precision)
    if price_precision is not None and bars.price_precision > precision:
        raise InputError(
            f"the CSV has prices with {bars.price_precision} decimals but price_precision="
            f"{precision} was asked for",
            hint="drop the price_precision override or round the data",
        )

    def instrument() -> Instrument:  # only when the catalog does not hold it yet
        from ntrader.instruments import make_equity, resolve_instrument_id

        return make_equity(resolve_instrument_id(instrument_id), precision)

    stored = None
    if parsed.adjusted is not None:  # checked before anything is written
        stored = factors_from_csv(
            catalog,
            instrument_id,
            bars,
            parsed.adjusted,
            spec.tz,
            f"csv: {csv_path.name} Adj Close",
        )
    with tqdm(total=len(bars), unit="bar", unit_scale=True, desc="write", disable=not show) as p:
        result = catalog.write_bars(bar_type, bars, mode=mode, instrument=instrument)
        p.update(len(bars))
    return ImportReport(
        csv=str(csv_path),
        bar_type=str(bar_type),
        rows_read=parsed.rows_read,
        first=iso(bars.first_ns, spec.tz, daily=step.daily) if len(bars) else None,
        last=iso(bars.last_ns, spec.tz, daily=step.daily) if len(bars) else None,
        columns=dict(parsed.columns),
        ignored_columns=list(parsed.ignored_columns),
        write=result,
        factors=None if stored is None else {**stored.series.summary(), "new_version": stored.new},
    )


# --------------------------------------------------------------------------------------------
# spacing


class SpacingMismatch(InputError):
    """The rows are spaced unlike the bar spec (``spacing``); ``suggested`` is the bar spec of
    their spacing, None when no spec has that step."""

    def __init__(self, message: str, hint: str, spacing: Spacing, suggested: str | None) -> None:
        super().__init__(message, hint)
        self.spacing = spacing
        self.suggested = suggested


def _catalog_has_spacing(catalog: Catalog, bar_type: str, spacing: Spacing) -> bool:
    """The catalog already holds ``bar_type`` over the rows' range at the spec's spacing: the
    coarser rows are that series with gaps (a patch), not bars of another size."""
    held = catalog.read_ts_event(bar_type, spacing.first_ns, spacing.last_ns)
    step, count, counts = modal_step(np.unique(held))
    expected = spacing.expected_ns
    return step is not None and (step == expected or 2 * counts.get(expected, 0) >= count)


def _spacing_error(
    path: Path, spacing: Spacing, bar_spec: str, command: Callable[..., str]
) -> SpacingMismatch:
    rows = describe_step(spacing.step_ns or 0)
    suggested = spec_for_step(spacing.step_ns or 0, bar_spec.rsplit("-", 1)[1])
    skip = '(ARGS="csv.check_spacing=false" imports them as they are)'
    if suggested is not None:
        return SpacingMismatch(
            f"{path}: rows are {rows} apart but BAR is {bar_spec}; use BAR={suggested} {skip}",
            f"import them as {suggested} bars: {command(bar=suggested)}",
            spacing,
            suggested,
        )
    return SpacingMismatch(
        f"{path}: rows are {rows} apart but BAR is {bar_spec}, and no bar spec has that step "
        f"(whole seconds, minutes, hours or days) {skip}",
        "check the file's timestamps; to import the rows as they are: "
        + command({"csv.check_spacing": False}),
        spacing,
        None,
    )


# --------------------------------------------------------------------------------------------
# the `make import` command an error suggests


def _word(key: str, value: object) -> str:
    """One override as a word of ``ARGS`` (shlex-split by make_args): ``key=value``."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    else:
        text = hydra_value(str(value))
    word = f"{key}={text}"
    if text == "''" or shlex.quote(word) == word:
        return word  # `k=''` splits to `k=`, which Hydra reads as the empty string too
    if "'" not in word:
        return f"'{word}'"
    return shlex.quote(word)


def args_text(overrides: Mapping[str, object]) -> str:
    """``ARGS=…`` for a shell, or "" when there are no overrides."""
    if not overrides:
        return ""
    text = " ".join(_word(k, v) for k, v in overrides.items())
    if "!" in text:  # bash history expansion: only single quotes keep a `!`
        return f"ARGS={shlex.quote(text)}"
    return 'ARGS="' + re.sub(r'(["$`\\])', r"\\\1", text) + '"'


def spec_overrides(spec: CsvSpec, price_precision: int | None = None) -> dict[str, object]:
    """The ``csv.*`` (and ``price_precision``) overrides that reproduce ``spec`` under
    conf/import_csv.yaml (whose ``csv.check_spacing`` is true)."""
    default = CsvSpec()
    out: dict[str, object] = {}
    if spec.tz != default.tz:
        out["csv.tz"] = spec.tz
    if spec.label != default.label:
        out["csv.label"] = spec.label
    for role, header in spec.columns.items():
        out[f"csv.columns.{role}"] = header
    for name in ("timestamp_format", "epoch_unit", "delimiter"):
        if getattr(spec, name) is not None:
            out[f"csv.{name}"] = getattr(spec, name)
    if spec.max_errors != default.max_errors:
        out["csv.max_errors"] = spec.max_errors
    if price_precision is not None:
        out["price_precision"] = int(price_precision)
    if not spec.check_spacing:
        out["csv.check_spacing"] = False
    return out


def _explicit_catalog(catalog: Catalog) -> str | None:
    """The catalog's location when it is not the one `make import` uses without CATALOG=."""
    default = resolve_location(None)
    if not default.startswith("s3://"):
        default = str(Path(default.removeprefix("file://")).expanduser().absolute())
    return None if catalog.url == default else catalog.url


def make_import_command(
    csv_path: str | os.PathLike[str],
    instrument_id: object,
    bar_spec: str,
    catalog: Catalog,
    *,
    mode: str = "skip",
    spec: CsvSpec,
    price_precision: int | None = None,
    overrides: Mapping[str, object] | None = None,
    show_bar: bool = False,
) -> str:
    """``make import CSV=… SYMBOL=… [BAR=…] [MODE=…] [CATALOG=…] [ARGS="…"]`` for this import,
    ``overrides`` (config key -> value) replacing or adding to the spec's; BAR is shown when it
    is not the default or ``show_bar``."""
    words = ["make", "import", f"CSV={shlex.quote(str(csv_path))}"]
    words.append(f"SYMBOL={shlex.quote(str(instrument_id))}")
    if show_bar or bar_spec != DEFAULT_BAR:
        words.append(f"BAR={shlex.quote(bar_spec)}")
    if mode != "skip":
        words.append(f"MODE={shlex.quote(mode)}")
    where = _explicit_catalog(catalog)
    if where is not None:
        words.append(f"CATALOG={shlex.quote(where)}")
    args = args_text({**spec_overrides(spec, price_precision), **(overrides or {})})
    if args:
        words.append(args)
    return " ".join(words)
