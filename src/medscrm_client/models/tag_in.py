from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.tag_in_category import TagInCategory
from ..models.tag_in_refresh import TagInRefresh
from ..models.tag_in_value_type import TagInValueType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.tag_in_fields_type_0 import TagInFieldsType0


T = TypeVar("T", bound="TagIn")


@_attrs_define
class TagIn:
    """
    Attributes:
        key (str):
        category (TagInCategory | Unset):  Default: TagInCategory.BUSINESS_RULE.
        description (None | str | Unset):
        fields (None | TagInFieldsType0 | Unset): Types of custom attributes not yet seen in the data, e.g.
            {"hospital_grade": "string"}
        name_en (None | str | Unset):
        name_zh (None | str | Unset):
        owner (None | str | Unset):
        refresh (TagInRefresh | Unset):  Default: TagInRefresh.SCHEDULED.
        rule (Any | Unset):
        value_type (TagInValueType | Unset):  Default: TagInValueType.BOOL.
    """

    key: str
    category: TagInCategory | Unset = TagInCategory.BUSINESS_RULE
    description: None | str | Unset = UNSET
    fields: None | TagInFieldsType0 | Unset = UNSET
    name_en: None | str | Unset = UNSET
    name_zh: None | str | Unset = UNSET
    owner: None | str | Unset = UNSET
    refresh: TagInRefresh | Unset = TagInRefresh.SCHEDULED
    rule: Any | Unset = UNSET
    value_type: TagInValueType | Unset = TagInValueType.BOOL
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.tag_in_fields_type_0 import TagInFieldsType0

        key = self.key

        category: str | Unset = UNSET
        if not isinstance(self.category, Unset):
            category = self.category.value

        description: None | str | Unset
        if isinstance(self.description, Unset):
            description = UNSET
        else:
            description = self.description

        fields: dict[str, Any] | None | Unset
        if isinstance(self.fields, Unset):
            fields = UNSET
        elif isinstance(self.fields, TagInFieldsType0):
            fields = self.fields.to_dict()
        else:
            fields = self.fields

        name_en: None | str | Unset
        if isinstance(self.name_en, Unset):
            name_en = UNSET
        else:
            name_en = self.name_en

        name_zh: None | str | Unset
        if isinstance(self.name_zh, Unset):
            name_zh = UNSET
        else:
            name_zh = self.name_zh

        owner: None | str | Unset
        if isinstance(self.owner, Unset):
            owner = UNSET
        else:
            owner = self.owner

        refresh: str | Unset = UNSET
        if not isinstance(self.refresh, Unset):
            refresh = self.refresh.value

        rule = self.rule

        value_type: str | Unset = UNSET
        if not isinstance(self.value_type, Unset):
            value_type = self.value_type.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key": key,
            }
        )
        if category is not UNSET:
            field_dict["category"] = category
        if description is not UNSET:
            field_dict["description"] = description
        if fields is not UNSET:
            field_dict["fields"] = fields
        if name_en is not UNSET:
            field_dict["name_en"] = name_en
        if name_zh is not UNSET:
            field_dict["name_zh"] = name_zh
        if owner is not UNSET:
            field_dict["owner"] = owner
        if refresh is not UNSET:
            field_dict["refresh"] = refresh
        if rule is not UNSET:
            field_dict["rule"] = rule
        if value_type is not UNSET:
            field_dict["value_type"] = value_type

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.tag_in_fields_type_0 import TagInFieldsType0

        d = dict(src_dict)
        key = d.pop("key")

        _category = d.pop("category", UNSET)
        category: TagInCategory | Unset
        if isinstance(_category, Unset):
            category = UNSET
        else:
            category = TagInCategory(_category)

        def _parse_description(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        description = _parse_description(d.pop("description", UNSET))

        def _parse_fields(data: object) -> None | TagInFieldsType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                fields_type_0 = TagInFieldsType0.from_dict(data)

                return fields_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TagInFieldsType0 | Unset, data)

        fields = _parse_fields(d.pop("fields", UNSET))

        def _parse_name_en(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name_en = _parse_name_en(d.pop("name_en", UNSET))

        def _parse_name_zh(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name_zh = _parse_name_zh(d.pop("name_zh", UNSET))

        def _parse_owner(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        owner = _parse_owner(d.pop("owner", UNSET))

        _refresh = d.pop("refresh", UNSET)
        refresh: TagInRefresh | Unset
        if isinstance(_refresh, Unset):
            refresh = UNSET
        else:
            refresh = TagInRefresh(_refresh)

        rule = d.pop("rule", UNSET)

        _value_type = d.pop("value_type", UNSET)
        value_type: TagInValueType | Unset
        if isinstance(_value_type, Unset):
            value_type = UNSET
        else:
            value_type = TagInValueType(_value_type)

        tag_in = cls(
            key=key,
            category=category,
            description=description,
            fields=fields,
            name_en=name_en,
            name_zh=name_zh,
            owner=owner,
            refresh=refresh,
            rule=rule,
            value_type=value_type,
        )

        tag_in.additional_properties = d
        return tag_in

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
