"""Compilation: AST → SQLAlchemy Core. Never builds SQL strings; every user value is a bound parameter.

The result is ``select(persons.c.id)`` for one tenant's active persons. Events belong to a person
through ``events.person_id`` (known at ingestion) or through the person's ``user_id`` identities.
Relative windows are resolved against an injectable ``now``.
"""

from __future__ import annotations

import datetime as dt
import operator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from medscrm.db.schema import events, identities, person_tags, persons, segment_members
from medscrm.rules import ast
from medscrm.rules.errors import InternalRuleError
from medscrm.rules.validate import RuleContext, parse

NUMBER_RE = r"^\s*[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"


def json_text(col: sa.ColumnElement, key: str) -> sa.ColumnElement[str]:
    """The text value of ``key`` in a JSON column (``->>`` with the key bound, on DuckDB and PostgreSQL).

    JSON numbers and booleans come back as their text (``120``, ``true``); JSON null and a missing
    key as NULL. Keys are validated names (never starting with ``$`` or ``/``, which DuckDB would read
    as a path)."""
    return col[key].as_string()


class to_number(FunctionElement):
    """Text → double precision, NULL where the text is not a number (no query ever fails on bad data)."""

    type = sa.Float()
    name = "to_number"
    inherit_cache = True


@compiles(to_number)
def _to_number_default(element, compiler, **kw):  # PostgreSQL: guard the cast with a regex
    (arg,) = list(element.clauses)
    return compiler.process(sa.case((arg.regexp_match(NUMBER_RE), sa.cast(arg, sa.Float)), else_=None), **kw)


@compiles(to_number, "duckdb")
def _to_number_duckdb(element, compiler, **kw):
    (arg,) = list(element.clauses)
    return f"TRY_CAST({compiler.process(arg, **kw)} AS DOUBLE)"


_PY_OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _holds_for_zero(cmp: ast.Compare) -> bool:
    if cmp.op == "between":
        lo, hi = cmp.value
        return lo <= 0 <= hi
    return bool(_PY_OPS[cmp.op](0, cmp.value))


class _Compiler:
    def __init__(self, *, tenant_id: str, now: dt.datetime, ctx: RuleContext):
        self.tenant_id = tenant_id
        self.now = now
        self.ctx = ctx
        self.inlining: tuple[str, ...] = ()

    # --- comparisons -------------------------------------------------------------------------
    def _time(self, v: Any) -> dt.datetime:
        return v.at(self.now) if isinstance(v, ast.Ago) else v

    def compare(self, x: sa.ColumnElement, cmp: ast.Compare, typ: str) -> sa.ColumnElement[bool]:
        """``x`` (text, or a number/time for measures) compared by ``cmp``; missing values never match
        eq/in/…; ``ne`` and ``not_in`` also match missing values."""
        op, v = cmp.op, cmp.value
        if typ == "number":
            x = to_number(x) if not isinstance(x.type, sa.Float | sa.Integer | sa.Numeric) else x
        elif typ == "bool":
            x = sa.func.lower(x)
            v = None if v is None else ("true" if v else "false")
        elif typ == "time":
            v = tuple(self._time(t) for t in v) if isinstance(v, tuple) else self._time(v)
        elif typ == "any":  # event property: numbers compared as numbers, the rest as text
            return self._compare_any(x, cmp)
        if op == "exists":
            return x.is_not(None)
        if op == "not_exists":
            return x.is_(None)
        if op == "eq":
            return x == v
        if op == "ne":
            return sa.or_(x.is_(None), x != v)
        if op == "in":
            return x.in_(list(v))
        if op == "not_in":
            return sa.or_(x.is_(None), x.not_in(list(v)))
        if op == "contains":
            return x.contains(v, autoescape=True)
        if op == "starts_with":
            return x.startswith(v, autoescape=True)
        if op == "between":
            return x.between(v[0], v[1])
        if op in ("gt", "gte", "lt", "lte"):
            return {"gt": x > v, "gte": x >= v, "lt": x < v, "lte": x <= v}[op]
        raise InternalRuleError(f"unknown operator {op!r}")

    def _compare_any(self, x: sa.ColumnElement, cmp: ast.Compare) -> sa.ColumnElement[bool]:
        vals = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        if cmp.op in ("exists", "not_exists", "contains", "starts_with"):
            return self.compare(x, cmp, "string")
        if cmp.op in ("gt", "gte", "lt", "lte", "between"):
            return self.compare(x, cmp, "number")
        if all(isinstance(v, bool) for v in vals):
            return self.compare(x, cmp, "bool") if cmp.op in ("eq", "ne") else self._text_in(x, cmp)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            return self.compare(x, cmp, "number")
        return self._text_in(x, cmp)

    def _text_in(self, x: sa.ColumnElement, cmp: ast.Compare) -> sa.ColumnElement[bool]:
        def text(v: Any) -> str:
            return ("true" if v else "false") if isinstance(v, bool) else str(v)

        v = tuple(text(t) for t in cmp.value) if isinstance(cmp.value, tuple) else text(cmp.value)
        return self.compare(x, ast.Compare(cmp.op, v), "string")

    # --- nodes -------------------------------------------------------------------------------
    def cond(self, node: ast.Node) -> sa.ColumnElement[bool]:
        if isinstance(node, ast.And):
            return sa.and_(*(self.cond(c) for c in node.children))
        if isinstance(node, ast.Or):
            return sa.or_(*(self.cond(c) for c in node.children))
        if isinstance(node, ast.Not):
            # a NULL (unknown: missing attribute, non-numeric text) counts as "does not match", so
            # NOT is the exact complement among active persons
            return sa.not_(sa.func.coalesce(self.cond(node.child), sa.false()))
        if isinstance(node, ast.Attr):
            return self.compare(json_text(persons.c.attributes, node.attr), node.cmp, node.type)
        if isinstance(node, ast.PersonType):
            return persons.c.person_type == node.person_type
        if isinstance(node, ast.Tag):
            return self.tag(node)
        if isinstance(node, ast.EventAgg):
            return self.event_agg(node)
        if isinstance(node, ast.Sequence):
            return self.sequence(node)
        if isinstance(node, ast.DidNot):
            pe = self.person_events(node.event, node.window)
            return persons.c.id.not_in(sa.select(pe.c.pid))
        if isinstance(node, ast.SegmentRef):
            return self.segment(node)
        raise InternalRuleError(f"cannot compile {type(node).__name__}")

    def tag(self, node: ast.Tag) -> sa.ColumnElement[bool]:
        t = person_tags
        base = sa.select(t.c.person_id).where(t.c.tenant_id == self.tenant_id, t.c.tag_key == node.tag)
        op = node.cmp.op
        if op == "exists":
            return persons.c.id.in_(base)
        if op == "not_exists":
            return persons.c.id.not_in(base)
        if op in ("ne", "not_in"):  # no such tag value: includes persons without the tag
            positive = ast.Compare("eq" if op == "ne" else "in", node.cmp.value)
            return persons.c.id.not_in(base.where(self.compare(t.c.value, positive, node.type)))
        return persons.c.id.in_(base.where(self.compare(t.c.value, node.cmp, node.type)))

    def person_events(
        self,
        name: str,
        window: ast.Window | None,
        where: tuple[ast.PropFilter, ...] = (),
        prop: str | None = None,
    ) -> sa.Subquery:
        """(eid, pid, ts, val) of the named events in the window, attributed to persons."""
        e = events
        filters = [e.c.tenant_id == self.tenant_id, e.c.event == name]
        if window is not None:
            start, end = window.bounds(self.now)
            if start is not None:
                filters.append(e.c.timestamp >= start)
            if end is not None:
                filters.append(e.c.timestamp < end)
        for f in where:
            filters.append(self.compare(json_text(e.c.properties, f.property), f.cmp, "any"))
        val = json_text(e.c.properties, prop) if prop else sa.null()
        cols = (e.c.id.label("eid"), e.c.timestamp.label("ts"), val.label("val"))
        by_person = sa.select(e.c.person_id.label("pid"), *cols).where(*filters, e.c.person_id.is_not(None))
        i = identities
        by_user = (
            sa.select(i.c.person_id.label("pid"), *cols)
            .join(
                i,
                sa.and_(i.c.tenant_id == self.tenant_id, i.c.type == "user_id", i.c.value == e.c.user_id),
            )
            .where(*filters)
        )
        return sa.union(by_person, by_user).subquery()

    def event_agg(self, node: ast.EventAgg) -> sa.ColumnElement[bool]:
        pe = self.person_events(node.event, node.window, node.where, node.property)
        if node.agg == "count":
            measure, typ = sa.func.count(), "measure"
        elif node.agg == "distinct":
            measure, typ = sa.func.count(sa.distinct(pe.c.val)), "measure"
        elif node.agg == "sum":
            measure, typ = sa.func.coalesce(sa.func.sum(to_number(pe.c.val)), 0.0), "measure"
        elif node.agg == "first":
            measure, typ = sa.func.min(pe.c.ts), "time"
        elif node.agg == "last":
            measure, typ = sa.func.max(pe.c.ts), "time"
        else:
            raise InternalRuleError(f"unknown aggregate {node.agg!r}")
        cmp = self.compare(measure, node.cmp, typ)
        grouped = sa.select(pe.c.pid).group_by(pe.c.pid)
        if typ == "measure" and _holds_for_zero(node.cmp):
            # persons without any such event (measure 0) match too
            return persons.c.id.not_in(grouped.having(sa.not_(cmp)))
        return persons.c.id.in_(grouped.having(cmp))

    def sequence(self, node: ast.Sequence) -> sa.ColumnElement[bool]:
        a = self.person_events(node.did, node.window)
        b = self.person_events(node.then, None)
        q = sa.select(a.c.pid).join(
            b,
            sa.and_(
                b.c.pid == a.c.pid,
                b.c.eid != a.c.eid,
                b.c.ts >= a.c.ts,
                b.c.ts <= a.c.ts + node.within,
            ),
        )
        return persons.c.id.in_(q)

    def segment(self, node: ast.SegmentRef) -> sa.ColumnElement[bool]:
        info = self.ctx.segments.get(node.segment)
        if info is None:
            raise InternalRuleError(f"segment {node.segment!r} vanished after validation")
        if info.kind == "dynamic" and node.segment not in self.inlining:
            inner_ctx = RuleContext(
                fields=self.ctx.fields,
                tags=self.ctx.tags,
                segments=self.ctx.segments,
                defining_segment=node.segment,
            )
            inner = parse(info.rule, inner_ctx)
            saved = self.inlining
            self.inlining = (*saved, node.segment)
            try:
                return self.cond(inner)
            finally:
                self.inlining = saved
        m = segment_members
        return persons.c.id.in_(
            sa.select(m.c.person_id).where(m.c.tenant_id == self.tenant_id, m.c.segment_id == info.id)
        )


def compile_condition(
    node: ast.Node, *, tenant_id: str, now: dt.datetime, ctx: RuleContext | None = None
) -> sa.ColumnElement[bool]:
    """The boolean condition on ``persons`` for ``node``."""
    return _Compiler(tenant_id=tenant_id, now=now, ctx=ctx or RuleContext()).cond(node)


def compile_rule(
    rule: ast.Node | Any, *, tenant_id: str, now: dt.datetime | None = None, ctx: RuleContext | None = None
) -> sa.Select:
    """``select(persons.c.id)`` of the tenant's active persons matching ``rule`` (an AST or JSON)."""
    ctx = ctx or RuleContext()
    node = rule if isinstance(rule, ast.Node) else parse(rule, ctx)
    now = now or dt.datetime.now(dt.UTC)
    return sa.select(persons.c.id).where(
        persons.c.tenant_id == tenant_id,
        persons.c.status == "active",
        compile_condition(node, tenant_id=tenant_id, now=now, ctx=ctx),
    )
