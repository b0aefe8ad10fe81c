from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.segment_in_kind import SegmentInKind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.segment_in_fields_type_0 import SegmentInFieldsType0


T = TypeVar("T", bound="SegmentIn")


@_attrs_define
class SegmentIn:
    """
    Attributes:
        key (str):
        rule (Any):
        fields (None | SegmentInFieldsType0 | Unset): Types of custom attributes not yet seen in the data, e.g.
            {"hospital_grade": "string"}
        kind (SegmentInKind | Unset):  Default: SegmentInKind.DYNAMIC.
        name (None | str | Unset):
        refresh_every_minutes (int | None | Unset): Dynamic segments: full recompute every N minutes (default 60; 0 =
            never, incremental updates as events arrive only)
    """

    key: str
    rule: Any
    fields: None | SegmentInFieldsType0 | Unset = UNSET
    kind: SegmentInKind | Unset = SegmentInKind.DYNAMIC
    name: None | str | Unset = UNSET
    refresh_every_minutes: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.segment_in_fields_type_0 import SegmentInFieldsType0

        key = self.key

        rule = self.rule

        fields: dict[str, Any] | None | Unset
        if isinstance(self.fields, Unset):
            fields = UNSET
        elif isinstance(self.fields, SegmentInFieldsType0):
            fields = self.fields.to_dict()
        else:
            fields = self.fields

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind.value

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

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key": key,
                "rule": rule,
            }
        )
        if fields is not UNSET:
            field_dict["fields"] = fields
        if kind is not UNSET:
            field_dict["kind"] = kind
        if name is not UNSET:
            field_dict["name"] = name
        if refresh_every_minutes is not UNSET:
            field_dict["refresh_every_minutes"] = refresh_every_minutes

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.segment_in_fields_type_0 import SegmentInFieldsType0

        d = dict(src_dict)
        key = d.pop("key")

        rule = d.pop("rule")

        def _parse_fields(data: object) -> None | SegmentInFieldsType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                fields_type_0 = SegmentInFieldsType0.from_dict(data)

                return fields_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SegmentInFieldsType0 | Unset, data)

        fields = _parse_fields(d.pop("fields", UNSET))

        _kind = d.pop("kind", UNSET)
        kind: SegmentInKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = SegmentInKind(_kind)

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

        segment_in = cls(
            key=key,
            rule=rule,
            fields=fields,
            kind=kind,
            name=name,
            refresh_every_minutes=refresh_every_minutes,
        )

        segment_in.additional_properties = d
        return segment_in

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
