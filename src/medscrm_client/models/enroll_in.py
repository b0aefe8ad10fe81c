from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.enroll_in_context import EnrollInContext


T = TypeVar("T", bound="EnrollIn")


@_attrs_define
class EnrollIn:
    """
    Attributes:
        person_ids (list[str]):
        context (EnrollInContext | Unset): Variables for the journey's sends
        ref (None | str | Unset): Idempotency reference (same ref enrols once)
    """

    person_ids: list[str]
    context: EnrollInContext | Unset = UNSET
    ref: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        person_ids = self.person_ids

        context: dict[str, Any] | Unset = UNSET
        if not isinstance(self.context, Unset):
            context = self.context.to_dict()

        ref: None | str | Unset
        if isinstance(self.ref, Unset):
            ref = UNSET
        else:
            ref = self.ref

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "person_ids": person_ids,
            }
        )
        if context is not UNSET:
            field_dict["context"] = context
        if ref is not UNSET:
            field_dict["ref"] = ref

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.enroll_in_context import EnrollInContext

        d = dict(src_dict)
        person_ids = cast(list[str], d.pop("person_ids"))

        _context = d.pop("context", UNSET)
        context: EnrollInContext | Unset
        if isinstance(_context, Unset):
            context = UNSET
        else:
            context = EnrollInContext.from_dict(_context)

        def _parse_ref(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        ref = _parse_ref(d.pop("ref", UNSET))

        enroll_in = cls(
            person_ids=person_ids,
            context=context,
            ref=ref,
        )

        enroll_in.additional_properties = d
        return enroll_in

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
