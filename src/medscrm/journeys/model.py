"""Journeys as data (旅程定义): pydantic models of a journey definition and its graph validation.

``validate_definition(data)`` is pure (no database): structure, durations and the step graph
(unknown targets, unreachable steps, cycles without a wait). Every problem names its node, e.g.
``steps[remind].duration: ...``. References to the tenant's data (segments, rule fields, content,
channel credentials, tags) are checked by :func:`medscrm.journeys.service.check_references`.
Never raises anything but :class:`JourneyError` for any JSON-like input (tested with hypothesis).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medscrm.common import MedscrmError
from medscrm.rules.errors import Problem

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
MAX_STEPS = 200
MAX_WAIT = dt.timedelta(days=365)
#: China-time windows of the behaviour model's ``time_preference`` tag: name -> (start hour, end hour).
WINDOWS: dict[str, tuple[int, int]] = {
    "morning": (6, 11),
    "noon": (11, 14),
    "afternoon": (14, 18),
    "evening": (18, 22),
    "night": (22, 6),
}
SEND_CHANNELS = ("email", "sms", "wecom", "wechat_template")
PURPOSES = ("marketing", "medical_info", "survey", "service")
WAIT_TYPES = ("wait", "wait_window")
TERMINAL_TYPES = ("goal", "exit")

_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.I)
_ISO_DUR_RE = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$", re.I
)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class JourneyError(MedscrmError):
    """The journey definition is invalid; ``problems`` lists every problem, each at its node."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems[:20]))

    def as_list(self) -> list[dict[str, str]]:
        return [p.as_dict() for p in self.problems]


def parse_duration(v: Any) -> dt.timedelta:
    """``"2d"``, ``"90m"``, ``"PT2H"``, ``{"days": 2, "hours": 3}`` or seconds → a positive timedelta
    of at most 365 days; ValueError (with the reason) otherwise."""
    secs: float
    if isinstance(v, bool):
        raise ValueError("a duration is text like '2d', '3h', 'PT30M' or {days: N}")
    if isinstance(v, int | float):
        secs = float(v)
    elif isinstance(v, str):
        m = _DUR_RE.match(v)
        if m:
            secs = float(m.group(1)) * _UNITS[m.group(2).lower()]
        else:
            iso = _ISO_DUR_RE.match(v.strip()) if v.strip() not in ("P", "PT") else None
            if not iso or not any(iso.groupdict().values()):
                raise ValueError(
                    f"{v[:40]!r} is not a duration (use '2d', '3h', '30m', 'PT2H' or {{days: N}})"
                )
            g = {k: int(x or 0) for k, x in iso.groupdict().items()}
            secs = g["w"] * 604800 + g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]
    elif isinstance(v, dict):
        allowed = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
        bad = [k for k in v if k not in allowed]
        if bad or not v:
            raise ValueError(f"duration keys are {', '.join(allowed)}")
        secs = 0.0
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, int | float) or x < 0 or x > 1e7:
                raise ValueError(f"{k} must be a non-negative number")
            secs += float(x) * allowed[k]
    else:
        raise ValueError("a duration is text like '2d', '3h', 'PT30M' or {days: N}")
    if not secs == secs or secs <= 0:  # NaN or not positive
        raise ValueError("a duration must be positive")
    if secs > MAX_WAIT.total_seconds():
        raise ValueError("a duration may be at most 365 days")
    return dt.timedelta(seconds=secs)


Duration = Annotated[Any, Field(description="'2d', '3h', '30m', 'PT2H' or {days: N, hours: N}")]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PropertyFilter(_M):
    property: str = Field(min_length=1, max_length=100)
    op: Literal["eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "exists"] = "eq"
    value: Any = None


# --- triggers ------------------------------------------------------------------------------------
class EventTrigger(_M):
    type: Literal["event"]
    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list)

    @field_validator("where", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


class SegmentTrigger(_M):
    type: Literal["segment_entry", "segment_exit"]
    segment: str = Field(min_length=1, max_length=64)


class ScheduleTrigger(_M):
    type: Literal["schedule"]
    at: dt.datetime
    every: Duration = None
    segment: str = Field(min_length=1, max_length=64, description="the audience: a segment key")

    @field_validator("at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)


class ApiTrigger(_M):
    type: Literal["api"]


TRIGGERS = {"event": EventTrigger, "segment_entry": SegmentTrigger, "segment_exit": SegmentTrigger}
TRIGGERS |= {"schedule": ScheduleTrigger, "api": ApiTrigger}
Trigger = EventTrigger | SegmentTrigger | ScheduleTrigger | ApiTrigger


# --- steps ---------------------------------------------------------------------------------------
class _Step(_M):
    id: str
    name: str | None = None
    next: str | None = None

    def targets(self) -> list[tuple[str, str]]:
        """(field, target step id) of every outgoing edge."""
        return [("next", self.next)] if self.next else []


class WaitStep(_Step):
    type: Literal["wait"]
    duration: Duration


class WaitWindowStep(_Step):
    type: Literal["wait_window"]
    default_window: Literal["morning", "noon", "afternoon", "evening", "night"] = "morning"


class BranchStep(_Step):
    type: Literal["branch"]
    condition: Any
    then: str | None = None
    else_: str | None = Field(None, alias="else")

    def targets(self) -> list[tuple[str, str]]:
        return [(f, t) for f, t in (("then", self.then), ("else", self.else_)) if t]


class SplitBranch(_M):
    weight: float = Field(gt=0, le=1_000_000)
    next: str | None = None
    label: str | None = None


class SplitStep(_Step):
    type: Literal["split"]
    branches: list[SplitBranch] = Field(min_length=2, max_length=20)

    def targets(self) -> list[tuple[str, str]]:
        return [(f"branches[{i}].next", b.next) for i, b in enumerate(self.branches) if b.next]


class SendStep(_Step):
    type: Literal["send"]
    channel: Literal["email", "sms", "wecom", "wechat_template"]
    content: str = Field(min_length=1, max_length=100, description="content key or id (ct_…)")
    purpose: Literal["marketing", "medical_info", "survey", "service"] = "marketing"
    variables: dict[str, Any] = Field(default_factory=dict)
    on_blocked: str | None = Field(None, description="next step when the send is refused")

    def targets(self) -> list[tuple[str, str]]:
        return [*super().targets(), *([("on_blocked", self.on_blocked)] if self.on_blocked else [])]


class TagStep(_Step):
    type: Literal["add_tag", "remove_tag"]
    tag: str = Field(min_length=1, max_length=64)
    value: str | None = Field(None, max_length=300)


class SetAttributeStep(_Step):
    type: Literal["set_attribute"]
    attribute: str = Field(min_length=1, max_length=100)
    value: str | int | float | bool | None


class TaskStep(_Step):
    type: Literal["task"]
    title: str = Field(min_length=1, max_length=300)
    due: Duration = None
    note: str | None = Field(None, max_length=2000)
    assignee: str | None = Field(None, description="fallback when the person has no rep")


class WebhookStep(_Step):
    type: Literal["webhook"]
    payload: dict[str, Any] = Field(default_factory=dict)


class GoalStep(_Step):
    type: Literal["goal"]


class ExitStep(_Step):
    type: Literal["exit"]


STEPS: dict[str, type[_Step]] = {
    "wait": WaitStep,
    "wait_window": WaitWindowStep,
    "branch": BranchStep,
    "split": SplitStep,
    "send": SendStep,
    "add_tag": TagStep,
    "remove_tag": TagStep,
    "set_attribute": SetAttributeStep,
    "task": TaskStep,
    "webhook": WebhookStep,
    "goal": GoalStep,
    "exit": ExitStep,
}
Step = (
    WaitStep
    | WaitWindowStep
    | BranchStep
    | SplitStep
    | SendStep
    | TagStep
    | SetAttributeStep
    | TaskStep
    | WebhookStep
    | GoalStep
    | ExitStep
)


class Reentry(_M):
    mode: Literal["never", "after", "always"] = "never"
    days: int | None = Field(None, ge=1, le=3650)


class Caps(_M):
    max_enrollments: int | None = Field(None, ge=1)
    per_person: int | None = Field(None, ge=1)


class Journey(_M):
    key: str
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    triggers: list[Annotated[Trigger, Field(discriminator="type")]] = Field(default_factory=list)
    entry: str | None = Field(None, description="first step (default: the first listed)")
    steps: list[Annotated[Step, Field(discriminator="type")]]
    reentry: Reentry = Field(default_factory=Reentry)
    caps: Caps = Field(default_factory=Caps)
    goal: Any = Field(None, description="rule DSL: a person who meets it has converted and leaves")

    @property
    def entry_step(self) -> str:
        return self.entry or self.steps[0].id

    def step(self, step_id: str) -> Step:
        return self._by_id()[step_id]

    def _by_id(self) -> dict[str, Step]:
        cache = self.__dict__.get("_by_id_cache")
        if cache is None:
            cache = {s.id: s for s in self.steps}
            self.__dict__["_by_id_cache"] = cache
        return cache

    def durations(self) -> dict[str, dt.timedelta]:
        return {s.id: parse_duration(s.duration) for s in self.steps if isinstance(s, WaitStep)}


def _loc(loc: tuple) -> str:
    out = ""
    for x in loc:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out


def _pyd_problems(exc: ValidationError, prefix: str, skip: int = 0) -> list[Problem]:
    out = []
    for e in exc.errors():
        loc = tuple(x for x in e["loc"][skip:])
        path = _loc(loc)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] == "missing":
            msg = "is required"
        out.append(Problem(f"{prefix}.{path}" if path and prefix else (path or prefix), msg))
    return out


def _step_label(raw: Any, i: int) -> str:
    sid = raw.get("id") if isinstance(raw, dict) else None
    return f"steps[{sid}]" if isinstance(sid, str) and KEY_RE.match(sid) else f"steps[{i}]"


def validate_definition(data: Any) -> Journey:
    """Validate a journey definition (parsed JSON/YAML); raise :class:`JourneyError` naming every bad node."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise JourneyError([Problem("", "a journey definition is an object with key, name, triggers, steps")])
    top = {k: v for k, v in data.items() if k not in ("steps", "triggers")}
    raw_steps = data.get("steps")
    raw_triggers = data.get("triggers", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(Problem("steps", "must be a non-empty list of steps"))
        raw_steps = []
    elif len(raw_steps) > MAX_STEPS:
        problems.append(Problem("steps", f"at most {MAX_STEPS} steps"))
        raw_steps = []
    if not isinstance(raw_triggers, list):
        problems.append(Problem("triggers", "must be a list of triggers"))
        raw_triggers = []
    key = data.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        problems.append(Problem("key", "must be a name of letters, digits, _ or - (at most 64 characters)"))
    # top-level fields (steps/triggers checked one by one below, to name the node)
    try:
        Journey.model_validate({**top, "key": "k", "steps": [{"id": "x", "type": "exit"}], "triggers": []})
    except ValidationError as exc:
        problems.extend(p for p in _pyd_problems(exc, "") if not p.path.startswith("steps"))
    reentry = data.get("reentry")
    if isinstance(reentry, dict) and reentry.get("mode") == "after" and not reentry.get("days"):
        problems.append(Problem("reentry.days", "re-entry 'after' needs days (≥ 1)"))
    triggers = []
    for i, t in enumerate(raw_triggers):
        path = f"triggers[{i}]"
        kind = t.get("type") if isinstance(t, dict) else None
        model = TRIGGERS.get(kind) if isinstance(kind, str) else None
        if model is None:
            problems.append(Problem(f"{path}.type", f"must be one of {', '.join(TRIGGERS)}"))
            continue
        try:
            trig = model.model_validate(t)
        except ValidationError as exc:
            problems.extend(_pyd_problems(exc, path))
            continue
        if isinstance(trig, ScheduleTrigger) and trig.every is not None:
            try:
                parse_duration(trig.every)
            except ValueError as exc:
                problems.append(Problem(f"{path}.every", str(exc)))
        triggers.append(trig)
    steps: list[Any] = []
    seen: dict[str, str] = {}
    for i, s in enumerate(raw_steps):
        label = _step_label(s, i)
        if not isinstance(s, dict):
            problems.append(Problem(label, "a step is an object with id and type"))
            continue
        sid = s.get("id")
        if not isinstance(sid, str) or not KEY_RE.match(sid):
            problems.append(Problem(f"{label}.id", "must be a name of letters, digits, _ or - (≤ 64)"))
            continue
        if sid in seen:
            problems.append(Problem(f"{label}.id", f"duplicate step id (also {seen[sid]})"))
            continue
        seen[sid] = label
        kind = s.get("type")
        model = STEPS.get(kind) if isinstance(kind, str) else None
        if model is None:
            problems.append(Problem(f"{label}.type", f"must be one of {', '.join(STEPS)}"))
            steps.append(None)
            continue
        try:
            step = model.model_validate(s)
        except ValidationError as exc:
            problems.extend(_pyd_problems(exc, label))
            steps.append(None)
            continue
        for fld in ("duration", "due"):
            v = getattr(step, fld, None)
            if v is None and fld == "due":
                continue
            if hasattr(step, fld):
                try:
                    parse_duration(v)
                except ValueError as exc:
                    problems.append(Problem(f"{label}.{fld}", str(exc)))
        if isinstance(step, TERMINAL_TYPES_CLS) and step.next:
            problems.append(Problem(f"{label}.next", f"a {step.type} step ends the journey; remove next"))
        if isinstance(step, BranchStep) and (not isinstance(step.condition, dict) or not step.condition):
            problems.append(Problem(f"{label}.condition", "a rule (JSON object of the rule DSL) is required"))
        steps.append(step)
    good = [s for s in steps if s is not None]
    first = raw_steps[0].get("id") if raw_steps and isinstance(raw_steps[0], dict) else None
    problems.extend(graph_problems(good, data.get("entry"), known_ids=set(seen), first=first))
    if problems:
        raise JourneyError(problems)
    return Journey.model_validate({**data, "triggers": [t.model_dump(by_alias=True) for t in triggers]})


TERMINAL_TYPES_CLS = (GoalStep, ExitStep)


def graph_problems(
    steps: list[Any], entry: Any, known_ids: set[str] | None = None, first: Any = None
) -> list[Problem]:
    """Unknown targets, unreachable steps, cycles without a wait — each named by its step."""
    problems: list[Problem] = []
    ids = {s.id for s in steps}
    known = ids | (known_ids or set())
    edges: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for fld, target in s.targets():
            if target not in known:
                problems.append(Problem(f"steps[{s.id}].{fld}", f"unknown step {target!r}"))
            elif target in ids:
                edges[s.id].append(target)
    # cycles: every cycle must pass through a wait, i.e. the graph without the wait steps is acyclic
    # (a component that merely contains a wait can still hold a loop around it: s0 → s0)
    waits = {s.id for s in steps if s.type in WAIT_TYPES}
    no_wait = {k: [t for t in v if t not in waits] for k, v in edges.items() if k not in waits}
    for comp in _sccs(no_wait):
        cyclic = len(comp) > 1 or comp[0] in no_wait.get(comp[0], [])
        if cyclic:
            names = " → ".join(sorted(comp))
            head = sorted(comp)[0]
            problems.append(
                Problem(f"steps[{head}]", f"cycle without a wait ({names}): add a wait step to the loop")
            )
    if not steps:
        return problems
    if entry is not None and (not isinstance(entry, str) or entry not in known):
        problems.append(Problem("entry", f"unknown step {entry!r}"))
        return problems
    start = entry if isinstance(entry, str) else (first if isinstance(first, str) else steps[0].id)
    if start not in ids:  # the entry step itself is invalid: reachability cannot be judged
        return problems
    seen, stack = {start}, [start]
    while stack:
        for nxt in edges.get(stack.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    for s in steps:
        if s.id not in seen:
            problems.append(Problem(f"steps[{s.id}]", f"unreachable from the entry step {start!r}"))
    return problems


def _sccs(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative, no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, []))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(comp)
    return out


def load_file(path: str | Path) -> Any:
    """A journey definition from a .json/.yaml/.yml file (parsed, not yet validated)."""

    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise JourneyError([Problem("", f"{p.name} is not valid YAML: {exc}")]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JourneyError([Problem("", f"{p.name} is not valid JSON: {exc}")]) from None


def definition_json(journey: Journey) -> dict[str, Any]:
    """The stored form (JSON-safe, aliases such as ``else``)."""
    return journey.model_dump(mode="json", by_alias=True, exclude_none=True)
