from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.channel_in_provider import ChannelInProvider

if TYPE_CHECKING:
    from ..models.channel_in_settings import ChannelInSettings


T = TypeVar("T", bound="ChannelIn")


@_attrs_define
class ChannelIn:
    """
    Attributes:
        provider (ChannelInProvider): By channel: email smtp; sms aliyun or tencent; wecom wecom; wechat_template
            wechat; webhook hmac
        settings (ChannelInSettings):
    """

    provider: ChannelInProvider
    settings: ChannelInSettings
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        provider = self.provider.value

        settings = self.settings.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "provider": provider,
                "settings": settings,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.channel_in_settings import ChannelInSettings

        d = dict(src_dict)
        provider = ChannelInProvider(d.pop("provider"))

        settings = ChannelInSettings.from_dict(d.pop("settings"))

        channel_in = cls(
            provider=provider,
            settings=settings,
        )

        channel_in.additional_properties = d
        return channel_in

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
