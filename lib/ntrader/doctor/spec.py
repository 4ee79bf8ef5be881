"""One call from plain values: :class:`DoctorSpec` (the catalog location, ``IbkrSettings``, a DSN
or None, the timeout) -> :func:`run_checks` -> the list of findings (:func:`diagnose`: as a
``Report``), in a fixed order: this machine, the S3 endpoint (``s3://`` catalogs), the catalog,
IB Gateway/TWS, PostgreSQL.

Usable from a notebook (``run_checks(DoctorSpec(catalog="data/catalog",
ibkr=IbkrSettings(port=7497)))``; inside a running event loop the IB checks run on a thread of
their own); ``make doctor`` builds the spec from the scan config with :meth:`DoctorSpec.of`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from ntrader.doctor import catalog_checks, gateway, local, services
from ntrader.doctor.findings import FAIL, Finding, Report, fail, from_error
from ntrader.errors import CONNECTION_ERROR, SYSTEM_ERROR, InputError, NtraderError
from ntrader.secrets import redact

if TYPE_CHECKING:
    from ntrader.ibkr.client import IbkrSettings


@dataclass(frozen=True)
class DoctorSpec:
    """What to check. ``catalog``: a directory or ``s3://bucket/prefix`` (None: ``$NAUTILUS_PATH/
    catalog`` or ``data/catalog``); ``ibkr``: None skips IB; ``dsn``: None skips PostgreSQL."""

    catalog: str | None = None
    ibkr: IbkrSettings | None = None
    dsn: str | None = None
    timeout_s: float = 5.0  # per connection attempt and per answer waited for
    legacy_table: str = "market_data"  # the table make migrate reads (its source.table)
    repo: Path | None = None  # the checkout holding .venv and uv.lock (None: this library's)
    disk_warn_bytes: int = 5 * local.GIB
    disk_fail_bytes: int = 500 * local.MIB
    problems: tuple[Finding, ...] = ()  # settings DoctorSpec.of could not read

    @classmethod
    def of(
        cls, catalog: object, ibkr: Mapping[str, Any] | None, dsn: object, **options: Any
    ) -> DoctorSpec:
        """From config values (``cfg.catalog.path``, the ``ibkr`` group, ``cfg.dsn``); an invalid
        IBKR setting becomes a fail row (exit 2) instead of stopping the other checks."""
        settings, problems = None, []
        if ibkr is not None:
            from ntrader.ibkr.client import IbkrSettings

            try:
                settings = IbkrSettings.from_config(ibkr)
            except InputError as exc:
                problems.append(from_error("ib.config", exc))
        return cls(
            catalog=str(catalog) if catalog else None,
            ibkr=settings,
            dsn=(str(dsn).strip() or None) if dsn else None,
            problems=tuple(problems),
            **options,
        )


def diagnose(spec: DoctorSpec) -> Report:
    """:func:`run_checks` as a :class:`Report` (table / JSON / CSV, counts, exit code)."""
    return Report.of(run_checks(spec))


def run_checks(spec: DoctorSpec) -> list[Finding]:
    """Every check of ``spec``, in order; a check never raises (a failure is a fail row)."""
    repo = spec.repo or local.repo_root()
    found = [local.python_version(), local.venv(repo), local.packages(repo)]
    found += _guarded("catalog", lambda: _catalog(spec))
    found += spec.problems
    if spec.ibkr is not None:
        ibkr = spec.ibkr
        found += _guarded("ib.handshake", lambda: _gateway(ibkr, spec.timeout_s))
    if spec.dsn:
        dsn = spec.dsn
        found += _guarded(
            "postgres", lambda: services.postgres_findings(dsn, spec.legacy_table, spec.timeout_s)
        )
    return found


def _guarded(check: str, area: Callable[[], list[Finding]]) -> list[Finding]:
    """An area's findings; an unexpected exception becomes one fail row (the traceback goes to
    the log at DEBUG, the run folder's ``scan.log``)."""
    try:
        return area()
    except Exception as exc:
        logger.opt(exception=exc).debug(f"doctor: the {check} check raised")
        return [
            fail(
                check,
                redact(f"the check itself failed: {type(exc).__name__}: {exc}"),
                "an unusual setup or a bug: the traceback is in the run folder's scan.log",
                SYSTEM_ERROR,
            )
        ]


def _catalog(spec: DoctorSpec) -> list[Finding]:
    from ntrader.catalog.store import open_store, resolve_location

    url = resolve_location(spec.catalog)
    found: list[Finding] = []
    if url.startswith("s3://"):
        found.append(services.s3_endpoint(url, spec.timeout_s))
        if found[-1].status == FAIL:
            return found
    try:
        store = open_store(url)
        rows = catalog_checks.catalog_findings(store)
    except NtraderError as exc:
        return [*found, from_error("catalog", exc)]
    except OSError as exc:
        fix = "check the path and its permissions"
        return [*found, fail("catalog", f"cannot read {url}: {exc}", fix, SYSTEM_ERROR)]
    found += rows
    if store.local:
        found.append(local.disk_space(Path(store.root), spec.disk_warn_bytes, spec.disk_fail_bytes))
    return found


def _gateway(settings: IbkrSettings, timeout: float) -> list[Finding]:
    limit = 4 * timeout + 2  # TCP, handshake, farm messages, the clock: each bounded by timeout

    async def bounded() -> list[Finding]:
        try:
            return await asyncio.wait_for(gateway.gateway_findings(settings, timeout), limit)
        except TimeoutError:
            detail = f"no verdict from {settings.endpoint} within {limit:g} s"
            fix = "IB Gateway/TWS hangs: restart it"
            return [fail("ib.handshake", detail, fix, CONNECTION_ERROR)]

    return _run(bounded())


def _run(coro: Coroutine[Any, Any, list[Finding]]) -> list[Finding]:
    """``asyncio.run``, or on a thread of its own inside a running loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
