"""TWS API wire protocol: framing, field encoding, message ids and the few message layouts served.

Every message after the handshake is a 4-byte big-endian length followed by NUL-terminated text
fields. The handshake: the client sends ``API\\0`` then one framed ``v<min>..<max>[ options]``; the
server answers one framed message ``<serverVersion>\\0<connection time>\\0``.

The simulator speaks server version 178 (the top of ib_async 2.1.0's range 157..178). From 164 on
contract details carry no version field, from 166 on error messages end with an (empty)
``advancedOrderRejectJson`` field, and below 196 historical bars come in ONE message 17 that holds
the bars and acts as the end marker (no separate historicalDataEnd).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from dataclasses import dataclass

HEADER = struct.Struct(">I")
HANDSHAKE_PREFIX = b"API\x00"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

SERVER_VERSION = 178
MIN_CLIENT_VERSION = 157


class ProtocolError(Exception):
    """The peer sent something that is not TWS API framing."""


class In:
    """Incoming (client -> server) message ids."""

    REQ_MKT_DATA = 1
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DETAILS = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    START_API = 71
    REQ_POSITIONS_MULTI = 74
    REQ_ACCOUNT_UPDATES_MULTI = 76
    REQ_HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_COMPLETED_ORDERS = 99


class Out:
    """Outgoing (server -> client) message ids."""

    ERR_MSG = 4
    UPDATE_ACCOUNT_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    POSITION_END = 62
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI_END = 74
    HEAD_TIMESTAMP = 88
    COMPLETED_ORDERS_END = 102


Field = str | int | float | bool | None


def format_field(value: Field) -> str:
    """One field as TWS writes it: bools as 1/0, None as empty, everything else via str()."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def encode(*fields: Field) -> bytes:
    """One framed message: length prefix + NUL-terminated fields."""
    payload = "".join(format_field(f) + "\0" for f in fields).encode()
    return HEADER.pack(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """The text fields of one message payload (the trailing empty element dropped)."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """The payload of the next framed message; IncompleteReadError at EOF."""
    header = await reader.readexactly(HEADER.size)
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {length} bytes exceeds {MAX_MESSAGE_BYTES}")
    return await reader.readexactly(length)


async def read_handshake(reader: asyncio.StreamReader) -> tuple[int, int, str]:
    """(min version, max version, connect options) from the client's ``API\\0v157..178``."""
    prefix = await reader.readexactly(len(HANDSHAKE_PREFIX))
    if prefix != HANDSHAKE_PREFIX:
        raise ProtocolError(f"expected API\\0 handshake, got {prefix!r}")
    text = (await read_frame(reader)).decode(errors="replace")
    versions, _, options = text.partition(" ")
    if not versions.startswith("v"):
        raise ProtocolError(f"bad version range {text!r}")
    lo, sep, hi = versions[1:].partition("..")
    try:
        vmin = int(lo)
        vmax = int(hi) if sep else vmin
    except ValueError:
        raise ProtocolError(f"bad version range {text!r}") from None
    return vmin, vmax, options.strip()


@dataclass(frozen=True)
class ContractFields:
    """The 12 contract fields ib_async sends in requests (``Client.send`` Contract layout)."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str

    def describe(self) -> str:
        return f"{self.symbol or self.con_id}@{self.exchange or '?'}"


class FieldReader:
    """Sequential reader over one message's fields (missing fields read as empty)."""

    def __init__(self, fields: list[str], start: int = 0) -> None:
        self._fields = fields
        self._pos = start

    def __iter__(self) -> Iterator[str]:
        while self._pos < len(self._fields):
            yield self.str()

    def str(self) -> str:
        if self._pos >= len(self._fields):
            self._pos += 1
            return ""
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def int(self, default: int = 0) -> int:
        text = self.str().strip()
        try:
            return int(text) if text else default
        except ValueError:
            return int(float(text))

    def bool(self) -> bool:
        return self.int() != 0

    def contract(self) -> ContractFields:
        return ContractFields(
            con_id=self.int(),
            symbol=self.str(),
            sec_type=self.str(),
            last_trade=self.str(),
            strike=self.str(),
            right=self.str(),
            multiplier=self.str(),
            exchange=self.str(),
            primary_exchange=self.str(),
            currency=self.str(),
            local_symbol=self.str(),
            trading_class=self.str(),
        )


def error_message(req_id: int, code: int, text: str) -> bytes:
    """Message 4 (version 2) as served to clients >= 166: ends with advancedOrderRejectJson."""
    return encode(Out.ERR_MSG, 2, req_id, code, text, "")


def price_text(cents: int) -> str:
    """Exact 2-decimal text of a price in integer cents (float() of it is the nearest double)."""
    sign = "-" if cents < 0 else ""
    c = abs(int(cents))
    return f"{sign}{c // 100}.{c % 100:02d}"
