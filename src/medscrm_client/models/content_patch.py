from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.content_patch_audience_type_0 import ContentPatchAudienceType0
from ..models.content_patch_kind_type_0 import ContentPatchKindType0
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.content_patch_template_type_0 import ContentPatchTemplateType0


T = TypeVar("T", bound="ContentPatch")


@_attrs_define
class ContentPatch:
    """Fields of a draft to change; those left out keep their values (the key never changes).

    Attributes:
        audience (ContentPatchAudienceType0 | None | Unset):
        body (None | str | Unset):
        expires_at (datetime.datetime | None | Unset):
        kind (ContentPatchKindType0 | None | Unset):
        prescription (bool | None | Unset):
        product (None | str | Unset):
        subject (None | str | Unset):
        template (ContentPatchTemplateType0 | None | Unset):
        therapy_area (None | str | Unset):
        title (None | str | Unset):
        topics (list[str] | None | Unset):
        url (None | str | Unset):
        valid_from (datetime.datetime | None | Unset):
    """

    audience: ContentPatchAudienceType0 | None | Unset = UNSET
    body: None | str | Unset = UNSET
    expires_at: datetime.datetime | None | Unset = UNSET
    kind: ContentPatchKindType0 | None | Unset = UNSET
    prescription: bool | None | Unset = UNSET
    product: None | str | Unset = UNSET
    subject: None | str | Unset = UNSET
    template: ContentPatchTemplateType0 | None | Unset = UNSET
    therapy_area: None | str | Unset = UNSET
    title: None | str | Unset = UNSET
    topics: list[str] | None | Unset = UNSET
    url: None | str | Unset = UNSET
    valid_from: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.content_patch_template_type_0 import ContentPatchTemplateType0

        audience: None | str | Unset
        if isinstance(self.audience, Unset):
            audience = UNSET
        elif isinstance(self.audience, ContentPatchAudienceType0):
            audience = self.audience.value
        else:
            audience = self.audience

        body: None | str | Unset
        if isinstance(self.body, Unset):
            body = UNSET
        else:
            body = self.body

        expires_at: None | str | Unset
        if isinstance(self.expires_at, Unset):
            expires_at = UNSET
        elif isinstance(self.expires_at, datetime.datetime):
            expires_at = self.expires_at.isoformat()
        else:
            expires_at = self.expires_at

        kind: None | str | Unset
        if isinstance(self.kind, Unset):
            kind = UNSET
        elif isinstance(self.kind, ContentPatchKindType0):
            kind = self.kind.value
        else:
            kind = self.kind

        prescription: bool | None | Unset
        if isinstance(self.prescription, Unset):
            prescription = UNSET
        else:
            prescription = self.prescription

        product: None | str | Unset
        if isinstance(self.product, Unset):
            product = UNSET
        else:
            product = self.product

        subject: None | str | Unset
        if isinstance(self.subject, Unset):
            subject = UNSET
        else:
            subject = self.subject

        template: dict[str, Any] | None | Unset
        if isinstance(self.template, Unset):
            template = UNSET
        elif isinstance(self.template, ContentPatchTemplateType0):
            template = self.template.to_dict()
        else:
            template = self.template

        therapy_area: None | str | Unset
        if isinstance(self.therapy_area, Unset):
            therapy_area = UNSET
        else:
            therapy_area = self.therapy_area

        title: None | str | Unset
        if isinstance(self.title, Unset):
            title = UNSET
        else:
            title = self.title

        topics: list[str] | None | Unset
        if isinstance(self.topics, Unset):
            topics = UNSET
        elif isinstance(self.topics, list):
            topics = self.topics

        else:
            topics = self.topics

        url: None | str | Unset
        if isinstance(self.url, Unset):
            url = UNSET
        else:
            url = self.url

        valid_from: None | str | Unset
        if isinstance(self.valid_from, Unset):
            valid_from = UNSET
        elif isinstance(self.valid_from, datetime.datetime):
            valid_from = self.valid_from.isoformat()
        else:
            valid_from = self.valid_from

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if audience is not UNSET:
            field_dict["audience"] = audience
        if body is not UNSET:
            field_dict["body"] = body
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at
        if kind is not UNSET:
            field_dict["kind"] = kind
        if prescription is not UNSET:
            field_dict["prescription"] = prescription
        if product is not UNSET:
            field_dict["product"] = product
        if subject is not UNSET:
            field_dict["subject"] = subject
        if template is not UNSET:
            field_dict["template"] = template
        if therapy_area is not UNSET:
            field_dict["therapy_area"] = therapy_area
        if title is not UNSET:
            field_dict["title"] = title
        if topics is not UNSET:
            field_dict["topics"] = topics
        if url is not UNSET:
            field_dict["url"] = url
        if valid_from is not UNSET:
            field_dict["valid_from"] = valid_from

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.content_patch_template_type_0 import ContentPatchTemplateType0

        d = dict(src_dict)

        def _parse_audience(data: object) -> ContentPatchAudienceType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                audience_type_0 = ContentPatchAudienceType0(data)

                return audience_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ContentPatchAudienceType0 | None | Unset, data)

        audience = _parse_audience(d.pop("audience", UNSET))

        def _parse_body(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        body = _parse_body(d.pop("body", UNSET))

        def _parse_expires_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                expires_at_type_0 = datetime.datetime.fromisoformat(data)

                return expires_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        expires_at = _parse_expires_at(d.pop("expires_at", UNSET))

        def _parse_kind(data: object) -> ContentPatchKindType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                kind_type_0 = ContentPatchKindType0(data)

                return kind_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ContentPatchKindType0 | None | Unset, data)

        kind = _parse_kind(d.pop("kind", UNSET))

        def _parse_prescription(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        prescription = _parse_prescription(d.pop("prescription", UNSET))

        def _parse_product(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        product = _parse_product(d.pop("product", UNSET))

        def _parse_subject(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        subject = _parse_subject(d.pop("subject", UNSET))

        def _parse_template(data: object) -> ContentPatchTemplateType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                template_type_0 = ContentPatchTemplateType0.from_dict(data)

                return template_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ContentPatchTemplateType0 | None | Unset, data)

        template = _parse_template(d.pop("template", UNSET))

        def _parse_therapy_area(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        therapy_area = _parse_therapy_area(d.pop("therapy_area", UNSET))

        def _parse_title(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        title = _parse_title(d.pop("title", UNSET))

        def _parse_topics(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                topics_type_0 = cast(list[str], data)

                return topics_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        topics = _parse_topics(d.pop("topics", UNSET))

        def _parse_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        url = _parse_url(d.pop("url", UNSET))

        def _parse_valid_from(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                valid_from_type_0 = datetime.datetime.fromisoformat(data)

                return valid_from_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        valid_from = _parse_valid_from(d.pop("valid_from", UNSET))

        content_patch = cls(
            audience=audience,
            body=body,
            expires_at=expires_at,
            kind=kind,
            prescription=prescription,
            product=product,
            subject=subject,
            template=template,
            therapy_area=therapy_area,
            title=title,
            topics=topics,
            url=url,
            valid_from=valid_from,
        )

        content_patch.additional_properties = d
        return content_patch

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
