from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Policy")


@_attrs_define
class Policy:
    """
    Attributes:
        action (str): delete, or anonymise (the row stays without personal fields)
        actions (list[str]): The actions this category allows
        category (str):
        enabled (bool):
        keep_days (int): Rows older than this many days are deleted or anonymised
        patterns (list[str]): Event-name globs (events: empty = every event; health)
        source (str): tenant (the tenant's own) or default (the shipped default)
        uses_patterns (bool):
        floor_days (int | None | Unset): The legal minimum of keep_days, where there is one
        updated_at (datetime.datetime | None | Unset):
        updated_by (None | str | Unset):
    """

    action: str
    actions: list[str]
    category: str
    enabled: bool
    keep_days: int
    patterns: list[str]
    source: str
    uses_patterns: bool
    floor_days: int | None | Unset = UNSET
    updated_at: datetime.datetime | None | Unset = UNSET
    updated_by: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        action = self.action

        actions = self.actions

        category = self.category

        enabled = self.enabled

        keep_days = self.keep_days

        patterns = self.patterns

        source = self.source

        uses_patterns = self.uses_patterns

        floor_days: int | None | Unset
        if isinstance(self.floor_days, Unset):
            floor_days = UNSET
        else:
            floor_days = self.floor_days

        updated_at: None | str | Unset
        if isinstance(self.updated_at, Unset):
            updated_at = UNSET
        elif isinstance(self.updated_at, datetime.datetime):
            updated_at = self.updated_at.isoformat()
        else:
            updated_at = self.updated_at

        updated_by: None | str | Unset
        if isinstance(self.updated_by, Unset):
            updated_by = UNSET
        else:
            updated_by = self.updated_by

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "action": action,
                "actions": actions,
                "category": category,
                "enabled": enabled,
                "keep_days": keep_days,
                "patterns": patterns,
                "source": source,
                "uses_patterns": uses_patterns,
            }
        )
        if floor_days is not UNSET:
            field_dict["floor_days"] = floor_days
        if updated_at is not UNSET:
            field_dict["updated_at"] = updated_at
        if updated_by is not UNSET:
            field_dict["updated_by"] = updated_by

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        action = d.pop("action")

        actions = cast(list[str], d.pop("actions"))

        category = d.pop("category")

        enabled = d.pop("enabled")

        keep_days = d.pop("keep_days")

        patterns = cast(list[str], d.pop("patterns"))

        source = d.pop("source")

        uses_patterns = d.pop("uses_patterns")

        def _parse_floor_days(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        floor_days = _parse_floor_days(d.pop("floor_days", UNSET))

        def _parse_updated_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                updated_at_type_0 = datetime.datetime.fromisoformat(data)

                return updated_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        updated_at = _parse_updated_at(d.pop("updated_at", UNSET))

        def _parse_updated_by(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        updated_by = _parse_updated_by(d.pop("updated_by", UNSET))

        policy = cls(
            action=action,
            actions=actions,
            category=category,
            enabled=enabled,
            keep_days=keep_days,
            patterns=patterns,
            source=source,
            uses_patterns=uses_patterns,
            floor_days=floor_days,
            updated_at=updated_at,
            updated_by=updated_by,
        )

        policy.additional_properties = d
        return policy

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
