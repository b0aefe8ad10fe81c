"""The rule validator's problems (``medscrm.rules``: English, with the JSON path) in the reader's
language: each known message is matched, its values kept and its sentence taken from the catalogue
(``rp.*``), and the path's parts are named (``rpath.*``). A message this table does not know is
shown as the validator wrote it."""

from __future__ import annotations

import re

_TYPES = {"string": "text"}  # the validator's type names → ``vtype.*``
_CONSENT_PARTS = {"channel": "consent"}  # what a consent problem names → ``rpath.*``

#: (pattern, key): the pattern's groups are handed to the catalogue text as {0}, {1} …
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), k)
    for p, k in (
        (r"must be a non-empty list of conditions", "rp.empty_group"),
        (r"must be a non-empty string of at most (\d+) characters", "rp.text"),
        (r"must be a finite number", "rp.number"),
        (r"must be true or false", "rp.bool"),
        (r"must be an ISO date such as .*", "rp.date"),
        (r"must be an ISO date or date-time, e\.g\. (.*)", "rp.datetime"),
        (r"must be a string, a number or true/false", "rp.any"),
        (r"(\w+) takes no value", "rp.no_value"),
        (r"(\w+) needs a value", "rp.needs_value"),
        (r"(\w+) needs a non-empty list", "rp.needs_list"),
        (r"(\w+) needs a string", "rp.needs_text"),
        (r"too many values \((\d+); at most ([\d,]+)\)", "rp.too_many"),
        (r"between needs a list of two values \[low, high\]", "rp.between"),
        (r"low is greater than high", "rp.low_high"),
        (r"operator (.+) is not valid for (\w+) \(use one of: (.+)\)", "rp.operator"),
        (r"unknown attribute '(.+?)'(?:; did you mean '(.+)'\?)?", "rp.unknown_attr"),
        (r"unknown tag '(.+?)'(?:; did you mean '(.+)'\?)?", "rp.unknown_tag"),
        (r"unknown score '(.+?)'(?:; did you mean '(.+)'\?)?", "rp.unknown_score"),
        (r"unknown segment '(.+?)'(?:; did you mean '(.+)'\?)?", "rp.unknown_segment"),
        (r"segment '(.+)' cannot refer to itself", "rp.self_ref"),
        (r"segments refer to each other in a cycle: (.+)", "rp.cycle"),
        (r"must be a positive integer ≤ (\d+)", "rp.positive"),
        (r"must be an event name .*", "rp.event_name"),
        (r"(\w+) must be a name of letters, digits, _ or - \(at most (\d+) characters\)", "rp.key"),
        (r"must be a name of letters, digits, _ or - \(at most (\d+) characters\)", "rp.seg_key"),
        (r"segment '(.+)' already exists.*", "rp.exists"),
        (r"must be one of (.+)", "rp.one_of"),
        (r"nested too deeply \(at most (\d+) levels\)", "rp.depth"),
        (r"the rule has more than (\d+) conditions", "rp.nodes"),
        (r"until must be after since", "rp.until"),
        (r"not valid JSON: .*", "rp.json"),
        # structure, consents, event aggregates and windows
        (r"unknown field '(.+?)' \(allowed: (.+)\)", "rp.bad_field"),
        (r"expected one of: (.+) \(got (.+)\)", "rp.expected"),
        (r"expected an object with one of: (.+)", "rp.object"),
        (r"ambiguous condition: has both '(.+)' and '(.+)'", "rp.ambiguous"),
        (r"consent (\w+) missing \(use one of: (.+)\)", "rp.consent_missing"),
        (r"consent (\w+) (.+) is not valid \(use one of: (.+)\)", "rp.consent"),
        (r"property \(needed by (\w+)\) must be a name of .* \(at most (\d+) characters\)", "rp.prop_needed"),
        (r"(\w+) takes no property", "rp.no_property"),
        (r"a (\w+) is compared with non-negative integers", "rp.count_int"),
        (r'must be \{"days": N\} or \{"hours": N\}', "rp.within"),
        (r'must be \{"last": N, .*|must have "last" .*', "rp.window"),
        (r"must be a property filter or a list of 1 to 20 of them", "rp.where"),
        (r'must be \{"property": .*', "rp.where_item"),
        (r"must be an integer between 0 and (\d+)", "rp.ago"),
    )
)
_PATH_PART = re.compile(r"([A-Za-z_]+)(?:\[(\d+)\])?")


def problem(reason: str, t) -> str:
    """One problem sentence in the reader's language."""
    for rx, key in PATTERNS:
        m = rx.fullmatch(reason)
        if m is None:
            continue
        args = [g or "" for g in m.groups()]
        if key == "rp.operator":
            args[0] = t.label("op", args[0].strip("'")) if t.has(f"op.{args[0].strip(chr(39))}") else args[0]
            args[1] = t.label("vtype", _TYPES.get(args[1], args[1]))
            args[2] = "、".join(t.label("op", o) for o in args[2].split(", ")) if t.lang == "zh" else args[2]
        elif key in ("rp.no_value", "rp.needs_value", "rp.needs_list", "rp.needs_text"):
            args[0] = t.label("op", args[0])
        elif key in ("rp.consent", "rp.consent_missing"):
            args[0] = t.label("rpath", _CONSENT_PARTS.get(args[0], args[0]))
        elif key in ("rp.prop_needed", "rp.no_property", "rp.count_int"):
            args[0] = t.label("sagg", args[0])
        text = t(key).format(*args)
        if key.startswith("rp.unknown_") and len(args) > 1 and args[1]:
            text += t("rp.did_you_mean").format(args[1])
        return text
    return reason


def path(detail: str, t) -> str:
    """A JSON path inside a condition (``window.last``, ``value[1]``) named part by part."""
    parts = []
    for piece in detail.split("."):
        m = _PATH_PART.fullmatch(piece)
        if m is None:
            return detail
        name = t.label("rpath", m.group(1)) if t.has(f"rpath.{m.group(1)}") else m.group(1)
        parts.append(name + (t("rpath.nth").format(int(m.group(2)) + 1) if m.group(2) else ""))
    return " · ".join(parts)
