"""Lint findings: a severity, a stable code and a one-sentence message with the fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """Errors stop the compile; warnings are reported and kept in the output."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result; `code` is stable (documented in docs/policy.md)."""

    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class LintReport:
    """All findings of one lint run, in the order the checks ran."""

    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)


def err(code: str, message: str) -> Finding:
    return Finding(Severity.ERROR, code, message)


def warn(code: str, message: str) -> Finding:
    return Finding(Severity.WARNING, code, message)
