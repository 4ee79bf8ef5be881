"""BarFrame <-> Arrow table in NautilusTrader's own bar schema (what ``ParquetDataCatalog`` writes).

Nautilus 1.231 (high-precision build) stores each price/size as a 16-byte little-endian int128
``raw = value * 10**16`` (``FIXED_PRECISION``) in a ``fixed_size_binary(16)`` column, plus
``ts_event``/``ts_init`` as uint64 and the schema metadata ``bar_type``, ``instrument_id``,
``price_precision``, ``size_precision``. Encoding here is vectorized numpy (~40 ms per year of
1-minute bars) instead of ``Bar`` objects + ``catalog.write_data``; the import benchmark in
``make bench`` measures the whole path against that one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ntrader.catalog.barframe import COLUMNS, BarFrame
from ntrader.errors import InputError

if TYPE_CHECKING:
    from nautilus_trader.model.data import BarType

# ``nautilus_trader.model.objects.FIXED_PRECISION`` of the high-precision (int128) build, spelled
# out so that reading a catalog does not import NautilusTrader (tests/test_startup.py compares).
FIXED_PRECISION = 16

_TWO64 = 18446744073709551616.0
_RAW_SCALE = float(10**FIXED_PRECISION)

SCHEMA_FIELDS = [pa.field(c, pa.binary(16), nullable=False) for c in COLUMNS] + [
    pa.field("ts_event", pa.uint64(), nullable=False),
    pa.field("ts_init", pa.uint64(), nullable=False),
]


def _to_scaled_int(values: np.ndarray, precision: int) -> np.ndarray:
    """Exact integers ``values * 10**precision`` (the values must be exact at that precision)."""
    scaled = np.rint(values * (10.0**precision))
    if scaled.size and np.abs(scaled).max() >= 2**53:
        raise InputError(
            f"value too large to store exactly at {precision} decimals",
            hint="lower the precision in config or check the data",
        )
    return scaled.astype(np.int64)


def encode_raw(values: np.ndarray, precision: int) -> np.ndarray:
    """float64 values exact at ``precision`` -> (n, 2) uint64 little-endian int128 raw values."""
    v = _to_scaled_int(values, precision)
    k = FIXED_PRECISION - precision
    out = np.empty((v.shape[0], 2), dtype=np.uint64)
    five_k = 5**k
    if v.size == 0 or int(np.abs(v).max()) < (2**63 - 1) // five_k:
        # raw = v * 10**k = (v * 5**k) << k, with v * 5**k fitting in int64.
        w = v * np.int64(five_k)
        np.left_shift(w.view(np.uint64), np.uint64(k), out=out[:, 0])
        out[:, 1] = np.right_shift(w, np.int64(64 - k)).view(np.uint64)
        return out
    # General case: 64x64 -> 128-bit multiply in 32-bit limbs, then two's complement for negatives.
    m = 10**k
    lo_m, hi_m = np.uint64(m & 0xFFFFFFFF), np.uint64(m >> 32)
    u = np.abs(v).astype(np.uint64)
    vl, vh = u & np.uint64(0xFFFFFFFF), u >> np.uint64(32)
    p0, p1, p2 = vl * lo_m, vl * hi_m + vh * lo_m, vh * hi_m
    lo: np.ndarray = p0 + (p1 << np.uint64(32))
    hi: np.ndarray = p2 + (p1 >> np.uint64(32)) + (lo < p0).astype(np.uint64)
    neg = v < 0
    if neg.any():
        lo_n = ~lo[neg] + np.uint64(1)
        hi[neg] = ~hi[neg] + (lo_n == 0).astype(np.uint64)
        lo[neg] = lo_n
    out[:, 0], out[:, 1] = lo, hi
    return out


def decode_raw(column: pa.Array | pa.ChunkedArray, precision: int) -> np.ndarray:
    """A ``fixed_size_binary(16)`` int128 column -> float64 values rounded to ``precision``."""
    if isinstance(column, pa.ChunkedArray):
        parts = [decode_raw(c, precision) for c in column.chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)
    n = len(column)
    buf = column.buffers()[1]
    if buf is None or n == 0:
        return np.empty(0, dtype=np.float64)
    flat = np.frombuffer(buf, dtype=np.uint64, count=(column.offset + n) * 2)
    words = flat[column.offset * 2 :].reshape(n, 2)
    hi = words[:, 1].view(np.int64).astype(np.float64)
    lo = words[:, 0].astype(np.float64)
    values = (hi * _TWO64 + lo) / _RAW_SCALE
    return np.round(values, precision, out=values)


def _binary16(raw: np.ndarray) -> pa.Array:
    n = raw.shape[0]
    return pa.Array.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw.tobytes())])


def encode_column(values: np.ndarray, precision: int) -> pa.Array:
    """float64 values exact at ``precision`` -> a ``fixed_size_binary(16)`` raw column."""
    return _binary16(encode_raw(values, precision))


def frame_to_table(frame: BarFrame, bar_type: BarType | str) -> pa.Table:
    """A BarFrame as an Arrow table in Nautilus' bar schema (``ts_init`` = ``ts_event``)."""
    bar_type_str = str(bar_type)
    instrument_id = bar_type_str.split("-", 1)[0]
    ts = frame.ts_event.astype(np.uint64)
    arrays: list[pa.Array] = [
        _binary16(encode_raw(getattr(frame, c), frame.price_precision)) for c in COLUMNS[:4]
    ]
    arrays.append(_binary16(encode_raw(frame.volume, frame.size_precision)))
    arrays += [pa.array(ts, pa.uint64()), pa.array(ts, pa.uint64())]
    metadata = {
        "bar_type": bar_type_str,
        "instrument_id": instrument_id,
        "price_precision": str(frame.price_precision),
        "size_precision": str(frame.size_precision),
    }
    return pa.Table.from_arrays(arrays, schema=pa.schema(SCHEMA_FIELDS, metadata=metadata))


def table_to_frame(table: pa.Table) -> BarFrame:
    """An Arrow table in Nautilus' bar schema -> BarFrame (precision from the schema metadata)."""
    meta = table.schema.metadata or {}
    price_precision = int(meta.get(b"price_precision", b"0"))
    size_precision = int(meta.get(b"size_precision", b"0"))
    ts = table.column("ts_event").to_numpy().astype(np.int64)
    o, h, lo, c = (decode_raw(table.column(n), price_precision) for n in COLUMNS[:4])
    v = decode_raw(table.column("volume"), size_precision)
    return BarFrame(ts, o, h, lo, c, v, price_precision, size_precision)
