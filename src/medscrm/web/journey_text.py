"""The journey validator's problems (``medscrm.journeys``: English, with a path naming the node, e.g.
``steps[send_1].content``) in the reader's language, split into the node they name, the field and the
sentence. Known sentences are matched and their values kept (catalogue keys ``jp.*``); the rule DSL's
own problems inside a branch condition or the goal go through :mod:`medscrm.web.rule_text`; a
message neither table knows is shown as the validator wrote it."""

from __future__ import annotations

import re
from typing import Any

from medscrm.web import rule_text

#: (pattern, key): the pattern's groups are handed to the catalogue text as {0}, {1} …
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), k)
    for p, k in (
        (r"is required", "jp.required"),
        (r"unknown field", "jp.unknown_field"),
        (r"unknown step '(.*)'", "jp.unknown_step"),
        (r"unreachable from the entry step '(.*)'", "jp.unreachable"),
        (r"cycle without a wait \((.*)\): add a wait step to the loop", "jp.cycle"),
        (r"duplicate step id \(also (.*)\)", "jp.duplicate"),
        (r"a (\w+) step ends the journey; remove next", "jp.terminal_next"),
        (r"a rule \(JSON object of the rule DSL\) is required", "jp.rule_required"),
        (r"must be a non-empty list of steps", "jp.no_steps"),
        (r"at most (\d+) steps", "jp.too_many_steps"),
        (r"must be a list of triggers", "jp.triggers_list"),
        (r"a step is an object with id and type", "jp.step_object"),
        (r"a journey definition is an object with key, name, triggers, steps", "jp.object"),
        (r"must be a name of letters, digits, _ or - \((?:at most |≤ )(\d+)(?: characters)?\)", "jp.key"),
        (r"re-entry 'after' needs days \(≥ 1\)", "jp.reentry_days"),
        (r"'(.*)' is not a duration \(use .*\)", "jp.duration"),
        (r"a duration is text like .*", "jp.duration_kind"),
        (r"a duration must be positive", "jp.duration_positive"),
        (r"a duration may be at most 365 days", "jp.duration_max"),
        (r"duration keys are (.*)", "jp.duration_keys"),
        (r"unknown segment '(.*?)'", "jp.unknown_segment"),
        (r"unknown tag '(.*)' \(define it first: medscrm tags define\)", "jp.unknown_tag"),
        (r"no credentials for channel '(.*)' in this tenant \(configure the channel first\)", "jp.channel"),
        (r"unknown content '(.*)'", "jp.unknown_content"),
        (r"content '(.*)' is (\w+); only approved content can be sent", "jp.not_approved"),
        (r"content '(.*)' has expired", "jp.expired"),
        (r"journey '(.*)' already exists \(edit it with update\)", "jp.exists"),
        (r"the key of a journey cannot change \('(.*)'\)", "jp.key_fixed"),
        (r"journey '(.*)' is stopped; create a new journey instead", "jp.stopped"),
        (r"not valid JSON or YAML: (.*)", "jp.syntax"),
        # pydantic's own sentences for the model's field types
        (r"String should have at least (\d+) characters?", "jp.min_chars"),
        (r"String should have at most (\d+) characters?", "jp.max_chars"),
        (r"Input should be a valid string", "jp.text"),
        (r"Input should be a valid (?:number|integer).*", "jp.number"),
        (r"Input should be greater than (?:or equal to )?(\S+)", "jp.greater"),
        (r"Input should be less than (?:or equal to )?(\S+)", "jp.less"),
        (r"Input should be a valid (?:datetime|date).*", "jp.datetime"),
        (r"Input should be a valid (?:dictionary|object).*", "jp.object_value"),
        (r"Input should be a valid list", "jp.list"),
        (r"List should have at least (\d+) items?.*", "jp.min_items"),
        (r"List should have at most (\d+) items?.*", "jp.max_items"),
        (r"Input should be ('.*')", "jp.one_of"),
        (r"must be one of ([a-z_]+(?:, [a-z_]+)*)", "jp.one_of_codes"),
    )
)
_STEP = re.compile(r"^steps\[([^\]]+)\](?:\.(.*))?$")
_TRIGGER = re.compile(r"^triggers\[(\d+)\](?:\.(.*))?$")
_HEAD = re.compile(r"^([A-Za-z_]+)(?:\[(\d+)\])?(?:\.(.*))?$")
#: the names of the fields of a definition, its steps and triggers (``jfield.*``)
FIELDS = (
    "key", "name", "description", "entry", "steps", "triggers", "reentry", "caps", "goal", "mode", "days",
    "max_enrollments", "per_person", "id", "type", "next", "duration", "default_window", "condition",
    "then", "else", "branches", "weight", "label", "channel", "content", "purpose", "variables",
    "on_blocked", "tag", "value", "attribute", "title", "due", "note", "assignee", "payload", "segment",
    "event", "where", "at", "every", "property", "op",
)  # fmt: skip


#: around a value in a sentence that is an identifier or the user's own text (a step id, a key, a code):
#: the editor shows it as data (``.mono``), never as words to translate
MARK_OPEN, MARK_CLOSE = "\x01", "\x02"
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _mark(value: str) -> str:
    return value if not value or _CJK.search(value) or value.isdigit() else f"{MARK_OPEN}{value}{MARK_CLOSE}"


def reason(text: str, t, mark: bool = False) -> str:
    """One problem sentence in the reader's language (``mark``: identifiers in it wrapped in
    :data:`MARK_OPEN` / :data:`MARK_CLOSE`)."""
    for rx, key in PATTERNS:
        m = rx.fullmatch(text)
        if m is None:
            continue
        args = [g or "" for g in m.groups()]
        if key == "jp.one_of_codes":  # step or trigger types: named as the palette names them
            names = [
                t.label(g, c) if t.has(f"{g}.{c}") else (_mark(c) if mark else c)
                for c in args[0].split(", ")
                for g in [next((g for g in ("step", "jtrig") if t.has(f"{g}.{c}")), "")]
            ]
            return t("jp.one_of").format("、".join(names) if t.lang == "zh" else ", ".join(names))
        if mark and key not in ("jp.terminal_next", "jp.channel", "jp.one_of"):
            args = [_mark(a) for a in args]
        if key == "jp.terminal_next":
            args[0] = t.label("step", args[0])
        elif key == "jp.channel":
            args[0] = t.label("channel", args[0])
        elif key == "jp.not_approved":
            args[1] = t.label("status", m.group(2))
        elif key == "jp.one_of":
            codes = [_mark(c) if mark else c for c in re.findall(r"'([^']*)'", args[0])]
            args[0] = "、".join(codes) if t.lang == "zh" else ", ".join(codes)
        return t(key).format(*args)
    return rule_text.problem(text, t)


def field_name(detail: str, t) -> str:
    """``content``, ``branches[1].weight``, ``reentry.days`` … named part by part; a branch
    condition's or the goal's inner rule path through the rule DSL's names."""
    out = []
    rest: str | None = detail
    while rest:
        m = _HEAD.fullmatch(rest)
        if m is None:
            out.append(rest)
            break
        name, idx, rest = m.group(1), m.group(2), m.group(3)
        label = t.label("jfield", name) if name in FIELDS else name
        out.append(label + (t("rpath.nth").format(int(idx) + 1) if idx is not None else ""))
        if name in ("condition", "goal", "where") and rest:
            out.append(rule_text.path(rest, t))
            break
    return " · ".join(out)


def describe(problem: dict[str, str], t) -> dict[str, Any]:
    """A validator problem (``{path, reason}``) as the editor shows it: the node it names (``kind``
    step / trigger / journey, ``node`` the step id or trigger index), the field's name and the sentence,
    all in the reader's language (identifiers in the sentence marked, see :func:`reason`); ``path`` and
    ``raw`` keep the validator's own words."""
    path = problem.get("path") or ""
    kind, node, detail = "journey", "", path
    m = _STEP.match(path)
    if m:
        kind, node, detail = "step", m.group(1), m.group(2) or ""
    else:
        m = _TRIGGER.match(path)
        if m:
            kind, node, detail = "trigger", m.group(1), m.group(2) or ""
    return {
        "path": path,
        "raw": problem.get("reason", ""),
        "kind": kind,
        "node": node,
        "field": detail.split(".")[0].split("[")[0] if detail else "",
        "field_label": field_name(detail, t) if detail else "",
        "message": reason(problem.get("reason", ""), t, mark=True),
    }
