from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.update_in_definition import UpdateInDefinition
    from ..models.update_in_step_map import UpdateInStepMap


T = TypeVar("T", bound="UpdateIn")


@_attrs_define
class UpdateIn:
    """
    Attributes:
        definition (UpdateInDefinition): The journey definition (see docs/journeys.md)
        migrate (bool | Unset): Move people to the new version (else they stay on theirs) Default: False.
        step_map (UpdateInStepMap | Unset): old step id → new step id
    """

    definition: UpdateInDefinition
    migrate: bool | Unset = False
    step_map: UpdateInStepMap | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        definition = self.definition.to_dict()

        migrate = self.migrate

        step_map: dict[str, Any] | Unset = UNSET
        if not isinstance(self.step_map, Unset):
            step_map = self.step_map.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "definition": definition,
            }
        )
        if migrate is not UNSET:
            field_dict["migrate"] = migrate
        if step_map is not UNSET:
            field_dict["step_map"] = step_map

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.update_in_definition import UpdateInDefinition
        from ..models.update_in_step_map import UpdateInStepMap

        d = dict(src_dict)
        definition = UpdateInDefinition.from_dict(d.pop("definition"))

        migrate = d.pop("migrate", UNSET)

        _step_map = d.pop("step_map", UNSET)
        step_map: UpdateInStepMap | Unset
        if isinstance(_step_map, Unset):
            step_map = UNSET
        else:
            step_map = UpdateInStepMap.from_dict(_step_map)

        update_in = cls(
            definition=definition,
            migrate=migrate,
            step_map=step_map,
        )

        update_in.additional_properties = d
        return update_in

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
