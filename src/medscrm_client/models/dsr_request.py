from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.dsr_request_result_type_0 import DsrRequestResultType0


T = TypeVar("T", bound="DsrRequest")


@_attrs_define
class DsrRequest:
    """
    Attributes:
        actor (str):
        created_at (datetime.datetime):
        id (str):
        kind (str): export, correct, erase, restrict, lift, hold, release
        status (str): received, done, refused, failed
        certificate_sha256 (None | str | Unset):
        completed_at (datetime.datetime | None | Unset):
        identifier_hash (None | str | Unset): HMAC of the identifier as given (never in clear)
        identifier_type (None | str | Unset):
        person_id (None | str | Unset):
        reason (None | str | Unset):
        refusal_code (None | str | Unset): legal_hold when an erasure was refused
        result (DsrRequestResultType0 | None | Unset):
    """

    actor: str
    created_at: datetime.datetime
    id: str
    kind: str
    status: str
    certificate_sha256: None | str | Unset = UNSET
    completed_at: datetime.datetime | None | Unset = UNSET
    identifier_hash: None | str | Unset = UNSET
    identifier_type: None | str | Unset = UNSET
    person_id: None | str | Unset = UNSET
    reason: None | str | Unset = UNSET
    refusal_code: None | str | Unset = UNSET
    result: DsrRequestResultType0 | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.dsr_request_result_type_0 import DsrRequestResultType0

        actor = self.actor

        created_at = self.created_at.isoformat()

        id = self.id

        kind = self.kind

        status = self.status

        certificate_sha256: None | str | Unset
        if isinstance(self.certificate_sha256, Unset):
            certificate_sha256 = UNSET
        else:
            certificate_sha256 = self.certificate_sha256

        completed_at: None | str | Unset
        if isinstance(self.completed_at, Unset):
            completed_at = UNSET
        elif isinstance(self.completed_at, datetime.datetime):
            completed_at = self.completed_at.isoformat()
        else:
            completed_at = self.completed_at

        identifier_hash: None | str | Unset
        if isinstance(self.identifier_hash, Unset):
            identifier_hash = UNSET
        else:
            identifier_hash = self.identifier_hash

        identifier_type: None | str | Unset
        if isinstance(self.identifier_type, Unset):
            identifier_type = UNSET
        else:
            identifier_type = self.identifier_type

        person_id: None | str | Unset
        if isinstance(self.person_id, Unset):
            person_id = UNSET
        else:
            person_id = self.person_id

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        refusal_code: None | str | Unset
        if isinstance(self.refusal_code, Unset):
            refusal_code = UNSET
        else:
            refusal_code = self.refusal_code

        result: dict[str, Any] | None | Unset
        if isinstance(self.result, Unset):
            result = UNSET
        elif isinstance(self.result, DsrRequestResultType0):
            result = self.result.to_dict()
        else:
            result = self.result

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "actor": actor,
                "created_at": created_at,
                "id": id,
                "kind": kind,
                "status": status,
            }
        )
        if certificate_sha256 is not UNSET:
            field_dict["certificate_sha256"] = certificate_sha256
        if completed_at is not UNSET:
            field_dict["completed_at"] = completed_at
        if identifier_hash is not UNSET:
            field_dict["identifier_hash"] = identifier_hash
        if identifier_type is not UNSET:
            field_dict["identifier_type"] = identifier_type
        if person_id is not UNSET:
            field_dict["person_id"] = person_id
        if reason is not UNSET:
            field_dict["reason"] = reason
        if refusal_code is not UNSET:
            field_dict["refusal_code"] = refusal_code
        if result is not UNSET:
            field_dict["result"] = result

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.dsr_request_result_type_0 import DsrRequestResultType0

        d = dict(src_dict)
        actor = d.pop("actor")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        kind = d.pop("kind")

        status = d.pop("status")

        def _parse_certificate_sha256(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        certificate_sha256 = _parse_certificate_sha256(
            d.pop("certificate_sha256", UNSET)
        )

        def _parse_completed_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                completed_at_type_0 = datetime.datetime.fromisoformat(data)

                return completed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        completed_at = _parse_completed_at(d.pop("completed_at", UNSET))

        def _parse_identifier_hash(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        identifier_hash = _parse_identifier_hash(d.pop("identifier_hash", UNSET))

        def _parse_identifier_type(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        identifier_type = _parse_identifier_type(d.pop("identifier_type", UNSET))

        def _parse_person_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        person_id = _parse_person_id(d.pop("person_id", UNSET))

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        def _parse_refusal_code(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        refusal_code = _parse_refusal_code(d.pop("refusal_code", UNSET))

        def _parse_result(data: object) -> DsrRequestResultType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                result_type_0 = DsrRequestResultType0.from_dict(data)

                return result_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DsrRequestResultType0 | None | Unset, data)

        result = _parse_result(d.pop("result", UNSET))

        dsr_request = cls(
            actor=actor,
            created_at=created_at,
            id=id,
            kind=kind,
            status=status,
            certificate_sha256=certificate_sha256,
            completed_at=completed_at,
            identifier_hash=identifier_hash,
            identifier_type=identifier_type,
            person_id=person_id,
            reason=reason,
            refusal_code=refusal_code,
            result=result,
        )

        dsr_request.additional_properties = d
        return dsr_request

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
