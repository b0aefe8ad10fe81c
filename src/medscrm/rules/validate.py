"""Validation: JSON rule → typed AST, or a :class:`RuleError` listing every problem with its path.

Never raises anything else for any JSON-like input (tested with hypothesis).
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medscrm.rules import ast
from medscrm.rules.errors import Problem, RuleError
from medscrm.schema.person import STANDARD_FIELDS

MAX_DEPTH = 12
MAX_NODES = 500
MAX_IN_VALUES = 10_000
MAX_TEXT = 1000
MAX_LAST = {"hours": 3650 * 24, "days": 3650, "weeks": 522}
MAX_WITHIN_DAYS = 3650
FIELD_TYPES = ("string", "number", "bool", "date")
TAG_TYPES = ("string", "number", "bool")
PERSON_TYPES = ("hcp", "patient")
AGGS = ("count", "sum", "avg", "min", "max", "distinct", "first", "last")
#: aggregates of a property's numeric values (a person without such an event has none: NULL, never matches)
NUMERIC_AGGS = ("sum", "avg", "min", "max")

#: Attribute/tag/property keys: a letter (any script) or _, then word characters, - or space.
KEY_RE = re.compile(r"^[^\W\d][\w\- ]{0,99}$")

OPS: dict[str, tuple[str, ...]] = {
    "string": ("eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists"),
    "number": ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"),
    "bool": ("eq", "ne", "exists", "not_exists"),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"),
    # event aggregates
    "measure": ("eq", "ne", "gt", "gte", "lt", "lte", "between"),
    "time": ("gt", "gte", "lt", "lte", "between"),
}
#: Standard golden-record fields usable as attributes (person_type has its own leaf).
STANDARD_ATTRIBUTES = {f: "string" for f in STANDARD_FIELDS if f != "person_type"}
LEAF_KEYS = (
    "and",
    "or",
    "not",
    "attr",
    "tag",
    "score",
    "consent",
    "event",
    "did",
    "did_not",
    "segment",
    "person_type",
)
#: Score keys every tenant has (``medscrm.scores``); a tenant's other keys come from its ``person_scores``.
DEFAULT_SCORES = ("lead_score", "engagement")
SCORE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "exists", "not_exists")
#: Consent channels and purposes (``medscrm.outreach.consent``).
CONSENT_CHANNELS = ("email", "sms", "wecom", "wechat", "phone", "any")
CONSENT_PURPOSES = ("marketing", "medical_info", "survey", "service")
CONSENT_STATUSES = ("granted", "withdrawn")


@dataclass(frozen=True)
class SegmentInfo:
    id: str
    kind: str  # static, dynamic
    rule: Any  # the stored JSON rule


@dataclass
class RuleContext:
    """What a rule may refer to: attribute types, tag types, score keys, segments (by key)."""

    fields: dict[str, str] = field(default_factory=lambda: dict(STANDARD_ATTRIBUTES))
    tags: dict[str, str] = field(default_factory=dict)
    scores: set[str] = field(default_factory=lambda: set(DEFAULT_SCORES))
    segments: dict[str, SegmentInfo] = field(default_factory=dict)
    #: the key of the segment being defined (a rule may not refer to it, directly or through others)
    defining_segment: str | None = None
    #: per text attribute, what a value stands for: ``value → (canonical, every stored form)``, or None
    #: for a value the dictionary does not know. Imports normalise values (心内科 → 心血管内科) and
    #: hospitals go by many names, so ``eq``/``ne``/``in``/``not_in`` on such an attribute match every
    #: form of the value. The rules package only applies what the caller passes in.
    synonyms: dict[str, Callable[[str], tuple[str, tuple[str, ...]] | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Normalised:
    """A rule value read as its canonical form (``心内科`` → ``心血管内科``) at ``path``."""

    path: str
    attr: str
    value: str
    canonical: str


def _forms(ctx: RuleContext, attr: str, value: Any) -> tuple[str, tuple[str, ...]] | None:
    fn = ctx.synonyms.get(attr)
    if fn is None or not isinstance(value, str):
        return None
    return fn(value)


def normalisations(rule: Any, ctx: RuleContext, path: str = "", _depth: int = 0) -> list[Normalised]:
    """The attribute values of a (possibly invalid) rule that a synonym dictionary reads as another,
    canonical value, each with its JSON path (for the builder's hint)."""
    out: list[Normalised] = []
    if _depth > MAX_DEPTH * 2 or not isinstance(rule, dict):
        return out
    for g in ("and", "or"):
        if isinstance(rule.get(g), list):
            for i, child in enumerate(rule[g]):
                out += normalisations(child, ctx, _join(path, f"{g}[{i}]"), _depth + 1)
    if "not" in rule:
        out += normalisations(rule["not"], ctx, _join(path, "not"), _depth + 1)
    attr = rule.get("attr")
    if isinstance(attr, str) and rule.get("op", "eq") in ("eq", "ne", "in", "not_in"):
        value = rule.get("value")
        for i, v in enumerate(value if isinstance(value, list) else [value]):
            hit = _forms(ctx, attr, v)
            if hit is not None and hit[0] != v:
                vpath = _join(path, "value") + (f"[{i}]" if isinstance(value, list) else "")
                out.append(Normalised(vpath, attr, v, hit[0]))
    return out


def parse(rule: Any, ctx: RuleContext | None = None) -> ast.Node:
    """Validate ``rule`` (parsed JSON) and return its AST; raise :class:`RuleError` with all problems."""
    ctx = ctx or RuleContext()
    v = _Validator(ctx)
    node = v.node(rule, "", 1)
    if not v.problems and node is None:  # pragma: no cover - defensive
        v.add("", "invalid rule")
    if v.problems:
        raise RuleError(v.problems)
    assert node is not None
    return node


def segment_refs(rule: Any, _depth: int = 0) -> set[str]:
    """Segment keys referred to anywhere in a (possibly invalid) JSON rule."""
    out: set[str] = set()
    if _depth > MAX_DEPTH * 2:
        return out
    if isinstance(rule, dict):
        seg = rule.get("segment")
        if isinstance(seg, str):
            out.add(seg)
        for k in ("and", "or", "not"):
            sub = rule.get(k)
            for s in sub if isinstance(sub, list) else [sub]:
                out |= segment_refs(s, _depth + 1)
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 1e15


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_time(v: Any) -> dt.datetime | None:
    if not isinstance(v, str) or not (8 <= len(v) <= 40):
        return None
    try:
        if len(v) == 10:
            d = dt.date.fromisoformat(v)
            t = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
        else:
            t = dt.datetime.fromisoformat(v)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class _Validator:
    def __init__(self, ctx: RuleContext):
        self.ctx = ctx
        self.problems: list[Problem] = []
        self.nodes = 0

    def add(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    def _unknown_keys(self, obj: dict, allowed: tuple[str, ...], path: str) -> None:
        for k in obj:
            if k not in allowed:
                self.add(
                    _join(path, str(k)), f"unknown field {str(k)[:50]!r} (allowed: {', '.join(allowed)})"
                )

    # --- structure ---------------------------------------------------------------------------
    def node(self, obj: Any, path: str, depth: int) -> ast.Node | None:
        self.nodes += 1
        if self.nodes == MAX_NODES + 1:
            self.add(path, f"the rule has more than {MAX_NODES} conditions")
        if self.nodes > MAX_NODES:
            return None
        if depth > MAX_DEPTH:
            self.add(path, f"nested too deeply (at most {MAX_DEPTH} levels)")
            return None
        if not isinstance(obj, dict):
            self.add(path, f"expected an object with one of: {', '.join(LEAF_KEYS)}")
            return None
        kinds = [k for k in LEAF_KEYS if k in obj]
        if not kinds:
            keys = ", ".join(repr(str(k)[:30]) for k in list(obj)[:5]) or "nothing"
            self.add(path, f"expected one of: {', '.join(LEAF_KEYS)} (got {keys})")
            return None
        if len(kinds) > 1:
            self.add(path, f"ambiguous condition: has both {kinds[0]!r} and {kinds[1]!r}")
            return None
        kind = kinds[0]
        return getattr(self, f"_{kind}")(obj, path, depth)

    def _group(self, obj: dict, path: str, depth: int, key: str) -> ast.Node | None:
        self._unknown_keys(obj, (key,), path)
        items = obj[key]
        p = _join(path, key)
        if not isinstance(items, list) or not items:
            self.add(p, "must be a non-empty list of conditions")
            return None
        children = [self.node(c, f"{p}[{i}]", depth + 1) for i, c in enumerate(items)]
        if any(c is None for c in children):
            return None
        cls = ast.And if key == "and" else ast.Or
        return cls(path=path, children=tuple(children))  # type: ignore[arg-type]

    def _and(self, obj, path, depth):
        return self._group(obj, path, depth, "and")

    def _or(self, obj, path, depth):
        return self._group(obj, path, depth, "or")

    def _not(self, obj, path, depth):
        self._unknown_keys(obj, ("not",), path)
        child = self.node(obj["not"], _join(path, "not"), depth + 1)
        return None if child is None else ast.Not(path=path, child=child)

    # --- values ------------------------------------------------------------------------------
    def _scalar(self, v: Any, typ: str, path: str) -> Any:
        """A checked scalar of ``typ``; None (with a problem added) if it is not one."""
        if typ == "string":
            if isinstance(v, str) and 0 < len(v) <= MAX_TEXT:
                return v
            self.add(path, f"must be a non-empty string of at most {MAX_TEXT} characters")
        elif typ == "number":
            if _is_number(v):
                return v
            self.add(path, "must be a finite number")
        elif typ == "bool":
            if isinstance(v, bool):
                return v
            self.add(path, "must be true or false")
        elif typ == "date":
            t = _parse_time(v)
            if t is not None:
                return v
            self.add(path, "must be an ISO date such as 2026-01-31")
        elif typ == "time":
            t = _parse_time(v)
            if t is not None:
                return t
            if isinstance(v, dict):
                return self._ago(v, path)
            self.add(path, 'must be an ISO date/time or {"ago": N, "unit": "days"}')
        elif typ == "any":  # event property values: string, number or bool
            if isinstance(v, bool) or _is_number(v) or (isinstance(v, str) and 0 < len(v) <= MAX_TEXT):
                return v
            self.add(path, "must be a string, a number or true/false")
        else:  # pragma: no cover
            self.add(path, f"unsupported type {typ}")
        return None

    def _ago(self, v: dict, path: str) -> ast.Ago | None:
        self._unknown_keys(v, ("ago", "unit"), path)
        unit = v.get("unit", "days")
        n = v.get("ago")
        ok = True
        if unit not in MAX_LAST:
            self.add(_join(path, "unit"), f"must be one of {', '.join(MAX_LAST)}")
            ok = False
            unit = "days"
        if not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_LAST[unit]):
            self.add(_join(path, "ago"), f"must be an integer between 0 and {MAX_LAST[unit]}")
            ok = False
        return ast.Ago(n=n, unit=unit) if ok else None

    def compare(
        self, obj: dict, typ: str, path: str, ops: tuple[str, ...] | None = None
    ) -> ast.Compare | None:
        """The ``op``/``value`` pair of a leaf, checked against the type's operators."""
        ops = ops or OPS[typ]
        op = obj.get("op")
        if not isinstance(op, str) or op not in ops:
            shown = repr(op)[:40] if op is not None else "missing"
            self.add(
                _join(path, "op"), f"operator {shown} is not valid for {typ} (use one of: {', '.join(ops)})"
            )
            return None
        vpath = _join(path, "value")
        has_value = "value" in obj
        value = obj.get("value")
        if op in ("exists", "not_exists"):
            if has_value:
                self.add(vpath, f"{op} takes no value")
                return None
            return ast.Compare(op)
        if not has_value:
            self.add(vpath, f"{op} needs a value")
            return None
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                self.add(vpath, f"{op} needs a non-empty list")
                return None
            if len(value) > MAX_IN_VALUES:
                self.add(vpath, f"too many values ({len(value)}; at most {MAX_IN_VALUES:,})")
                return None
            n = len(self.problems)
            vals = [self._scalar(x, typ, f"{vpath}[{i}]") for i, x in enumerate(value)]
            if len(self.problems) > n:
                return None
            return ast.Compare(op, tuple(vals))
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.add(vpath, "between needs a list of two values [low, high]")
                return None
            lo = self._scalar(value[0], typ, f"{vpath}[0]")
            hi = self._scalar(value[1], typ, f"{vpath}[1]")
            if lo is None or hi is None:
                return None
            if not isinstance(lo, ast.Ago) and not isinstance(hi, ast.Ago) and lo > hi:
                self.add(vpath, "low is greater than high")
                return None
            return ast.Compare(op, (lo, hi))
        if op in ("contains", "starts_with") and not isinstance(value, str):
            self.add(vpath, f"{op} needs a string")
            return None
        v = self._scalar(value, "string" if op in ("contains", "starts_with") else typ, vpath)
        return None if v is None else ast.Compare(op, v)

    def key(self, v: Any, path: str, what: str) -> str | None:
        if isinstance(v, str) and KEY_RE.match(v):
            return v
        self.add(path, f"{what} must be a name of letters, digits, _ or - (at most 100 characters)")
        return None

    def event_name(self, v: Any, path: str) -> str | None:
        if isinstance(v, str) and len(v.strip()) > 0 and len(v) <= 200:
            return v
        self.add(path, "must be an event name (a non-empty string of at most 200 characters)")
        return None

    def window(self, obj: dict, path: str) -> tuple[bool, ast.Window | None]:
        """(ok, window); a missing window means all time."""
        if "window" not in obj:
            return True, None
        w = obj["window"]
        p = _join(path, "window")
        if not isinstance(w, dict):
            self.add(p, 'must be {"last": N, "unit": "days"} or {"since": "2026-01-01", "until": ...}')
            return False, None
        if "last" in w:
            self._unknown_keys(w, ("last", "unit"), p)
            unit = w.get("unit", "days")
            if unit not in MAX_LAST:
                self.add(_join(p, "unit"), f"must be one of {', '.join(MAX_LAST)}")
                return False, None
            n = w["last"]
            if not (isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_LAST[unit]):
                self.add(_join(p, "last"), f"must be a positive integer ≤ {MAX_LAST[unit]}")
                return False, None
            return True, ast.Window(last=n, unit=unit)
        if "since" in w:
            self._unknown_keys(w, ("since", "until"), p)
            since = _parse_time(w["since"])
            until = _parse_time(w["until"]) if "until" in w else None
            ok = True
            if since is None:
                self.add(_join(p, "since"), "must be an ISO date or date-time, e.g. 2026-01-01")
                ok = False
            if "until" in w and until is None:
                self.add(_join(p, "until"), "must be an ISO date or date-time, e.g. 2026-03-31")
                ok = False
            if ok and until is not None and until <= since:
                self.add(p, "until must be after since")
                ok = False
            return ok, (ast.Window(since=since, until=until) if ok else None)
        self.add(p, 'must have "last" (with "unit") or "since" (with optional "until")')
        return False, None

    # --- leaves ------------------------------------------------------------------------------
    def _attr(self, obj, path, depth):
        self._unknown_keys(obj, ("attr", "op", "value"), path)
        name = self.key(obj["attr"], _join(path, "attr"), "attr")
        if name is None:
            return None
        typ = self.ctx.fields.get(name)
        if typ is None:
            self.add(_join(path, "attr"), f"unknown attribute {name!r}{_suggest(name, self.ctx.fields)}")
            return None
        if typ not in FIELD_TYPES:  # pragma: no cover - registry built by us
            typ = "string"
        cmp = self.compare(obj, typ, path)
        if cmp is not None and typ == "string" and name in self.ctx.synonyms:
            cmp = self._synonyms(name, cmp)
        return None if cmp is None else ast.Attr(path=path, attr=name, type=typ, cmp=cmp)

    def _synonyms(self, name: str, cmp: ast.Compare) -> ast.Compare:
        """``eq``/``ne``/``in``/``not_in`` on an attribute with a synonym dictionary, widened to every
        stored form of each value (the canonical one and its synonyms)."""
        if cmp.op not in ("eq", "ne", "in", "not_in"):
            return cmp
        values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        forms: list[str] = []
        for v in values:
            hit = _forms(self.ctx, name, v)
            for f in (hit[1] if hit else ()) or (v,):
                if f not in forms:
                    forms.append(f)
        if forms == list(values):
            return cmp
        return ast.Compare("in" if cmp.op in ("eq", "in") else "not_in", tuple(forms))

    def _tag(self, obj, path, depth):
        self._unknown_keys(obj, ("tag", "op", "value"), path)
        name = self.key(obj["tag"], _join(path, "tag"), "tag")
        if name is None:
            return None
        typ = self.ctx.tags.get(name)
        if typ is None:
            self.add(_join(path, "tag"), f"unknown tag {name!r}{_suggest(name, self.ctx.tags)}")
            return None
        cmp = self.compare(obj, typ if typ in TAG_TYPES else "string", path)
        return None if cmp is None else ast.Tag(path=path, tag=name, type=typ, cmp=cmp)

    def _score(self, obj, path, depth):
        self._unknown_keys(obj, ("score", "op", "value"), path)
        name = self.key(obj["score"], _join(path, "score"), "score")
        if name is None:
            return None
        if name not in self.ctx.scores:
            self.add(_join(path, "score"), f"unknown score {name!r}{_suggest(name, self.ctx.scores)}")
            return None
        cmp = self.compare(obj, "number", path, SCORE_OPS)
        return None if cmp is None else ast.Score(path=path, score=name, cmp=cmp)

    def _consent(self, obj, path, depth):
        self._unknown_keys(obj, ("consent", "purpose", "status"), path)
        values = []
        ok = True
        for k, what, choices, default in (
            ("consent", "channel", CONSENT_CHANNELS, None),
            ("purpose", "purpose", CONSENT_PURPOSES, None),
            ("status", "status", CONSENT_STATUSES, "granted"),
        ):
            v = obj.get(k, default)
            if not isinstance(v, str) or v not in choices:
                shown = "missing" if v is None else f"{v!r}"[:40] + " is not valid"
                self.add(_join(path, k), f"consent {what} {shown} (use one of: {', '.join(choices)})")
                ok = False
            values.append(v)
        if not ok:
            return None
        return ast.Consent(path=path, channel=values[0], purpose=values[1], status=values[2])

    def _where(self, w: Any, path: str) -> tuple[ast.PropFilter, ...] | None:
        items = w if isinstance(w, list) else [w]
        if not items or len(items) > 20:
            self.add(path, "must be a property filter or a list of 1 to 20 of them")
            return None
        out = []
        for i, f in enumerate(items):
            p = f"{path}[{i}]" if isinstance(w, list) else path
            if not isinstance(f, dict):
                self.add(p, 'must be {"property": ..., "op": ..., "value": ...}')
                return None
            self._unknown_keys(f, ("property", "op", "value"), p)
            prop = self.key(f.get("property"), _join(p, "property"), "property")
            op = f.get("op")
            typ = "number" if op in ("gt", "gte", "lt", "lte", "between") else "any"
            ops = tuple(dict.fromkeys(OPS["string"] + OPS["number"]))
            cmp = self.compare(f, typ, p, ops)
            if prop is None or cmp is None:
                return None
            out.append(ast.PropFilter(property=prop, cmp=cmp))
        return tuple(out)

    def _event(self, obj, path, depth):
        self._unknown_keys(obj, ("event", "agg", "property", "where", "op", "value", "window"), path)
        name = self.event_name(obj["event"], _join(path, "event"))
        agg = obj.get("agg", "count")
        if agg not in AGGS:
            self.add(_join(path, "agg"), f"must be one of {', '.join(AGGS)}")
            return None
        prop = None
        if agg in (*NUMERIC_AGGS, "distinct"):
            prop = self.key(obj.get("property"), _join(path, "property"), f"property (needed by {agg})")
        elif "property" in obj:
            self.add(_join(path, "property"), f"{agg} takes no property")
            return None
        where: tuple[ast.PropFilter, ...] | None = ()
        if "where" in obj:
            where = self._where(obj["where"], _join(path, "where"))
        if agg in ("first", "last"):
            cmp = self.compare(obj, "time", path)
        elif agg == "count" and "op" not in obj and "value" not in obj:
            cmp = ast.Compare("gte", 1)
        else:
            cmp = self.compare(obj, "number", path, OPS["measure"])
            if cmp is not None and agg in ("count", "distinct"):
                vals = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
                if any(not isinstance(x, int) or x < 0 for x in vals):
                    self.add(_join(path, "value"), f"a {agg} is compared with non-negative integers")
                    cmp = None
        ok, window = self.window(obj, path)
        if None in (name, cmp, where) or not ok or (agg in (*NUMERIC_AGGS, "distinct") and prop is None):
            return None
        return ast.EventAgg(
            path=path, event=name, agg=agg, property=prop, where=where, cmp=cmp, window=window
        )

    def _did(self, obj, path, depth):
        self._unknown_keys(obj, ("did", "then", "within", "window"), path)
        did = self.event_name(obj["did"], _join(path, "did"))
        then = self.event_name(obj.get("then"), _join(path, "then"))
        within = obj.get("within")
        wp = _join(path, "within")
        delta = None
        if not isinstance(within, dict) or len(within) != 1 or next(iter(within)) not in ("days", "hours"):
            self.add(wp, 'must be {"days": N} or {"hours": N}')
        else:
            unit, n = next(iter(within.items()))
            limit = MAX_WITHIN_DAYS * (24 if unit == "hours" else 1)
            if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= limit:
                delta = dt.timedelta(**{unit: n})
            else:
                self.add(_join(wp, unit), f"must be a positive integer ≤ {limit}")
        ok, window = self.window(obj, path)
        if None in (did, then, delta) or not ok:
            return None
        return ast.Sequence(path=path, did=did, then=then, within=delta, window=window)

    def _did_not(self, obj, path, depth):
        self._unknown_keys(obj, ("did_not", "window"), path)
        name = self.event_name(obj["did_not"], _join(path, "did_not"))
        ok, window = self.window(obj, path)
        if name is None or not ok:
            return None
        return ast.DidNot(path=path, event=name, window=window)

    def _segment(self, obj, path, depth):
        self._unknown_keys(obj, ("segment",), path)
        p = _join(path, "segment")
        key = self.key(obj["segment"], p, "segment")
        if key is None:
            return None
        if key == self.ctx.defining_segment:
            self.add(p, f"segment {key!r} cannot refer to itself")
            return None
        if key not in self.ctx.segments:
            self.add(p, f"unknown segment {key!r}{_suggest(key, self.ctx.segments)}")
            return None
        cycle = self._cycle(key)
        if cycle:
            self.add(p, "segments refer to each other in a cycle: " + " → ".join(cycle))
            return None
        return ast.SegmentRef(path=path, segment=key)

    def _cycle(self, start: str) -> list[str] | None:
        """A path of segment references from ``start`` back to the defined segment (or any loop)."""
        target = self.ctx.defining_segment
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            key, trail = stack.pop()
            info = self.ctx.segments.get(key)
            if info is None or info.kind != "dynamic":
                continue
            for ref in sorted(segment_refs(info.rule)):
                if ref == target or ref in trail:
                    return [target or trail[0], *trail, ref] if target else [*trail, ref]
                if ref not in seen:
                    seen.add(ref)
                    stack.append((ref, [*trail, ref]))
        return None

    def _person_type(self, obj, path, depth):
        self._unknown_keys(obj, ("person_type",), path)
        v = obj["person_type"]
        if not isinstance(v, str) or v not in PERSON_TYPES:
            self.add(_join(path, "person_type"), f"must be one of {', '.join(PERSON_TYPES)}")
            return None
        return ast.PersonType(path=path, person_type=v)
