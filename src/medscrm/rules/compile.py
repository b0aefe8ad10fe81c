"""Compilation: AST → SQLAlchemy Core. Never builds SQL strings; every user value is a bound parameter.

The result is ``select(persons.c.id)`` for one tenant's active persons. Events belong to a person
through ``events.person_id`` (known at ingestion) or through the person's ``user_id`` identities.
Relative windows are resolved against an injectable ``now``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from medscrm.db.query import in_ids  # noqa: F401  (re-exported: segments use it from here)
from medscrm.db.schema import (
    consents,
    events,
    identities,
    person_restrictions,
    person_scores,
    person_tags,
    persons,
    segment_members,
)
from medscrm.rules import ast
from medscrm.rules.errors import InternalRuleError
from medscrm.rules.validate import NUMERIC_AGGS, RuleContext, parse

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
    def __init__(
        self,
        *,
        tenant_id: str,
        now: dt.datetime,
        ctx: RuleContext,
        person_ids: Sequence[str] | None = None,
    ):
        self.tenant_id = tenant_id
        self.now = now
        self.ctx = ctx
        self.inlining: tuple[str, ...] = ()
        #: restrict every sub-query to these persons (incremental re-evaluation); None = everyone
        self.person_ids = list(person_ids) if person_ids is not None else None
        #: aggregate leaves computed by the rule's shared events sub-query (see share_aggregates)
        self.shared: dict[ast.Node, tuple[sa.ColumnElement, str]] = {}

    def only(self, col: sa.ColumnElement) -> list[sa.ColumnElement[bool]]:
        """``col IN (person_ids)`` when re-evaluating a few persons (lets every sub-query use its
        person index instead of scanning the tenant); nothing otherwise."""
        return [] if self.person_ids is None else [in_ids(col, self.person_ids)]

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
        if isinstance(node, ast.Score):
            return self.score(node)
        if isinstance(node, ast.Consent):
            return self.consent(node)
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
        base = sa.select(t.c.person_id).where(
            t.c.tenant_id == self.tenant_id, t.c.tag_key == node.tag, *self.only(t.c.person_id)
        )
        op = node.cmp.op
        if op == "exists":
            return persons.c.id.in_(base)
        if op == "not_exists":
            return persons.c.id.not_in(base)
        if op in ("ne", "not_in"):  # no such tag value: includes persons without the tag
            positive = ast.Compare("eq" if op == "ne" else "in", node.cmp.value)
            return persons.c.id.not_in(base.where(self.compare(t.c.value, positive, node.type)))
        return persons.c.id.in_(base.where(self.compare(t.c.value, node.cmp, node.type)))

    def score(self, node: ast.Score) -> sa.ColumnElement[bool]:
        t = person_scores
        base = sa.select(t.c.person_id).where(
            t.c.tenant_id == self.tenant_id, t.c.score_key == node.score, *self.only(t.c.person_id)
        )
        op = node.cmp.op
        if op == "exists":
            return persons.c.id.in_(base)
        if op == "not_exists":
            return persons.c.id.not_in(base)
        if op == "ne":  # persons without the score too
            return persons.c.id.not_in(base.where(t.c.value == node.cmp.value))
        return persons.c.id.in_(base.where(self.compare(t.c.value, node.cmp, "number")))

    def consent(self, node: ast.Consent) -> sa.ColumnElement[bool]:
        t = consents

        def rows(channel: str, status: str | None = None) -> sa.Select:
            q = sa.select(t.c.person_id).where(
                t.c.tenant_id == self.tenant_id,
                t.c.channel == channel,
                t.c.purpose == node.purpose,
                *self.only(t.c.person_id),
            )
            return q if status is None else q.where(t.c.status == status)

        own = persons.c.id.in_(rows(node.channel, node.status))
        if node.status != "granted" or node.channel == "any":
            return own
        # no row of its own for this channel: a blanket ("any" channel) consent of the purpose counts
        return sa.or_(
            own,
            sa.and_(persons.c.id.not_in(rows(node.channel)), persons.c.id.in_(rows("any", "granted"))),
        )

    def event_filter(
        self, name: str, window: ast.Window | None, where: tuple[ast.PropFilter, ...] = ()
    ) -> list[sa.ColumnElement[bool]]:
        """Conditions on ``events`` for the named events in the window with the property filters."""
        e = events
        filters = [e.c.event == name]
        if window is not None:
            start, end = window.bounds(self.now)
            if start is not None:
                filters.append(e.c.timestamp >= start)
            if end is not None:
                filters.append(e.c.timestamp < end)
        for f in where:
            filters.append(self.compare(json_text(e.c.properties, f.property), f.cmp, "any"))
        return filters

    def attributed(self, filters: list[sa.ColumnElement[bool]], cols: tuple) -> sa.Subquery:
        """``(pid, *cols)`` of the tenant's events matching ``filters``, attributed to persons through
        ``events.person_id`` or the person's ``user_id`` identities (each (event, person) pair once)."""
        e = events
        base = [e.c.tenant_id == self.tenant_id, *filters]
        by_person = sa.select(e.c.person_id.label("pid"), *cols).where(
            *base, e.c.person_id.is_not(None), *self.only(e.c.person_id)
        )
        # (user id → person) pairs, each once (several identity rows may say the same)
        i = identities
        users = (
            sa.select(i.c.value.label("uid"), i.c.person_id.label("pid"))
            .where(i.c.tenant_id == self.tenant_id, i.c.type == "user_id", *self.only(i.c.person_id))
            .distinct()
            .subquery()
        )
        by_user = (
            sa.select(users.c.pid, *cols)
            .join(users, users.c.uid == e.c.user_id)
            # the pair is already there through events.person_id: UNION ALL stays a set of (event, person)
            .where(*base, sa.or_(e.c.person_id.is_(None), e.c.person_id != users.c.pid))
        )
        return sa.union_all(by_person, by_user).subquery()

    def person_events(
        self,
        name: str,
        window: ast.Window | None,
        where: tuple[ast.PropFilter, ...] = (),
        prop: str | None = None,
    ) -> sa.Subquery:
        """(pid, eid, ts, val) of the named events in the window, attributed to persons."""
        e = events
        val = json_text(e.c.properties, prop) if prop else sa.null()
        cols = (e.c.id.label("eid"), e.c.timestamp.label("ts"), val.label("val"))
        return self.attributed(self.event_filter(name, window, where), cols)

    def share_aggregates(self, node: ast.Node) -> sa.Subquery | None:
        """One pass over the events for every aggregate leaf of the rule: a per-person sub-query with a
        ``FILTER``-ed aggregate per leaf (``m0``, ``m1``, …), joined to ``persons`` (inner or LEFT) by
        :func:`compile_rule`. Leaves inside referenced segments keep their own sub-queries."""
        leaves = [n for n in _walk(node) if isinstance(n, ast.EventAgg)]
        if not leaves:
            return None
        e = events
        conds = [sa.and_(*self.event_filter(n.event, n.window, n.where)) for n in leaves]
        # what any leaf needs: lets the engine prune by event name and time before the OR
        pre = [e.c.event.in_(sorted({n.event for n in leaves})), sa.or_(*conds)]
        bounds = [n.window.bounds(self.now) if n.window else (None, None) for n in leaves]
        if all(b[0] is not None for b in bounds):
            pre.append(e.c.timestamp >= min(b[0] for b in bounds))
        if all(b[1] is not None for b in bounds):
            pre.append(e.c.timestamp < max(b[1] for b in bounds))
        cols: list[sa.ColumnElement] = [e.c.timestamp.label("ts")]
        for k, (n, c) in enumerate(zip(leaves, conds, strict=True)):
            cols.append(c.label(f"f{k}"))
            if n.property:
                v = json_text(e.c.properties, n.property)
                # a sum reads a number: cast once here, not after carrying the text through the union
                cols.append((to_number(v) if n.agg in NUMERIC_AGGS else v).label(f"v{k}"))
        u = self.attributed(pre, tuple(cols))
        measures = []
        for k, n in enumerate(leaves):
            flag = u.c[f"f{k}"]
            if n.agg == "count":
                m = sa.func.count().filter(flag)
            elif n.agg == "distinct":
                m = sa.func.count(sa.distinct(u.c[f"v{k}"])).filter(flag)
            elif n.agg in NUMERIC_AGGS:  # of the numeric values (text that is no number: NULL)
                m = getattr(sa.func, n.agg)(u.c[f"v{k}"]).filter(flag)
            elif n.agg == "first":
                m = sa.func.min(u.c.ts).filter(flag)
            elif n.agg == "last":
                m = sa.func.max(u.c.ts).filter(flag)
            else:
                raise InternalRuleError(f"unknown aggregate {n.agg!r}")
            measures.append(m.label(f"m{k}"))
        agg = sa.select(u.c.pid, *measures).group_by(u.c.pid).subquery("event_aggs")
        self.shared = {n: (agg.c[f"m{k}"], n.agg) for k, n in enumerate(leaves)}
        return agg

    def event_agg(self, node: ast.EventAgg) -> sa.ColumnElement[bool]:
        if node in self.shared:  # a column of the rule's shared aggregate (NULL: no such event)
            col, agg = self.shared[node]
            if agg in ("first", "last"):
                return self.compare(col, node.cmp, "time")
            if agg in ("avg", "min", "max"):  # no such event (or no number): no value, never matches
                return self.compare(col, node.cmp, "measure")
            zero = sa.literal(0.0 if agg == "sum" else 0)
            return self.compare(sa.func.coalesce(col, zero), node.cmp, "measure")
        pe = self.person_events(node.event, node.window, node.where, node.property)
        if node.agg == "count":
            measure, typ = sa.func.count(), "measure"
        elif node.agg == "distinct":
            measure, typ = sa.func.count(sa.distinct(pe.c.val)), "measure"
        elif node.agg == "sum":
            measure, typ = sa.func.coalesce(sa.func.sum(to_number(pe.c.val)), 0.0), "measure"
        elif node.agg in ("avg", "min", "max"):
            measure, typ = getattr(sa.func, node.agg)(to_number(pe.c.val)), "value"
        elif node.agg == "first":
            measure, typ = sa.func.min(pe.c.ts), "time"
        elif node.agg == "last":
            measure, typ = sa.func.max(pe.c.ts), "time"
        else:
            raise InternalRuleError(f"unknown aggregate {node.agg!r}")
        cmp = self.compare(measure, node.cmp, "measure" if typ == "value" else typ)
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
                scores=self.ctx.scores,
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
            sa.select(m.c.person_id).where(
                m.c.tenant_id == self.tenant_id, m.c.segment_id == info.id, *self.only(m.c.person_id)
            )
        )


def compile_condition(
    node: ast.Node,
    *,
    tenant_id: str,
    now: dt.datetime,
    ctx: RuleContext | None = None,
    person_ids: Sequence[str] | None = None,
) -> sa.ColumnElement[bool]:
    """The boolean condition on ``persons`` for ``node`` (sub-queries restricted to ``person_ids``
    when given: the condition is then only meaningful for those persons)."""
    return _Compiler(tenant_id=tenant_id, now=now, ctx=ctx or RuleContext(), person_ids=person_ids).cond(node)


def compile_rule(
    rule: ast.Node | Any,
    *,
    tenant_id: str,
    now: dt.datetime | None = None,
    ctx: RuleContext | None = None,
    person_ids: Sequence[str] | None = None,
    share_aggregates: bool = True,
) -> sa.Select:
    """``select(persons.c.id)`` of the tenant's active persons matching ``rule`` (an AST or JSON);
    persons whose processing is restricted (``person_restrictions``) never match.

    ``person_ids`` restricts the evaluation to those persons (incremental refresh: the result is
    exactly the matching subset of ``person_ids``, and every sub-query reads only their rows).
    ``share_aggregates`` computes all event aggregates of the rule in one pass over the events (one
    grouped sub-query joined to persons) instead of one semi-join sub-query per leaf; both give the
    same answer (tested), the shared form is faster on large event tables."""
    ctx = ctx or RuleContext()
    node = rule if isinstance(rule, ast.Node) else parse(rule, ctx)
    now = now or dt.datetime.now(dt.UTC)
    c = _Compiler(tenant_id=tenant_id, now=now, ctx=ctx, person_ids=person_ids)
    agg = c.share_aggregates(node) if share_aggregates else None
    q = sa.select(persons.c.id)
    if agg is not None:
        # an inner join when the rule needs at least one such event anyway (the engine can then start
        # from the aggregated events instead of keeping every person); else LEFT JOIN + coalesce
        inner = _needs_an_event(node)
        q = q.select_from(
            persons.join(agg, agg.c.pid == persons.c.id)
            if inner
            else persons.outerjoin(agg, agg.c.pid == persons.c.id)
        )
    restricted = (
        sa.select(person_restrictions.c.person_id)
        .where(
            person_restrictions.c.tenant_id == tenant_id,
            person_restrictions.c.person_id == persons.c.id,
            person_restrictions.c.kind == "restricted",
        )
        .exists()
    )
    return q.where(
        persons.c.tenant_id == tenant_id,
        persons.c.status == "active",
        ~restricted,  # processing restricted (PIPL Art. 44): in no segment, no journey goal or branch
        *([] if person_ids is None else [in_ids(persons.c.id, person_ids, row_filter=True)]),
        c.cond(node),
    )


def _needs_an_event(node: ast.Node) -> bool:
    """True when no person without any of the rule's aggregated events can match: the rule is a
    count/sum/distinct leaf false at 0, an avg/min/max leaf (no event, no value), or an AND with such a
    leaf among its children."""
    if isinstance(node, ast.EventAgg):
        if node.agg in ("avg", "min", "max"):
            return True
        return node.agg in ("count", "sum", "distinct") and not _holds_for_zero(node.cmp)
    if isinstance(node, ast.And):
        return any(_needs_an_event(c) for c in node.children)
    return False


def _walk(node: ast.Node):
    """The nodes of a rule (not descending into referenced segments)."""
    yield node
    if isinstance(node, ast.And | ast.Or):
        for ch in node.children:
            yield from _walk(ch)
    elif isinstance(node, ast.Not):
        yield from _walk(node.child)
