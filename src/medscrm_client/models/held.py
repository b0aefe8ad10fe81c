from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.dsr_request import DsrRequest
    from ..models.held_legal_hold_type_0 import HeldLegalHoldType0
    from ..models.held_restricted_type_0 import HeldRestrictedType0
    from ..models.held_tables import HeldTables


T = TypeVar("T", bound="Held")


@_attrs_define
class Held:
    """
    Attributes:
        person_id (str):
        person_ids (list[str]): The person and every person merged into them
        requests (list[DsrRequest]):
        tables (HeldTables): Rows about the person, per table
        total_rows (int):
        legal_hold (HeldLegalHoldType0 | None | Unset):
        restricted (HeldRestrictedType0 | None | Unset):
    """

    person_id: str
    person_ids: list[str]
    requests: list[DsrRequest]
    tables: HeldTables
    total_rows: int
    legal_hold: HeldLegalHoldType0 | None | Unset = UNSET
    restricted: HeldRestrictedType0 | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.held_legal_hold_type_0 import HeldLegalHoldType0
        from ..models.held_restricted_type_0 import HeldRestrictedType0

        person_id = self.person_id

        person_ids = self.person_ids

        requests = []
        for requests_item_data in self.requests:
            requests_item = requests_item_data.to_dict()
            requests.append(requests_item)

        tables = self.tables.to_dict()

        total_rows = self.total_rows

        legal_hold: dict[str, Any] | None | Unset
        if isinstance(self.legal_hold, Unset):
            legal_hold = UNSET
        elif isinstance(self.legal_hold, HeldLegalHoldType0):
            legal_hold = self.legal_hold.to_dict()
        else:
            legal_hold = self.legal_hold

        restricted: dict[str, Any] | None | Unset
        if isinstance(self.restricted, Unset):
            restricted = UNSET
        elif isinstance(self.restricted, HeldRestrictedType0):
            restricted = self.restricted.to_dict()
        else:
            restricted = self.restricted

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "person_id": person_id,
                "person_ids": person_ids,
                "requests": requests,
                "tables": tables,
                "total_rows": total_rows,
            }
        )
        if legal_hold is not UNSET:
            field_dict["legal_hold"] = legal_hold
        if restricted is not UNSET:
            field_dict["restricted"] = restricted

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.dsr_request import DsrRequest
        from ..models.held_legal_hold_type_0 import HeldLegalHoldType0
        from ..models.held_restricted_type_0 import HeldRestrictedType0
        from ..models.held_tables import HeldTables

        d = dict(src_dict)
        person_id = d.pop("person_id")

        person_ids = cast(list[str], d.pop("person_ids"))

        requests = []
        _requests = d.pop("requests")
        for requests_item_data in _requests:
            requests_item = DsrRequest.from_dict(requests_item_data)

            requests.append(requests_item)

        tables = HeldTables.from_dict(d.pop("tables"))

        total_rows = d.pop("total_rows")

        def _parse_legal_hold(data: object) -> HeldLegalHoldType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                legal_hold_type_0 = HeldLegalHoldType0.from_dict(data)

                return legal_hold_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(HeldLegalHoldType0 | None | Unset, data)

        legal_hold = _parse_legal_hold(d.pop("legal_hold", UNSET))

        def _parse_restricted(data: object) -> HeldRestrictedType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                restricted_type_0 = HeldRestrictedType0.from_dict(data)

                return restricted_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(HeldRestrictedType0 | None | Unset, data)

        restricted = _parse_restricted(d.pop("restricted", UNSET))

        held = cls(
            person_id=person_id,
            person_ids=person_ids,
            requests=requests,
            tables=tables,
            total_rows=total_rows,
            legal_hold=legal_hold,
            restricted=restricted,
        )

        held.additional_properties = d
        return held

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
