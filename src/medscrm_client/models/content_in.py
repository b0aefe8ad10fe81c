from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.content_in_audience import ContentInAudience
from ..models.content_in_kind import ContentInKind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.content_in_template_type_0 import ContentInTemplateType0


T = TypeVar("T", bound="ContentIn")


@_attrs_define
class ContentIn:
    """
    Attributes:
        audience (ContentInAudience):
        key (str):
        title (str):
        body (None | str | Unset):
        expires_at (datetime.datetime | None | Unset):
        kind (ContentInKind | Unset):  Default: ContentInKind.ARTICLE.
        prescription (bool | Unset):  Default: False.
        product (None | str | Unset):
        subject (None | str | Unset):
        template (ContentInTemplateType0 | None | Unset): provider templates, e.g. {"aliyun_template_code": "SMS_1",
            "params": ["name"]}
        therapy_area (None | str | Unset):
        topics (list[str] | Unset):
        url (None | str | Unset):
        valid_from (datetime.datetime | None | Unset):
    """

    audience: ContentInAudience
    key: str
    title: str
    body: None | str | Unset = UNSET
    expires_at: datetime.datetime | None | Unset = UNSET
    kind: ContentInKind | Unset = ContentInKind.ARTICLE
    prescription: bool | Unset = False
    product: None | str | Unset = UNSET
    subject: None | str | Unset = UNSET
    template: ContentInTemplateType0 | None | Unset = UNSET
    therapy_area: None | str | Unset = UNSET
    topics: list[str] | Unset = UNSET
    url: None | str | Unset = UNSET
    valid_from: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.content_in_template_type_0 import ContentInTemplateType0

        audience = self.audience.value

        key = self.key

        title = self.title

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

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind.value

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
        elif isinstance(self.template, ContentInTemplateType0):
            template = self.template.to_dict()
        else:
            template = self.template

        therapy_area: None | str | Unset
        if isinstance(self.therapy_area, Unset):
            therapy_area = UNSET
        else:
            therapy_area = self.therapy_area

        topics: list[str] | Unset = UNSET
        if not isinstance(self.topics, Unset):
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
        field_dict.update(
            {
                "audience": audience,
                "key": key,
                "title": title,
            }
        )
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
        if topics is not UNSET:
            field_dict["topics"] = topics
        if url is not UNSET:
            field_dict["url"] = url
        if valid_from is not UNSET:
            field_dict["valid_from"] = valid_from

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.content_in_template_type_0 import ContentInTemplateType0

        d = dict(src_dict)
        audience = ContentInAudience(d.pop("audience"))

        key = d.pop("key")

        title = d.pop("title")

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

        _kind = d.pop("kind", UNSET)
        kind: ContentInKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = ContentInKind(_kind)

        prescription = d.pop("prescription", UNSET)

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

        def _parse_template(data: object) -> ContentInTemplateType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                template_type_0 = ContentInTemplateType0.from_dict(data)

                return template_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ContentInTemplateType0 | None | Unset, data)

        template = _parse_template(d.pop("template", UNSET))

        def _parse_therapy_area(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        therapy_area = _parse_therapy_area(d.pop("therapy_area", UNSET))

        topics = cast(list[str], d.pop("topics", UNSET))

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

        content_in = cls(
            audience=audience,
            key=key,
            title=title,
            body=body,
            expires_at=expires_at,
            kind=kind,
            prescription=prescription,
            product=product,
            subject=subject,
            template=template,
            therapy_area=therapy_area,
            topics=topics,
            url=url,
            valid_from=valid_from,
        )

        content_in.additional_properties = d
        return content_in

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
