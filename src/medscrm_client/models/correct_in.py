from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.correct_in_kind import CorrectInKind
from ..types import UNSET, Unset

T = TypeVar("T", bound="CorrectIn")


@_attrs_define
class CorrectIn:
    """
    Attributes:
        field (str): A golden-record field: name, gender, hospital, department, title, city, province, phone, email,
            license_no, wechat_unionid, wecom_external_userid
        identifier (str): Person id, phone, e-mail, WeCom external userid, WeChat openid/unionid, licence number,
            source-record id or event user id
        value (str): The corrected value (normalised like an import)
        kind (CorrectInKind | Unset): How to read the identifier (auto tries each) Default: CorrectInKind.AUTO.
        reason (None | str | Unset): The request's reference or legal basis
    """

    field: str
    identifier: str
    value: str
    kind: CorrectInKind | Unset = CorrectInKind.AUTO
    reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        field = self.field

        identifier = self.identifier

        value = self.value

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
                "field": field,
                "identifier": identifier,
                "value": value,
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
        field = d.pop("field")

        identifier = d.pop("identifier")

        value = d.pop("value")

        _kind = d.pop("kind", UNSET)
        kind: CorrectInKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = CorrectInKind(_kind)

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        correct_in = cls(
            field=field,
            identifier=identifier,
            value=value,
            kind=kind,
            reason=reason,
        )

        correct_in.additional_properties = d
        return correct_in

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
