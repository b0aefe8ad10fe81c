from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.send_proof import SendProof


T = TypeVar("T", bound="SendProofs")


@_attrs_define
class SendProofs:
    """
    Attributes:
        count (int):
        sends (list[SendProof]):
    """

    count: int
    sends: list[SendProof]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        count = self.count

        sends = []
        for sends_item_data in self.sends:
            sends_item = sends_item_data.to_dict()
            sends.append(sends_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "count": count,
                "sends": sends,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.send_proof import SendProof

        d = dict(src_dict)
        count = d.pop("count")

        sends = []
        _sends = d.pop("sends")
        for sends_item_data in _sends:
            sends_item = SendProof.from_dict(sends_item_data)

            sends.append(sends_item)

        send_proofs = cls(
            count=count,
            sends=sends,
        )

        send_proofs.additional_properties = d
        return send_proofs

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
