"""What ``make doctor`` found: one :class:`Finding` per check (ok | warn | fail, what was seen,
the fix), a :class:`Report` that renders them as a table, JSON or CSV, and the worst finding as
the exit code.

Exit codes (the public contract's): no fail -> 0, warnings included (they are counted in the
footer); a fail carries the code of its area — 2 a setting (an invalid IBKR setting, a malformed
DSN, a missing bucket), 3 a service (IB Gateway/TWS, PostgreSQL, the S3 endpoint), 4 this machine
(Python, ``.venv``, the catalog, disk space); several fails: the highest.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ntrader.errors import (
    CONNECTION_ERROR,
    DATA_ERROR,
    INPUT_ERROR,
    OK,
    SYSTEM_ERROR,
    NtraderError,
)
from ntrader.tabular import csv_text, json_text

OK_STATUS, WARN, FAIL = "ok", "warn", "fail"
STATUSES = (OK_STATUS, WARN, FAIL)
COLUMNS = ("check", "status", "detail", "fix")
KINDS = {
    DATA_ERROR: "data error",
    INPUT_ERROR: "input error",
    CONNECTION_ERROR: "connection error",
    SYSTEM_ERROR: "system error",
}
EXIT_CODES = (
    "exit codes: 0 no fail (warnings included) · 2 a setting (IBKR_*, DSN, bucket) · "
    "3 a service (IB Gateway/TWS, PostgreSQL, S3) · 4 this machine (Python, .venv, catalog, "
    "disk); several fails: the highest"
)


@dataclass(frozen=True)
class Finding:
    """One check's result. ``code`` is the exit code a fail carries (0 for ok and warn)."""

    check: str
    status: str
    detail: str
    fix: str | None = None
    code: int = OK

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        if self.status == FAIL and not self.code:
            raise ValueError(f"{self.check}: a fail needs a non-zero exit code")
        if self.status != FAIL and self.code:
            object.__setattr__(self, "code", OK)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "exit_code": self.code,
        }


def _wrapped(text: str, width: int, first: str, rest: str) -> list[str]:
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
    return [(first if i == 0 else rest) + line for i, line in enumerate(lines)]


def ok(check: str, detail: str) -> Finding:
    return Finding(check, OK_STATUS, detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, WARN, detail, fix)


def fail(check: str, detail: str, fix: str, code: int) -> Finding:
    return Finding(check, FAIL, detail, fix, code)


def from_error(check: str, exc: NtraderError) -> Finding:
    """A fail from one of ntrader's errors: its message, its hint as the fix, its exit code."""
    return fail(check, exc.message, exc.hint or "see the message", exc.exit_code or SYSTEM_ERROR)


class DoctorFailed(NtraderError):
    """At least one check failed: exit with the worst finding's code; ``result`` (the findings)
    still lands in ``summary.json``."""

    def __init__(self, message: str, hint: str, *, code: int, result: dict[str, Any]) -> None:
        super().__init__(message, hint)
        self.exit_code = code
        self.kind = KINDS.get(code, "error")
        self.result = result


@dataclass
class Report:
    """The findings of one doctor run, in the order they were checked."""

    findings: list[Finding]

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Report:
        return cls(list(findings))

    @property
    def exit_code(self) -> int:
        return max((f.code for f in self.findings if f.status == FAIL), default=OK)

    def counts(self) -> dict[str, int]:
        return {s: sum(f.status == s for f in self.findings) for s in STATUSES}

    def rows(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.findings]

    def footer(self) -> str:
        n = self.counts()
        code = self.exit_code
        if code:
            verdict = f"exit {code} ({KINDS.get(code, 'error')}): fix the fail rows first"
        elif n[WARN]:
            verdict = f"exit 0 with {n[WARN]} warning(s): read their fix"
        else:
            verdict = "exit 0: all good"
        head = f"doctor: {n[OK_STATUS]} ok, {n[WARN]} warn, {n[FAIL]} fail -> {verdict}"
        return "\n".join([head, *textwrap.wrap(EXIT_CODES, 100)])

    def render(self, fmt: str = "table") -> str:
        """``table`` (with the footer), ``json`` (the list ``summary.json`` holds) or ``csv``."""
        if fmt == "json":
            return json_text(self.rows())
        if fmt == "csv":
            return csv_text(self.rows(), [*COLUMNS, "exit_code"])
        return self.table() + "\n" + self.footer()

    def table(self, width: int = 100) -> str:
        """check, status (WARN / FAIL in capitals) and detail, each fix on the lines below its
        row; detail and fix wrapped at ``width`` characters."""
        rows = self.rows()
        cw = max([len(COLUMNS[0])] + [len(r["check"]) for r in rows])
        sw = len(COLUMNS[1])
        dw = min(width, max([len(COLUMNS[2])] + [len(r["detail"]) for r in rows]))
        indent = " " * (cw + sw + 4)
        out = [
            f"{COLUMNS[0]:<{cw}}  {COLUMNS[1]:<{sw}}  {COLUMNS[2]}",
            f"{'-' * cw}  {'-' * sw}  {'-' * dw}",
        ]
        for r in rows:
            status = r["status"] if r["status"] == OK_STATUS else r["status"].upper()
            out += _wrapped(r["detail"], width, f"{r['check']:<{cw}}  {status:<{sw}}  ", indent)
            if r["fix"]:
                out += _wrapped("fix: " + r["fix"], width, indent, indent + "     ")
        return "\n".join(out)

    def summary(self, raise_on_fail: bool = False) -> dict[str, Any]:
        """The run's ``summary.json`` part; ``raise_on_fail``: :meth:`raise_on_fail` first."""
        if raise_on_fail:
            self.raise_on_fail()
        return {"doctor": self.rows()}

    def raise_on_fail(self) -> None:
        """A fail: :class:`DoctorFailed` with the worst code (the findings stay in the summary)."""
        failed = [f.check for f in self.findings if f.status == FAIL]
        if failed:
            raise DoctorFailed(
                f"{len(failed)} check(s) failed: {', '.join(failed)}",
                hint="the fix under each FAIL row says what to do; then run make doctor again",
                code=self.exit_code,
                result={"doctor": self.rows()},
            )
