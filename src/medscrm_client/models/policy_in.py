from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.policy_in_action_type_0 import PolicyInActionType0
from ..types import UNSET, Unset

T = TypeVar("T", bound="PolicyIn")


@_attrs_define
class PolicyIn:
    """
    Attributes:
        action (None | PolicyInActionType0 | Unset):
        enabled (bool | None | Unset):
        keep_days (int | None | Unset): Days to keep (unchanged when absent)
        patterns (list[str] | None | Unset): Event-name globs (* any run, ? one character)
    """

    action: None | PolicyInActionType0 | Unset = UNSET
    enabled: bool | None | Unset = UNSET
    keep_days: int | None | Unset = UNSET
    patterns: list[str] | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        action: None | str | Unset
        if isinstance(self.action, Unset):
            action = UNSET
        elif isinstance(self.action, PolicyInActionType0):
            action = self.action.value
        else:
            action = self.action

        enabled: bool | None | Unset
        if isinstance(self.enabled, Unset):
            enabled = UNSET
        else:
            enabled = self.enabled

        keep_days: int | None | Unset
        if isinstance(self.keep_days, Unset):
            keep_days = UNSET
        else:
            keep_days = self.keep_days

        patterns: list[str] | None | Unset
        if isinstance(self.patterns, Unset):
            patterns = UNSET
        elif isinstance(self.patterns, list):
            patterns = self.patterns

        else:
            patterns = self.patterns

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if action is not UNSET:
            field_dict["action"] = action
        if enabled is not UNSET:
            field_dict["enabled"] = enabled
        if keep_days is not UNSET:
            field_dict["keep_days"] = keep_days
        if patterns is not UNSET:
            field_dict["patterns"] = patterns

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_action(data: object) -> None | PolicyInActionType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                action_type_0 = PolicyInActionType0(data)

                return action_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PolicyInActionType0 | Unset, data)

        action = _parse_action(d.pop("action", UNSET))

        def _parse_enabled(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        enabled = _parse_enabled(d.pop("enabled", UNSET))

        def _parse_keep_days(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        keep_days = _parse_keep_days(d.pop("keep_days", UNSET))

        def _parse_patterns(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                patterns_type_0 = cast(list[str], data)

                return patterns_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        patterns = _parse_patterns(d.pop("patterns", UNSET))

        policy_in = cls(
            action=action,
            enabled=enabled,
            keep_days=keep_days,
            patterns=patterns,
        )

        policy_in.additional_properties = d
        return policy_in

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
