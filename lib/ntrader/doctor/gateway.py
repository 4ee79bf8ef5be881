"""IB Gateway / TWS through the real ib_async client: TCP reachable, the API handshake and server
version, the client id free (error 326), the data farms' status messages at connect
(2104/2106/2158 OK, 2103/2105/2157 broken), a paper or live account and port, and the clock skew
against IB's ``reqCurrentTime``.

Every wait is bounded by the doctor's timeout; the connection is read-only and closed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ntrader.doctor.findings import Finding, fail, ok, warn
from ntrader.errors import CONNECTION_ERROR, SYSTEM_ERROR

if TYPE_CHECKING:
    from ntrader.ibkr.client import IbkrSettings

PAPER_PORTS = {4002: "IB Gateway paper", 7497: "TWS paper"}
LIVE_PORTS = {4001: "IB Gateway live", 7496: "TWS live"}
# farm status codes -> (farm kind, state)
FARM_CODES = {
    2103: ("market", "broken"),
    2104: ("market", "OK"),
    2108: ("market", "inactive"),
    2119: ("market", "connecting"),
    2105: ("hmds", "broken"),
    2106: ("hmds", "OK"),
    2107: ("hmds", "inactive"),
    2157: ("secdef", "broken"),
    2158: ("secdef", "OK"),
}
FARMS = {
    "market": ("Market data", "live quotes only: ntrader reads history, so fetches still work"),
    "hmds": ("HMDS (historical data)", "historical requests time out until it reconnects"),
    "secdef": ("Sec-def", "contract lookups (qualifying a symbol) fail until it reconnects"),
}
SKEW_WARN_S, SKEW_FAIL_S = 2.0, 30.0
FARM_WAIT_S = 2.0  # IB Gateway sends one status message per farm right after the handshake
START = (
    "start IB Gateway or TWS, log in and enable the API (Configure > Settings > API: 'Enable "
    "ActiveX and Socket Clients', socket port {port}); check IBKR_HOST / IBKR_PORT (Gateway "
    "4002 paper / 4001 live, TWS 7497 / 7496). No IB account: make sim, then IBKR_PORT=7497"
)


def port_kind(port: int) -> str:
    return PAPER_PORTS.get(port) or LIVE_PORTS.get(port) or "not a default IB port"


async def gateway_findings(settings: IbkrSettings, timeout: float) -> list[Finding]:
    """The IB rows, in order; a row that cannot be checked after an earlier fail is left out."""
    host, port = settings.host, settings.port
    wait = min(timeout, settings.connect_timeout)
    where = f"{host}:{port} ({port_kind(port)})"
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, TimeoutError):
            why = f"no answer within {wait:g} s (a firewall, or the wrong host)"
        elif isinstance(exc, ConnectionRefusedError):
            why = "connection refused (nothing listens on that port)"
        else:
            why = exc.strerror or str(exc)
        fix = START.format(port=port)
        return [fail("ib.tcp", f"nothing answers at {where}: {why}", fix, CONNECTION_ERROR)]
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    found = [ok("ib.tcp", f"{where} accepts connections")]
    with _quiet_ib_async():
        found += await _api(settings, wait)
    return found


async def _api(settings: IbkrSettings, wait: float) -> list[Finding]:
    from ib_async import IB
    from ib_async.ib import StartupFetchNONE

    ib = IB()
    ib.RaiseRequestErrors = True
    farms: dict[tuple[str, str], tuple[int, str]] = {}  # (kind, farm name) -> latest (code, text)
    seen: dict[str, Any] = {}
    refused = asyncio.Event()

    def on_error(req_id: int, code: int, text: str, *_: Any) -> None:
        if code == 326:
            refused.set()
        elif code in FARM_CODES:
            farms[(FARM_CODES[code][0], text.rpartition(":")[2] or "?")] = (code, text)

    def on_ack() -> None:  # the server's first message: its version (before startApi's answer)
        seen["version"] = ib.client.serverVersion()
        ack()

    ack = ib.wrapper.connectAck
    ib.wrapper.connectAck = on_ack  # type: ignore[method-assign]
    ib.errorEvent += on_error
    cid = settings.client_id
    connect = asyncio.ensure_future(
        ib.connectAsync(
            settings.host,
            settings.port,
            clientId=cid,
            timeout=wait,
            readonly=True,
            fetchFields=StartupFetchNONE,
        )
    )
    refusal = asyncio.ensure_future(refused.wait())
    try:
        await asyncio.wait({connect, refusal}, timeout=wait + 1, return_when="FIRST_COMPLETED")
        error = None
        if refused.is_set() or not connect.done():
            connect.cancel()
        elif connect.exception() is not None:
            error = connect.exception()
        version = seen.get("version")
        if not version:
            return [_no_handshake(settings, _why(error, wait))]
        found = [ok("ib.handshake", f"TWS API server version {version}")]
        if refused.is_set():
            return [*found, _client_id_in_use(cid)]
        if error is not None or not ib.isConnected():
            why = _why(error, wait) if error else "closed during the start-up"
            detail = f"client id {cid}: the API session did not start ({why})"
            fix = START.format(port=settings.port)
            return [*found, fail("ib.client_id", detail, fix, CONNECTION_ERROR)]
        found.append(ok("ib.client_id", f"client id {cid} accepted (read-only session)"))
        deadline = time.monotonic() + min(FARM_WAIT_S, wait)
        while len({k for k, _ in farms}) < len(FARMS) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        found += [_farm(kind, farms) for kind in FARMS]
        found.append(_account(ib.managedAccounts(), settings.port))
        found.append(await _clock(ib, wait))
        return found
    finally:
        refusal.cancel()
        if not connect.done():
            connect.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connect
        ib.disconnect()


def _why(error: BaseException | None, wait: float) -> str:
    if error is None or isinstance(error, TimeoutError):
        return f"no answer within {wait:g} s"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _no_handshake(settings: IbkrSettings, why: str) -> Finding:
    return fail(
        "ib.handshake",
        f"{settings.endpoint} accepts connections but did not answer the TWS API handshake ({why})",
        f"is port {settings.port} the API port of IB Gateway/TWS? In its API settings add this "
        "machine to 'Trusted IPs' (or accept the incoming-connection prompt); restart it if it "
        "hangs",
        CONNECTION_ERROR,
    )


def _client_id_in_use(cid: int) -> Finding:
    return fail(
        "ib.client_id",
        f"client id {cid} is in use by another connected program (IB error 326)",
        f"set IBKR_CLIENT_ID=<another number> (e.g. IBKR_CLIENT_ID={cid + 1} make doctor): each "
        "program connected to IB Gateway/TWS needs its own id; or stop the other program",
        CONNECTION_ERROR,
    )


def _farm(kind: str, farms: dict[tuple[str, str], tuple[int, str]]) -> Finding:
    label, impact = FARMS[kind]
    check = f"ib.farm.{kind}"
    states = {name: FARM_CODES[code][1] for (k, name), (code, _) in farms.items() if k == kind}
    if not states:
        return warn(
            check,
            f"no {label} farm status message within {FARM_WAIT_S:g} s of connecting",
            "IB Gateway reports each farm at connect; if fetches time out, look at its status "
            "window and restart it",
        )
    text = ", ".join(f"{name} {state}" for name, state in sorted(states.items()))
    bad = sorted(name for name, state in states.items() if state in ("broken", "connecting"))
    if not bad:
        return ok(check, f"{label} farm: {text}")
    detail = f"{label} farm: {text} — {impact}"
    fix = (
        "IB Gateway lost that farm (IB's nightly maintenance, network): usually back within "
        "minutes; wait and run make doctor again; if it stays down restart IB Gateway and check "
        "IB's system status page"
    )
    if kind == "market":
        return warn(check, detail, fix)
    return fail(check, detail, fix, CONNECTION_ERROR)


def _account(accounts: list[str], port: int) -> Finding:
    kind = port_kind(port)
    if not accounts:
        fix = "IB Gateway/TWS reports its login's accounts at connect: is it logged in?"
        return warn("ib.account", f"no managed account reported (port {port}: {kind})", fix)
    names = ", ".join(accounts)
    paper = all(a.upper().startswith("D") for a in accounts)  # paper accounts: DU…, DF…
    if paper and port in LIVE_PORTS:
        return warn(
            "ib.account",
            f"paper account {names} on port {port}, which is {kind} by default",
            "fine if you moved the ports; else check IBKR_PORT",
        )
    if paper:
        return ok("ib.account", f"paper account {names} (port {port}: {kind})")
    return warn(
        "ib.account",
        f"this is a LIVE account ({names}, port {port}: {kind}); ntrader only reads (read-only "
        "API session, no orders), but anything else connected there trades real money",
        "use the paper login for tests (IB Gateway paper: IBKR_PORT=4002); tick 'Read-Only API' "
        "in the API settings of the live login",
    )


async def _clock(ib: Any, wait: float) -> Finding:
    before = time.time()
    try:
        server = await asyncio.wait_for(ib.reqCurrentTimeAsync(), wait)
    except Exception as exc:  # a timeout or a closed connection
        return warn("ib.clock", f"no answer to reqCurrentTime ({type(exc).__name__})", "rerun")
    after = time.time()
    # IB answers whole seconds: its clock was within [t, t + 1) when it answered
    skew = server.timestamp() + 0.5 - (before + after) / 2
    text = f"this machine's clock is {abs(skew):.1f} s {'behind' if skew > 0 else 'ahead of'} IB"
    why = (
        "ntrader decides by this clock which sessions are over (what a fetch asks IB for, which "
        "'no data' answers it remembers) and writers sharing an S3 catalog expire leases by it"
    )
    fix = "synchronise the clock with NTP (timedatectl set-ntp true; chrony / ntpd)"
    if abs(skew) > SKEW_FAIL_S:
        return fail("ib.clock", f"{text} (> {SKEW_FAIL_S:g} s): {why}", fix, SYSTEM_ERROR)
    if abs(skew) > SKEW_WARN_S:
        return warn("ib.clock", f"{text} (> {SKEW_WARN_S:g} s): {why}", fix)
    if abs(skew) <= 1.0:
        text = "this machine's clock agrees with IB's (within ±1 s: IB answers whole seconds)"
    return ok("ib.clock", text)


@contextlib.contextmanager
def _quiet_ib_async() -> Iterator[None]:
    """ib_async logs its own connect errors to stderr: the findings say it once, better."""
    log = logging.getLogger("ib_async")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)
