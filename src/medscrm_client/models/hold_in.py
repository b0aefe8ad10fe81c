from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.hold_in_kind import HoldInKind
from ..types import UNSET, Unset

T = TypeVar("T", bound="HoldIn")


@_attrs_define
class HoldIn:
    """
    Attributes:
        identifier (str): Person id, phone, e-mail, WeCom external userid, WeChat openid/unionid, licence number,
            source-record id or event user id
        kind (HoldInKind | Unset): How to read the identifier (auto tries each) Default: HoldInKind.AUTO.
        reason (None | str | Unset): The request's reference or legal basis
        release (bool | Unset): Release the legal hold instead Default: False.
    """

    identifier: str
    kind: HoldInKind | Unset = HoldInKind.AUTO
    reason: None | str | Unset = UNSET
    release: bool | Unset = False
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        identifier = self.identifier

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind.value

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        release = self.release

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "identifier": identifier,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind
        if reason is not UNSET:
            field_dict["reason"] = reason
        if release is not UNSET:
            field_dict["release"] = release

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        identifier = d.pop("identifier")

        _kind = d.pop("kind", UNSET)
        kind: HoldInKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = HoldInKind(_kind)

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        release = d.pop("release", UNSET)

        hold_in = cls(
            identifier=identifier,
            kind=kind,
            reason=reason,
            release=release,
        )

        hold_in.additional_properties = d
        return hold_in

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
