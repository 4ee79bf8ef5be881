"""Property: CSV -> import -> plain Nautilus read-back is exact at the instrument's precision,
for random data, time zones, labels and bar sizes."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog.catalog import Catalog
from ntrader.importing.importer import import_csv
from ntrader.importing.reader import CsvSpec
from ntrader.instruments import bar_type_for, resolve_instrument_id

ZONES = ["America/New_York", "UTC", "Europe/London", "Asia/Tokyo"]
STEPS = {"1-MINUTE-LAST": 1, "5-MINUTE-LAST": 5, "1-HOUR-LAST": 60}


@st.composite
def bar_rows(draw):
    precision = draw(st.integers(0, 4))
    n = draw(st.integers(1, 40))
    scale = 10**precision
    rows = []
    for _ in range(n):
        a, b = (draw(st.integers(1, 500_000 * scale)) for _ in range(2))
        lo, hi = min(a, b), max(a, b)
        o, c = (draw(st.integers(lo, hi)) for _ in range(2))
        vol = draw(st.integers(0, 10**9))
        rows.append((o, hi, lo, c, vol))
    return precision, rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=bar_rows(),
    zone=st.sampled_from(ZONES),
    label=st.sampled_from(["open", "close"]),
    spec=st.sampled_from(sorted(STEPS)),
    month=st.sampled_from([1, 2, 6, 7, 8, 12]),  # clear of every DST switch of these zones
    day=st.integers(1, 20),
    gaps=st.lists(st.integers(1, 3), min_size=40, max_size=40),
)
def test_import_then_plain_nautilus_read_is_exact(data, zone, label, spec, month, day, gaps):
    precision, rows = data
    step = STEPS[spec]
    start = pd.Timestamp(2024, month, day, 3, 0)
    offsets = [sum(gaps[:i]) * step for i in range(len(rows))]
    stamps = [start + pd.Timedelta(minutes=m) for m in offsets]
    d = Path(tempfile.mkdtemp())
    try:
        fmt = f"{{:.{precision}f}}"
        lines = ["timestamp,open,high,low,close,volume"]
        for ts, (o, h, lo, c, v) in zip(stamps, rows, strict=True):
            px = [fmt.format(x / 10**precision) for x in (o, h, lo, c)]
            lines.append(",".join([ts.strftime("%Y-%m-%d %H:%M:%S"), *px, str(v)]))
        (d / "in.csv").write_text("\n".join(lines) + "\n")
        iid = resolve_instrument_id("PROP.NYSE")
        bt = bar_type_for(iid, spec)
        catalog = Catalog(d / "catalog")
        import_csv(
            catalog, d / "in.csv", iid, bt, spec=CsvSpec(tz=zone, label=label, check_spacing=False)
        )
        bars = ParquetDataCatalog(str(catalog.root)).bars([str(bt)])
        assert len(bars) == len(rows)
        shift = pd.Timedelta(minutes=step if label == "open" else 0)
        want_ts = [(t.tz_localize(zone) + shift).value for t in stamps]
        assert [b.ts_event for b in bars] == want_ts
        for b, (o, h, lo, c, v) in zip(bars, rows, strict=True):
            assert (b.open.raw, b.high.raw, b.low.raw, b.close.raw) == tuple(
                x * 10 ** (16 - precision) for x in (o, h, lo, c)
            )
            assert b.open.precision == precision
            assert b.volume.raw == v * 10**16 and b.volume.precision == 0
        inst = ParquetDataCatalog(str(catalog.root)).instruments()[0]
        assert inst.price_precision == precision
    finally:
        shutil.rmtree(d)
