from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.segment_update_fields_type_0 import SegmentUpdateFieldsType0


T = TypeVar("T", bound="SegmentUpdate")


@_attrs_define
class SegmentUpdate:
    """
    Attributes:
        fields (None | SegmentUpdateFieldsType0 | Unset): Types of custom attributes not yet seen in the data, e.g.
            {"hospital_grade": "string"}
        name (None | str | Unset):
        refresh_every_minutes (int | None | Unset): Dynamic segments: full recompute every N minutes (default 60; 0 =
            never, incremental updates as events arrive only)
        rule (Any | Unset):
    """

    fields: None | SegmentUpdateFieldsType0 | Unset = UNSET
    name: None | str | Unset = UNSET
    refresh_every_minutes: int | None | Unset = UNSET
    rule: Any | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.segment_update_fields_type_0 import SegmentUpdateFieldsType0

        fields: dict[str, Any] | None | Unset
        if isinstance(self.fields, Unset):
            fields = UNSET
        elif isinstance(self.fields, SegmentUpdateFieldsType0):
            fields = self.fields.to_dict()
        else:
            fields = self.fields

        name: None | str | Unset
        if isinstance(self.name, Unset):
            name = UNSET
        else:
            name = self.name

        refresh_every_minutes: int | None | Unset
        if isinstance(self.refresh_every_minutes, Unset):
            refresh_every_minutes = UNSET
        else:
            refresh_every_minutes = self.refresh_every_minutes

        rule = self.rule

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if fields is not UNSET:
            field_dict["fields"] = fields
        if name is not UNSET:
            field_dict["name"] = name
        if refresh_every_minutes is not UNSET:
            field_dict["refresh_every_minutes"] = refresh_every_minutes
        if rule is not UNSET:
            field_dict["rule"] = rule

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.segment_update_fields_type_0 import SegmentUpdateFieldsType0

        d = dict(src_dict)

        def _parse_fields(data: object) -> None | SegmentUpdateFieldsType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                fields_type_0 = SegmentUpdateFieldsType0.from_dict(data)

                return fields_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SegmentUpdateFieldsType0 | Unset, data)

        fields = _parse_fields(d.pop("fields", UNSET))

        def _parse_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name = _parse_name(d.pop("name", UNSET))

        def _parse_refresh_every_minutes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        refresh_every_minutes = _parse_refresh_every_minutes(
            d.pop("refresh_every_minutes", UNSET)
        )

        rule = d.pop("rule", UNSET)

        segment_update = cls(
            fields=fields,
            name=name,
            refresh_every_minutes=refresh_every_minutes,
            rule=rule,
        )

        segment_update.additional_properties = d
        return segment_update

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
