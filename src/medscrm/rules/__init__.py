"""The rule DSL shared by tags, segments (and later journeys): JSON → validated AST → SQLAlchemy Core.

Framework-free on purpose (no FastAPI here): ``parse`` reports every problem at once as a
:class:`RuleError`, ``compile_rule`` turns the AST into a tenant-scoped ``select(persons.c.id)``
with every user value bound as a parameter.
"""

from medscrm.rules.compile import compile_condition, compile_rule
from medscrm.rules.errors import InternalRuleError, Problem, RuleError
from medscrm.rules.validate import Normalised, RuleContext, SegmentInfo, normalisations, parse, segment_refs

__all__ = [
    "InternalRuleError",
    "Normalised",
    "Problem",
    "RuleContext",
    "RuleError",
    "SegmentInfo",
    "compile_condition",
    "compile_rule",
    "normalisations",
    "parse",
    "segment_refs",
]
