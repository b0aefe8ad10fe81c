from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.consent_in_channel import ConsentInChannel
from ..models.consent_in_purpose import ConsentInPurpose
from ..models.consent_in_status import ConsentInStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.consent_in_evidence_type_0 import ConsentInEvidenceType0


T = TypeVar("T", bound="ConsentIn")


@_attrs_define
class ConsentIn:
    """
    Attributes:
        channel (ConsentInChannel):
        purpose (ConsentInPurpose):
        source (str): where it came from, e.g. webinar_form, wecom_chat, hotline
        status (ConsentInStatus):
        evidence (ConsentInEvidenceType0 | None | Unset):
    """

    channel: ConsentInChannel
    purpose: ConsentInPurpose
    source: str
    status: ConsentInStatus
    evidence: ConsentInEvidenceType0 | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.consent_in_evidence_type_0 import ConsentInEvidenceType0

        channel = self.channel.value

        purpose = self.purpose.value

        source = self.source

        status = self.status.value

        evidence: dict[str, Any] | None | Unset
        if isinstance(self.evidence, Unset):
            evidence = UNSET
        elif isinstance(self.evidence, ConsentInEvidenceType0):
            evidence = self.evidence.to_dict()
        else:
            evidence = self.evidence

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "channel": channel,
                "purpose": purpose,
                "source": source,
                "status": status,
            }
        )
        if evidence is not UNSET:
            field_dict["evidence"] = evidence

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.consent_in_evidence_type_0 import ConsentInEvidenceType0

        d = dict(src_dict)
        channel = ConsentInChannel(d.pop("channel"))

        purpose = ConsentInPurpose(d.pop("purpose"))

        source = d.pop("source")

        status = ConsentInStatus(d.pop("status"))

        def _parse_evidence(data: object) -> ConsentInEvidenceType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                evidence_type_0 = ConsentInEvidenceType0.from_dict(data)

                return evidence_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ConsentInEvidenceType0 | None | Unset, data)

        evidence = _parse_evidence(d.pop("evidence", UNSET))

        consent_in = cls(
            channel=channel,
            purpose=purpose,
            source=source,
            status=status,
            evidence=evidence,
        )

        consent_in.additional_properties = d
        return consent_in

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
