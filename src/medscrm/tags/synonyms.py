"""Synonym dictionaries for rule values: what a value in a tag or segment rule stands for.

Imports store the canonical department (心内科 → 心血管内科) and hospitals go by several names
(华西医院, 四川大学华西医院, West China Hospital), so a rule that says ``department eq 心内科`` or
``hospital eq 华西医院`` must match every stored form of that value. The rule package stays free of
these dictionaries: :func:`rule_synonyms` hands it one function per attribute
(``RuleContext.synonyms``), built from the same normalisers and reference data the imports and
identity resolution use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from medscrm.identity.hospitals import HospitalIndex
from medscrm.schema.person import department_forms, normalize_hospital


@lru_cache(maxsize=1)
def _hospital_index() -> HospitalIndex:
    return HospitalIndex()


@lru_cache(maxsize=4096)
def hospital_forms(value: str) -> tuple[str, tuple[str, ...]] | None:
    """The reference hospital ``value`` names (dictionary hits only: an exact name or alias, or one
    with a campus suffix), with its full name first and every alias as imports store text; None when
    the value is not a known hospital or is ambiguous without a city (协和医院)."""
    index = _hospital_index()
    match = index.resolve_strict(value)
    hospital = index.hospitals.get(match.hospital_id or "")
    if hospital is None:
        return None
    forms: list[str] = []
    for name in [hospital["name"], *hospital["aliases"]]:
        stored = normalize_hospital(name) or name
        # an alias that several hospitals share (协和医院) would also select the others' doctors
        if stored not in forms and (
            not forms or index.resolve_strict(stored).hospital_id == match.hospital_id
        ):
            forms.append(stored)
    return forms[0], tuple(forms)


def rule_synonyms() -> dict[str, Callable[[str], tuple[str, tuple[str, ...]] | None]]:
    """The attributes whose rule values go through a dictionary, and how."""
    return {"department": department_forms, "hospital": hospital_forms}
