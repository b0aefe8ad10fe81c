from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.send_check import SendCheck


T = TypeVar("T", bound="SendProof")


@_attrs_define
class SendProof:
    """
    Attributes:
        channel (str):
        checks (list[SendCheck]):
        created_at (datetime.datetime):
        origin (str):
        person_id (str):
        purpose (str):
        send_id (str):
        status (str):
        approval_code (None | str | Unset): the content's MLR approval code at send time
        approval_expires_at (datetime.datetime | None | Unset):
        consent_hash (None | str | Unset): SHA-256 of what the person agreed to
        consent_history_id (None | str | Unset): the consent change the send relied on
        consent_version (int | None | Unset): the how-many-th change of that consent
        contact (None | str | Unset): e-mail or phone for the channel, masked likewise
        content_id (None | str | Unset):
        person_name (None | str | Unset): masked where the role may not read PII
        reason (None | str | Unset):
    """

    channel: str
    checks: list[SendCheck]
    created_at: datetime.datetime
    origin: str
    person_id: str
    purpose: str
    send_id: str
    status: str
    approval_code: None | str | Unset = UNSET
    approval_expires_at: datetime.datetime | None | Unset = UNSET
    consent_hash: None | str | Unset = UNSET
    consent_history_id: None | str | Unset = UNSET
    consent_version: int | None | Unset = UNSET
    contact: None | str | Unset = UNSET
    content_id: None | str | Unset = UNSET
    person_name: None | str | Unset = UNSET
    reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        channel = self.channel

        checks = []
        for checks_item_data in self.checks:
            checks_item = checks_item_data.to_dict()
            checks.append(checks_item)

        created_at = self.created_at.isoformat()

        origin = self.origin

        person_id = self.person_id

        purpose = self.purpose

        send_id = self.send_id

        status = self.status

        approval_code: None | str | Unset
        if isinstance(self.approval_code, Unset):
            approval_code = UNSET
        else:
            approval_code = self.approval_code

        approval_expires_at: None | str | Unset
        if isinstance(self.approval_expires_at, Unset):
            approval_expires_at = UNSET
        elif isinstance(self.approval_expires_at, datetime.datetime):
            approval_expires_at = self.approval_expires_at.isoformat()
        else:
            approval_expires_at = self.approval_expires_at

        consent_hash: None | str | Unset
        if isinstance(self.consent_hash, Unset):
            consent_hash = UNSET
        else:
            consent_hash = self.consent_hash

        consent_history_id: None | str | Unset
        if isinstance(self.consent_history_id, Unset):
            consent_history_id = UNSET
        else:
            consent_history_id = self.consent_history_id

        consent_version: int | None | Unset
        if isinstance(self.consent_version, Unset):
            consent_version = UNSET
        else:
            consent_version = self.consent_version

        contact: None | str | Unset
        if isinstance(self.contact, Unset):
            contact = UNSET
        else:
            contact = self.contact

        content_id: None | str | Unset
        if isinstance(self.content_id, Unset):
            content_id = UNSET
        else:
            content_id = self.content_id

        person_name: None | str | Unset
        if isinstance(self.person_name, Unset):
            person_name = UNSET
        else:
            person_name = self.person_name

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "channel": channel,
                "checks": checks,
                "created_at": created_at,
                "origin": origin,
                "person_id": person_id,
                "purpose": purpose,
                "send_id": send_id,
                "status": status,
            }
        )
        if approval_code is not UNSET:
            field_dict["approval_code"] = approval_code
        if approval_expires_at is not UNSET:
            field_dict["approval_expires_at"] = approval_expires_at
        if consent_hash is not UNSET:
            field_dict["consent_hash"] = consent_hash
        if consent_history_id is not UNSET:
            field_dict["consent_history_id"] = consent_history_id
        if consent_version is not UNSET:
            field_dict["consent_version"] = consent_version
        if contact is not UNSET:
            field_dict["contact"] = contact
        if content_id is not UNSET:
            field_dict["content_id"] = content_id
        if person_name is not UNSET:
            field_dict["person_name"] = person_name
        if reason is not UNSET:
            field_dict["reason"] = reason

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.send_check import SendCheck

        d = dict(src_dict)
        channel = d.pop("channel")

        checks = []
        _checks = d.pop("checks")
        for checks_item_data in _checks:
            checks_item = SendCheck.from_dict(checks_item_data)

            checks.append(checks_item)

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        origin = d.pop("origin")

        person_id = d.pop("person_id")

        purpose = d.pop("purpose")

        send_id = d.pop("send_id")

        status = d.pop("status")

        def _parse_approval_code(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        approval_code = _parse_approval_code(d.pop("approval_code", UNSET))

        def _parse_approval_expires_at(
            data: object,
        ) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                approval_expires_at_type_0 = datetime.datetime.fromisoformat(data)

                return approval_expires_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        approval_expires_at = _parse_approval_expires_at(
            d.pop("approval_expires_at", UNSET)
        )

        def _parse_consent_hash(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        consent_hash = _parse_consent_hash(d.pop("consent_hash", UNSET))

        def _parse_consent_history_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        consent_history_id = _parse_consent_history_id(
            d.pop("consent_history_id", UNSET)
        )

        def _parse_consent_version(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        consent_version = _parse_consent_version(d.pop("consent_version", UNSET))

        def _parse_contact(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        contact = _parse_contact(d.pop("contact", UNSET))

        def _parse_content_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        content_id = _parse_content_id(d.pop("content_id", UNSET))

        def _parse_person_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        person_name = _parse_person_name(d.pop("person_name", UNSET))

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        send_proof = cls(
            channel=channel,
            checks=checks,
            created_at=created_at,
            origin=origin,
            person_id=person_id,
            purpose=purpose,
            send_id=send_id,
            status=status,
            approval_code=approval_code,
            approval_expires_at=approval_expires_at,
            consent_hash=consent_hash,
            consent_history_id=consent_history_id,
            consent_version=consent_version,
            contact=contact,
            content_id=content_id,
            person_name=person_name,
            reason=reason,
        )

        send_proof.additional_properties = d
        return send_proof

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
