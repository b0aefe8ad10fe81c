from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.preview_in_fields_type_0 import PreviewInFieldsType0


T = TypeVar("T", bound="PreviewIn")


@_attrs_define
class PreviewIn:
    """
    Attributes:
        rule (Any):
        fields (None | PreviewInFieldsType0 | Unset): Types of custom attributes not yet seen in the data, e.g.
            {"hospital_grade": "string"}
        sample (int | Unset):  Default: 10.
    """

    rule: Any
    fields: None | PreviewInFieldsType0 | Unset = UNSET
    sample: int | Unset = 10
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.preview_in_fields_type_0 import PreviewInFieldsType0

        rule = self.rule

        fields: dict[str, Any] | None | Unset
        if isinstance(self.fields, Unset):
            fields = UNSET
        elif isinstance(self.fields, PreviewInFieldsType0):
            fields = self.fields.to_dict()
        else:
            fields = self.fields

        sample = self.sample

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "rule": rule,
            }
        )
        if fields is not UNSET:
            field_dict["fields"] = fields
        if sample is not UNSET:
            field_dict["sample"] = sample

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.preview_in_fields_type_0 import PreviewInFieldsType0

        d = dict(src_dict)
        rule = d.pop("rule")

        def _parse_fields(data: object) -> None | PreviewInFieldsType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                fields_type_0 = PreviewInFieldsType0.from_dict(data)

                return fields_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PreviewInFieldsType0 | Unset, data)

        fields = _parse_fields(d.pop("fields", UNSET))

        sample = d.pop("sample", UNSET)

        preview_in = cls(
            rule=rule,
            fields=fields,
            sample=sample,
        )

        preview_in.additional_properties = d
        return preview_in

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
