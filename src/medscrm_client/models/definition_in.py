from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.definition_in_definition import DefinitionInDefinition


T = TypeVar("T", bound="DefinitionIn")


@_attrs_define
class DefinitionIn:
    """
    Attributes:
        definition (DefinitionInDefinition): The journey definition (see docs/journeys.md)
    """

    definition: DefinitionInDefinition
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        definition = self.definition.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "definition": definition,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.definition_in_definition import DefinitionInDefinition

        d = dict(src_dict)
        definition = DefinitionInDefinition.from_dict(d.pop("definition"))

        definition_in = cls(
            definition=definition,
        )

        definition_in.additional_properties = d
        return definition_in

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
