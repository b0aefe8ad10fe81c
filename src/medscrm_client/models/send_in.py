from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.send_in_channel import SendInChannel
from ..models.send_in_purpose import SendInPurpose
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.send_in_variables import SendInVariables


T = TypeVar("T", bound="SendIn")


@_attrs_define
class SendIn:
    """
    Attributes:
        channel (SendInChannel):
        idempotency_key (str): unique per intended message; a repeat returns the first send
        person_id (str):
        content_id (None | str | Unset):
        purpose (SendInPurpose | Unset):  Default: SendInPurpose.MARKETING.
        variables (SendInVariables | Unset):
    """

    channel: SendInChannel
    idempotency_key: str
    person_id: str
    content_id: None | str | Unset = UNSET
    purpose: SendInPurpose | Unset = SendInPurpose.MARKETING
    variables: SendInVariables | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        channel = self.channel.value

        idempotency_key = self.idempotency_key

        person_id = self.person_id

        content_id: None | str | Unset
        if isinstance(self.content_id, Unset):
            content_id = UNSET
        else:
            content_id = self.content_id

        purpose: str | Unset = UNSET
        if not isinstance(self.purpose, Unset):
            purpose = self.purpose.value

        variables: dict[str, Any] | Unset = UNSET
        if not isinstance(self.variables, Unset):
            variables = self.variables.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "channel": channel,
                "idempotency_key": idempotency_key,
                "person_id": person_id,
            }
        )
        if content_id is not UNSET:
            field_dict["content_id"] = content_id
        if purpose is not UNSET:
            field_dict["purpose"] = purpose
        if variables is not UNSET:
            field_dict["variables"] = variables

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.send_in_variables import SendInVariables

        d = dict(src_dict)
        channel = SendInChannel(d.pop("channel"))

        idempotency_key = d.pop("idempotency_key")

        person_id = d.pop("person_id")

        def _parse_content_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        content_id = _parse_content_id(d.pop("content_id", UNSET))

        _purpose = d.pop("purpose", UNSET)
        purpose: SendInPurpose | Unset
        if isinstance(_purpose, Unset):
            purpose = UNSET
        else:
            purpose = SendInPurpose(_purpose)

        _variables = d.pop("variables", UNSET)
        variables: SendInVariables | Unset
        if isinstance(_variables, Unset):
            variables = UNSET
        else:
            variables = SendInVariables.from_dict(_variables)

        send_in = cls(
            channel=channel,
            idempotency_key=idempotency_key,
            person_id=person_id,
            content_id=content_id,
            purpose=purpose,
            variables=variables,
        )

        send_in.additional_properties = d
        return send_in

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
