from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.field_reason import FieldReason


T = TypeVar("T", bound="Detail")


@_attrs_define
class Detail:
    """
    Attributes:
        detail (FieldReason | str):
    """

    detail: FieldReason | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.field_reason import FieldReason

        detail: dict[str, Any] | str
        if isinstance(self.detail, FieldReason):
            detail = self.detail.to_dict()
        else:
            detail = self.detail

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "detail": detail,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.field_reason import FieldReason

        d = dict(src_dict)

        def _parse_detail(data: object) -> FieldReason | str:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                detail_type_0 = FieldReason.from_dict(data)

                return detail_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(FieldReason | str, data)

        detail = _parse_detail(d.pop("detail"))

        detail = cls(
            detail=detail,
        )

        detail.additional_properties = d
        return detail

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
