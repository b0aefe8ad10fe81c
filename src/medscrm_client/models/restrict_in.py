from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.restrict_in_kind import RestrictInKind
from ..types import UNSET, Unset

T = TypeVar("T", bound="RestrictIn")


@_attrs_define
class RestrictIn:
    """
    Attributes:
        identifier (str): Person id, phone, e-mail, WeCom external userid, WeChat openid/unionid, licence number,
            source-record id or event user id
        kind (RestrictInKind | Unset): How to read the identifier (auto tries each) Default: RestrictInKind.AUTO.
        lift (bool | Unset): Lift the restriction instead Default: False.
        reason (None | str | Unset): The request's reference or legal basis
    """

    identifier: str
    kind: RestrictInKind | Unset = RestrictInKind.AUTO
    lift: bool | Unset = False
    reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        identifier = self.identifier

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind.value

        lift = self.lift

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "identifier": identifier,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind
        if lift is not UNSET:
            field_dict["lift"] = lift
        if reason is not UNSET:
            field_dict["reason"] = reason

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        identifier = d.pop("identifier")

        _kind = d.pop("kind", UNSET)
        kind: RestrictInKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = RestrictInKind(_kind)

        lift = d.pop("lift", UNSET)

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        restrict_in = cls(
            identifier=identifier,
            kind=kind,
            lift=lift,
            reason=reason,
        )

        restrict_in.additional_properties = d
        return restrict_in

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
