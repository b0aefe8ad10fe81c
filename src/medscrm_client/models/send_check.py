from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.send_check_values import SendCheckValues


T = TypeVar("T", bound="SendCheck")


@_attrs_define
class SendCheck:
    """
    Attributes:
        name (str): consent, content_approval, audience, frequency_cap, quiet_hours, …
        result (str): pass, fail or deferred (quiet hours: queued for the window's end)
        values (SendCheckValues): the values the check compared
        stage (None | str | Unset): request (when asked) or dispatch (the re-check)
    """

    name: str
    result: str
    values: SendCheckValues
    stage: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        result = self.result

        values = self.values.to_dict()

        stage: None | str | Unset
        if isinstance(self.stage, Unset):
            stage = UNSET
        else:
            stage = self.stage

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "result": result,
                "values": values,
            }
        )
        if stage is not UNSET:
            field_dict["stage"] = stage

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.send_check_values import SendCheckValues

        d = dict(src_dict)
        name = d.pop("name")

        result = d.pop("result")

        values = SendCheckValues.from_dict(d.pop("values"))

        def _parse_stage(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        stage = _parse_stage(d.pop("stage", UNSET))

        send_check = cls(
            name=name,
            result=result,
            values=values,
            stage=stage,
        )

        send_check.additional_properties = d
        return send_check

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
