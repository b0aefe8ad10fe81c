"""Errors of the rule DSL: user-facing :class:`RuleError` (every problem, each at its node's JSON
path) versus :class:`InternalRuleError` (a bug in medscrm, never the user's fault)."""

from __future__ import annotations

from dataclasses import dataclass

from medscrm.common import MedscrmError


@dataclass(frozen=True)
class Problem:
    path: str  # JSON path of the bad node, e.g. ``and[2].window.last`` ("" = the whole rule)
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '(rule)'}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class RuleError(MedscrmError):
    """The rule is invalid; ``problems`` lists all that is wrong with it."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems[:20]))

    def as_list(self) -> list[dict[str, str]]:
        return [p.as_dict() for p in self.problems]


class InternalRuleError(Exception):
    """A bug in the compiler (an AST it does not know); not a user error."""
