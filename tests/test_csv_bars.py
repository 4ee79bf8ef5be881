"""ntrader.importing.reader: the malformed corpus, every accepted format, and a property test."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ntrader.errors import INPUT_ERROR, CsvValidationError, InputError, exit_code_for
from ntrader.importing.reader import CsvSpec, read_csv_bars
from tests.csv_corpus import CASES, MINUTE_NS, Case

DAY_NS = 86_400 * 10**9
NY = ZoneInfo("America/New_York")


def ns(dt: datetime) -> int:
    """UTC nanoseconds of an aware datetime (exact, no float)."""
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# ------------------------------------------------------------------------------------------
# malformed corpus


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_corpus(case: Case, tmp_path: Path) -> None:
    path = case.write(tmp_path)
    with pytest.raises(InputError) as info:
        read_csv_bars(
            path,
            bar_interval_ns=case.bar_interval_ns,
            calendar_days=case.calendar_days,
            spec=CsvSpec(**case.spec),
        )
    err = info.value
    assert exit_code_for(err) == INPUT_ERROR
    assert err.hint
    if case.file_level:
        assert not isinstance(err, CsvValidationError), str(err)
        assert case.message_contains in err.message
    else:
        assert isinstance(err, CsvValidationError), str(err)
        assert sorted({line for line, _ in err.problems}) == case.lines, str(err)
        assert any(case.message_contains in msg for _, msg in err.problems), str(err)
        assert err.total >= len(err.problems)
        assert [line for line, _ in err.problems] == sorted(line for line, _ in err.problems)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 22


def test_missing_column_message_lists_headers_and_aliases(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Open,High,Low,Price,Volume\n2024-01-02,1,2,0.5,1.5,10\n")
    with pytest.raises(InputError) as info:
        read_csv_bars(path, bar_interval_ns=DAY_NS, calendar_days=1)
    err = info.value
    assert "close" in err.message
    assert "'Price'" in err.message  # headers found
    assert "close/last" in err.message  # aliases accepted
    assert err.hint is not None and "csv.columns.<role>=<header>" in err.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_csv_bars(tmp_path / "nope.csv", bar_interval_ns=MINUTE_NS)


def test_max_errors_bounds_the_list_but_counts_all(tmp_path: Path) -> None:
    rows = [f"2024-01-02 10:{m:02d}:00,100,99,98,100,10" for m in range(50)]  # high < open
    path = write(tmp_path, "timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(CsvValidationError) as info:
        read_csv_bars(path, bar_interval_ns=MINUTE_NS, spec=CsvSpec(max_errors=5))
    err = info.value
    assert len(err.problems) == 5
    assert err.total == 50
    assert [line for line, _ in err.problems] == [2, 3, 4, 5, 6]
    assert "45 more" in str(err)


def test_bad_rows_do_not_shift_line_numbers(tmp_path: Path) -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-01-02 09:30:00,1,2,0.5,1.5,10\n"
        "2024-01-02 09:31:00,1,2,0.5\n"  # line 3: too few fields
        "\n"  # line 4: blank
        "2024-01-02 09:32:00,1,2,0.5,1.5,10\n"
        "2024-01-02 09:33:00,1,0.1,0.5,1.5,10\n"  # line 6: high < low
    )
    with pytest.raises(CsvValidationError) as info:
        read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS)
    assert sorted({line for line, _ in info.value.problems}) == [3, 4, 6]


def test_never_leaks_raw_exceptions_on_invalid_utf8(tmp_path: Path) -> None:
    head = (
        b"timestamp,open,high,low,close,volume\n" + b"2024-01-02 09:30:00,1,2,0.5,1.5,10\n" * 5000
    )
    path = tmp_path / "latin1.csv"
    path.write_bytes(head + b"2024-01-02 09:31:00,1,2,0.5,1.5,10\xe9\n")
    with pytest.raises(InputError):
        read_csv_bars(path, bar_interval_ns=MINUTE_NS)


# ------------------------------------------------------------------------------------------
# accepted formats


def test_yahoo_daily(tmp_path: Path) -> None:
    text = (
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,187.149994,188.440002,183.889999,185.639999,184.734970,82488700\n"
        "2024-01-03,184.220001,185.880005,183.429993,184.250000,183.351746,58414500\n"
    )
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=DAY_NS, calendar_days=1)
    bars = res.bars
    assert res.columns == {
        "timestamp": "Date",
        "open": "Open",
        "high": "High",
        "low": "Low",
        "close": "Close",
        "volume": "Volume",
        "adj_close": "Adj Close",  # -> dividend factors on import (tests/test_dividends.py)
    }
    assert res.ignored_columns == []
    assert res.adjusted is not None and res.adjusted[0].tolist() == [184.73497, 183.351746]
    assert res.adjusted[1].tolist() == [5e-7, 5e-7]
    assert res.rows_read == 2
    assert bars.price_precision == 6
    assert bars.size_precision == 0
    # DAY bar of 2024-01-02 closes at local midnight of 2024-01-03 in New York
    assert bars.ts_event.tolist() == [
        ns(datetime(2024, 1, 3, tzinfo=NY)),
        ns(datetime(2024, 1, 4, tzinfo=NY)),
    ]
    assert bars.close.tolist() == [185.639999, 184.25]
    assert bars.volume.tolist() == [82488700.0, 58414500.0]


def test_pandas_index_column_and_whitespace_headers(tmp_path: Path) -> None:
    text = (
        ", Timestamp , OPEN ,High,Low,Close, Volume ,VWAP,Trades\n"
        "0,2024-01-02 09:30:00,1.5,2.25,1.25,2.0,10,1.7,3\n"
        "1,2024-01-02 09:31:00,2.0,2.5,1.75,2.25,20,2.1,4\n"
    )
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS)
    assert res.columns["timestamp"] == "Timestamp"
    assert res.columns["open"] == "OPEN"
    assert res.ignored_columns == ["VWAP", "Trades"]
    assert res.bars.open.tolist() == [1.5, 2.0]
    assert res.bars.price_precision == 2
    assert res.bars.ts_event[0] == ns(datetime(2024, 1, 2, 9, 31, tzinfo=NY))


def test_separate_date_and_time_columns_metatrader(tmp_path: Path) -> None:
    text = (
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2024.01.02\t09:30:00\t1.10450\t1.10470\t1.10440\t1.10460\t120\t0\t2\n"
        "2024.01.02\t09:31:00\t1.10460\t1.10480\t1.10450\t1.10470\t80\t0\t2\n"
    )
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS, spec=CsvSpec(tz="UTC"))
    assert res.columns["date"] == "<DATE>"
    assert res.columns["time"] == "<TIME>"
    assert res.columns["volume"] == "<VOL>"
    assert res.bars.price_precision == 5
    assert res.bars.ts_event.tolist() == [
        ns(datetime(2024, 1, 2, 9, 31, tzinfo=UTC)),
        ns(datetime(2024, 1, 2, 9, 32, tzinfo=UTC)),
    ]


def test_date_and_time_columns_comma(tmp_path: Path) -> None:
    text = "Date,Time,Open,High,Low,Close,Volume\n01/02/2024,09:30,1,2,0.5,1.5,10\n"
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS)
    assert res.bars.ts_event[0] == ns(datetime(2024, 1, 2, 9, 31, tzinfo=NY))


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-01-02T09:30:00-05:00", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
        ("2024-01-02T14:30:00Z", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
        ("2024-01-02 14:30:00+00:00", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
        ("2024-01-02T14:30:00.250Z", datetime(2024, 1, 2, 14, 30, 0, 250000, tzinfo=UTC)),
        ("2024-01-02 09:30:00", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),  # naive, New York
        ("2024-01-02T09:30", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
    ],
)
def test_iso_timestamps(tmp_path: Path, stamp: str, expected: datetime) -> None:
    path = write(tmp_path, f"datetime,o,h,l,c,v\n{stamp},1,2,0.5,1.5,10\n")
    res = read_csv_bars(path, bar_interval_ns=MINUTE_NS, spec=CsvSpec(label="close"))
    assert res.bars.ts_event.tolist() == [ns(expected)]


@pytest.mark.parametrize(("unit", "mult"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
@pytest.mark.parametrize("explicit", [False, True])
def test_epoch_units(tmp_path: Path, unit: str, mult: int, explicit: bool) -> None:
    base = 1_704_205_800  # 2024-01-02 14:30:00 UTC
    rows = "".join(f"{(base + 60 * k) * mult},1,2,0.5,1.5,10\n" for k in range(3))
    path = write(tmp_path, "time,open,high,low,close,volume\n" + rows)
    spec = CsvSpec(epoch_unit=unit if explicit else None)
    res = read_csv_bars(path, bar_interval_ns=MINUTE_NS, spec=spec)
    assert res.bars.ts_event.tolist() == [(base + 60 * k + 60) * 10**9 for k in range(3)]


def test_newest_first_is_reversed(tmp_path: Path) -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-01-02 09:32:00,3,4,2.5,3.5,30\n"
        "2024-01-02 09:31:00,2,3,1.5,2.5,20\n"
        "2024-01-02 09:30:00,1,2,0.5,1.5,10\n"
    )
    bars = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS).bars
    assert np.all(np.diff(bars.ts_event) > 0)
    assert bars.open.tolist() == [1.0, 2.0, 3.0]
    assert bars.ts_event[0] == ns(datetime(2024, 1, 2, 9, 31, tzinfo=NY))


def test_nasdaq_dollar_prices_newest_first(tmp_path: Path) -> None:
    text = (
        "Date,Close/Last,Volume,Open,High,Low\n"
        "01/03/2024,$184.25,58414460,$184.22,$185.88,$183.43\n"
        "01/02/2024,$185.64,82488670,$187.15,$188.44,$183.885\n"
    )
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=DAY_NS, calendar_days=1)
    assert res.columns["close"] == "Close/Last"
    assert res.bars.price_precision == 3
    assert res.bars.close.tolist() == [185.64, 184.25]
    assert res.bars.low.tolist() == [183.885, 183.43]
    assert res.bars.ts_event[0] == ns(datetime(2024, 1, 3, tzinfo=NY))


def test_semicolon_delimiter_crlf_bom_trailing_blank_lines(tmp_path: Path) -> None:
    text = (
        "\ufefftimestamp;open;high;low;close;volume\r\n"
        "2024-01-02 09:30:00;1.10;1.20;1.00;1.15;100.0\r\n"
        "2024-01-02 09:31:00;1.15;1.25;1.05;1.20;250.50\r\n"
        "\r\n\r\n"
    )
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS)
    assert res.rows_read == 2
    assert res.bars.price_precision == 2  # "1.10": trailing zeros count for prices
    assert res.bars.size_precision == 1  # "100.0" -> 0, "250.50" -> 1
    assert res.bars.volume.tolist() == [100.0, 250.5]


def test_explicit_column_mapping_wins(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Adj Close,Volume,Shares\n2024-01-02,10,12,9,11,9.5,100,7\n"
    spec = CsvSpec(columns={"close": "adj close", "volume": "Shares"})
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=DAY_NS, calendar_days=1, spec=spec)
    assert res.columns["close"] == "Adj Close"
    assert res.columns["volume"] == "Shares"
    assert res.ignored_columns == ["Close", "Volume"]
    assert res.bars.close.tolist() == [9.5]
    assert res.bars.volume.tolist() == [7.0]
    assert res.bars.open.tolist() == [10.0]


def test_explicit_mapping_takes_a_header_away_from_detection(tmp_path: Path) -> None:
    # "Last" would be detected as close if "Close" were absent; here it is mapped to open
    text = "Time,Last,High,Low,Close,Vol\n2024-01-02 10:00:00,10,12,9,11,3\n"
    spec = CsvSpec(columns={"open": "LAST"})
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS, spec=spec)
    assert res.columns == {
        "open": "Last",
        "timestamp": "Time",
        "high": "High",
        "low": "Low",
        "close": "Close",
        "volume": "Vol",
    }
    assert res.bars.open.tolist() == [10.0]
    assert res.bars.close.tolist() == [11.0]


def test_explicit_timestamp_format(tmp_path: Path) -> None:
    text = "when,open,high,low,close,volume\n02.01.2024 09:30:00.500,1,2,0.5,1.5,10\n"
    spec = CsvSpec(columns={"timestamp": "when"}, timestamp_format="%d.%m.%Y %H:%M:%S.%f", tz="UTC")
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS, spec=spec)
    assert res.bars.ts_event.tolist() == [ns(datetime(2024, 1, 2, 9, 31, 0, 500000, tzinfo=UTC))]


@pytest.mark.parametrize("stamp", ["2024-01-02", "01/02/2024", "20240102", "02-Jan-2024"])
def test_date_only_formats(tmp_path: Path, stamp: str) -> None:
    path = write(tmp_path, f"date,open,high,low,close,volume\n{stamp},1,2,0.5,1.5,10\n")
    res = read_csv_bars(path, bar_interval_ns=DAY_NS, calendar_days=1)
    assert res.bars.ts_event.tolist() == [ns(datetime(2024, 1, 3, tzinfo=NY))]


def test_label_open_vs_close(tmp_path: Path) -> None:
    path = write(
        tmp_path, "timestamp,open,high,low,close,volume\n2024-07-01 10:00:00,1,2,0.5,1.5,1\n"
    )
    five = 5 * MINUTE_NS
    t = ns(datetime(2024, 7, 1, 10, tzinfo=NY))
    opened = read_csv_bars(path, bar_interval_ns=five, spec=CsvSpec(label="open")).bars
    closed = read_csv_bars(path, bar_interval_ns=five, spec=CsvSpec(label="close")).bars
    assert opened.ts_event.tolist() == [t + five]
    assert closed.ts_event.tolist() == [t]
    daily_close = read_csv_bars(
        path, bar_interval_ns=DAY_NS, calendar_days=1, spec=CsvSpec(label="close")
    ).bars
    assert daily_close.ts_event.tolist() == [t]


def test_dst_switch_days(tmp_path: Path) -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-03-10 01:59:00,1,2,0.5,1.5,1\n"  # EST (-5)
        "2024-03-10 03:00:00,1,2,0.5,1.5,1\n"  # EDT (-4)
        "2024-11-03 00:59:00,1,2,0.5,1.5,1\n"  # EDT
        "2024-11-03 02:00:00,1,2,0.5,1.5,1\n"  # EST
    )
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS)
    expected = [
        datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
        datetime(2024, 3, 10, 7, 1, tzinfo=UTC),
        datetime(2024, 11, 3, 5, 0, tzinfo=UTC),
        datetime(2024, 11, 3, 7, 1, tzinfo=UTC),
    ]
    assert res.bars.ts_event.tolist() == [ns(d) for d in expected]


def test_daily_bars_across_dst(tmp_path: Path) -> None:
    text = (
        "Date,Open,High,Low,Close,Volume\n"
        "2024-03-08,1,2,0.5,1.5,1\n"
        "2024-03-09,1,2,0.5,1.5,1\n"
        "2024-11-02,1,2,0.5,1.5,1\n"
    )
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=DAY_NS, calendar_days=1)
    assert res.bars.ts_event.tolist() == [
        ns(datetime(2024, 3, 9, 5, tzinfo=UTC)),  # midnight EST
        ns(datetime(2024, 3, 10, 5, tzinfo=UTC)),  # midnight before the switch: still EST
        ns(datetime(2024, 11, 3, 4, tzinfo=UTC)),  # midnight EDT
    ]


def test_daily_bars_with_offsets_use_local_date(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Volume\n2024-01-02T00:00:00-05:00,1,2,0.5,1.5,1\n"
    res = read_csv_bars(write(tmp_path, text), bar_interval_ns=DAY_NS, calendar_days=1)
    assert res.bars.ts_event.tolist() == [ns(datetime(2024, 1, 3, tzinfo=NY))]


def test_explicit_precision_keeps_values_exact(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close,volume\n2024-01-02 09:30:00,1.1,2.25,0.5,1.5,3\n"
    spec = CsvSpec(price_precision=4, size_precision=2)
    bars = read_csv_bars(write(tmp_path, text), bar_interval_ns=MINUTE_NS, spec=spec).bars
    assert (bars.price_precision, bars.size_precision) == (4, 2)
    assert bars.open.tolist() == [1.1]
    assert bars.high.tolist() == [2.25]


def test_large_file_fast_path(tmp_path: Path) -> None:
    n = 20_000
    base = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    stamps = [(base + timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ") for k in range(n)]
    rows = "".join(f"{s},100.25,100.5,100,100.25,{k}\n" for k, s in enumerate(stamps))
    path = write(tmp_path, "timestamp,open,high,low,close,volume\n" + rows)
    bars = read_csv_bars(path, bar_interval_ns=MINUTE_NS).bars
    assert len(bars) == n
    assert bars.first_ns == ns(base) + MINUTE_NS
    assert np.all(np.diff(bars.ts_event) == MINUTE_NS)
    assert bars.ts_event.dtype == np.int64


# ------------------------------------------------------------------------------------------
# property: valid random files round-trip exactly

ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney"]


def fmt_fixed(units: int, precision: int) -> str:
    if precision == 0:
        return str(units)
    whole, frac = divmod(units, 10**precision)
    return f"{whole}.{frac:0{precision}d}"


def is_clean_local(local: datetime, zone: ZoneInfo) -> bool:
    """A naive local time that exists exactly once in ``zone``."""
    a = local.replace(tzinfo=zone, fold=0)
    b = local.replace(tzinfo=zone, fold=1)
    if a.utcoffset() != b.utcoffset():
        return False
    return a.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local


bar_rows = st.lists(
    st.tuples(
        st.lists(st.integers(1, 10**8), min_size=4, max_size=4),
        st.booleans(),
        st.integers(0, 10**9),
        st.integers(1, 3 * 24 * 60),  # gap to the previous bar, minutes
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=bar_rows,
    precision=st.integers(0, 6),
    size_precision=st.integers(0, 3),
    zone_name=st.sampled_from(ZONES),
    label=st.sampled_from(["open", "close"]),
    style=st.sampled_from(["naive", "offset", "epoch_ms"]),
    daily=st.booleans(),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
)
def test_property_round_trip(
    tmp_path: Path,
    rows: list[tuple[list[int], bool, int, int]],
    precision: int,
    size_precision: int,
    zone_name: str,
    label: str,
    style: str,
    daily: bool,
    start: datetime,
) -> None:
    zone = ZoneInfo(zone_name)
    interval = DAY_NS if daily else 5 * MINUTE_NS
    calendar_days = 1 if daily else 0
    t0 = start.replace(second=0, microsecond=0, tzinfo=UTC)
    lines = ["Timestamp,Open,High,Low,Close,Volume"]
    expected_ts: list[int] = []
    expected = {"open": [], "high": [], "low": [], "close": [], "volume": []}  # type: ignore[var-annotated]
    instant = t0
    for k, (prices, flip, volume, gap) in enumerate(rows):
        instant += timedelta(days=gap % 10 + 1) if daily else timedelta(minutes=gap)
        local = instant.astimezone(zone).replace(tzinfo=None)
        if daily:
            local = local.replace(hour=0, minute=0)
        if style == "naive" or daily:
            assume(is_clean_local(local, zone) or (daily and label == "open"))
            text_ts = (
                local.strftime("%Y-%m-%d %H:%M:%S") if not daily else local.strftime("%Y-%m-%d")
            )
            aware = local.replace(tzinfo=zone)
        elif style == "offset":
            aware = instant.astimezone(zone)
            text_ts = aware.isoformat()
        else:
            aware = instant
            text_ts = str(ns(instant) // 10**6)
        if daily and label == "open":
            next_day: date = local.date() + timedelta(days=1)
            midnight = datetime(next_day.year, next_day.month, next_day.day)
            assume(is_clean_local(midnight, zone))
            ts = ns(midnight.replace(tzinfo=zone))
        elif label == "open":
            ts = ns(aware) + interval
        else:
            ts = ns(aware)
        low, a, b, high = sorted(prices)
        o, c = (b, a) if flip else (a, b)
        p = [fmt_fixed(x, precision) for x in (o, high, low, c)]
        vol = fmt_fixed(volume, size_precision)
        lines.append(f"{text_ts},{p[0]},{p[1]},{p[2]},{p[3]},{vol}")
        expected_ts.append(ts)
        for key, units in zip(("open", "high", "low", "close"), (o, high, low, c), strict=True):
            expected[key].append(units / 10**precision)
        expected["volume"].append(volume / 10**size_precision)
        assert k >= 0
    assume(all(b > a for a, b in itertools.pairwise(expected_ts)))
    path = tmp_path / "prop.csv"
    path.write_text("\n".join(lines) + "\n")
    spec = CsvSpec(tz=zone_name, label=label)
    res = read_csv_bars(path, bar_interval_ns=interval, calendar_days=calendar_days, spec=spec)
    bars = res.bars
    assert bars.ts_event.tolist() == expected_ts
    assert bars.price_precision == precision
    assert bars.size_precision <= size_precision
    for key in ("open", "high", "low", "close", "volume"):
        got = getattr(bars, key)
        assert got.tolist() == expected[key], key
    for arr, prec in (
        (bars.open, bars.price_precision),
        (bars.close, bars.price_precision),
        (bars.volume, bars.size_precision),
    ):
        scale = 10.0**prec
        assert np.array_equal(np.rint(arr * scale) / scale, arr)
