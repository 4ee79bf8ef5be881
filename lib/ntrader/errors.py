"""Exception hierarchy of ntrader, mapped to the exit codes of the public contract in one place.

Exit codes (every script):
0 ok · 1 data error · 2 input error · 3 connection error · 4 system error.
Every error carries a ``hint``: what the user should do next.
"""

from __future__ import annotations

from typing import Any

OK = 0
DATA_ERROR = 1
INPUT_ERROR = 2
CONNECTION_ERROR = 3
SYSTEM_ERROR = 4


class NtraderError(Exception):
    """Base of every error ntrader raises on purpose."""

    exit_code: int = SYSTEM_ERROR
    kind: str = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class DataError(NtraderError):
    """The data asked for is not there (unknown instrument, no bars, missing range)."""

    exit_code = DATA_ERROR
    kind = "data error"


class IncompleteRun(DataError):
    """The run finished but did not do what was asked (a backtest the engine stopped early, most
    orders rejected): exit 1, ``status: incomplete``. ``result`` is what the run produced anyway
    (it still lands in ``summary.json``); ``problems`` one dict per failed check."""

    kind = "incomplete run"
    status = "incomplete"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        result: dict[str, Any] | None = None,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.result = result or {}
        self.problems = problems or []


class InputError(NtraderError):
    """Bad input: a malformed CSV, a bad config value or argument."""

    exit_code = INPUT_ERROR
    kind = "input error"


class CsvValidationError(InputError):
    """A CSV file failed validation; ``problems`` holds (line number, message) pairs."""

    def __init__(
        self,
        message: str,
        problems: list[tuple[int, str]] | None = None,
        total: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.problems = problems or []
        self.total = total if total is not None else len(self.problems)

    def __str__(self) -> str:
        lines = [self.message]
        lines += [f"  line {line}: {msg}" for line, msg in self.problems]
        if self.total > len(self.problems):
            lines.append(f"  … and {self.total - len(self.problems)} more")
        return "\n".join(lines)


class ConnectionFailure(NtraderError):
    """A remote service (IBKR, PostgreSQL) could not be reached or dropped the connection."""

    exit_code = CONNECTION_ERROR
    kind = "connection error"


class SystemFailure(NtraderError):
    """I/O failure, corruption, or a bug."""

    exit_code = SYSTEM_ERROR
    kind = "system error"


class CatalogCorruption(SystemFailure):
    """A catalog file proven corrupt (fully present, fails to decode twice); readers leave it in
    place, a writer's repair moves it to ``<catalog>/.corrupt/``."""


class CatalogBusy(SystemFailure):
    """Another process holds the catalog lock for longer than we were willing to wait."""


def exit_code_for(exc: BaseException) -> int:
    """The exit code for any exception: ours carry one, anything else is a system error."""
    if isinstance(exc, NtraderError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return SYSTEM_ERROR
