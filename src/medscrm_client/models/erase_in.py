from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.erase_in_kind import EraseInKind
from ..types import UNSET, Unset

T = TypeVar("T", bound="EraseIn")


@_attrs_define
class EraseIn:
    """
    Attributes:
        confirm (bool): Must be true: an erasure cannot be undone
        identifier (str): Person id, phone, e-mail, WeCom external userid, WeChat openid/unionid, licence number,
            source-record id or event user id
        kind (EraseInKind | Unset): How to read the identifier (auto tries each) Default: EraseInKind.AUTO.
        reason (None | str | Unset): The request's reference or legal basis
    """

    confirm: bool
    identifier: str
    kind: EraseInKind | Unset = EraseInKind.AUTO
    reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        confirm = self.confirm

        identifier = self.identifier

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind.value

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "confirm": confirm,
                "identifier": identifier,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind
        if reason is not UNSET:
            field_dict["reason"] = reason

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        confirm = d.pop("confirm")

        identifier = d.pop("identifier")

        _kind = d.pop("kind", UNSET)
        kind: EraseInKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = EraseInKind(_kind)

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        erase_in = cls(
            confirm=confirm,
            identifier=identifier,
            kind=kind,
            reason=reason,
        )

        erase_in.additional_properties = d
        return erase_in

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
