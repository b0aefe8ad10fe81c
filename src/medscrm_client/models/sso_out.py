from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.sso_out_role_map import SsoOutRoleMap


T = TypeVar("T", bound="SsoOut")


@_attrs_define
class SsoOut:
    """
    Attributes:
        client_id (str):
        client_secret_set (bool):
        display_name (str):
        enabled (bool):
        groups_claim (str):
        issuer (str):
        jit (bool):
        local_passwords (bool):
        role_map (SsoOutRoleMap):
        scopes (list[str]):
        updated_at (datetime.datetime):
        updated_by (str):
        username_claim (str):
    """

    client_id: str
    client_secret_set: bool
    display_name: str
    enabled: bool
    groups_claim: str
    issuer: str
    jit: bool
    local_passwords: bool
    role_map: SsoOutRoleMap
    scopes: list[str]
    updated_at: datetime.datetime
    updated_by: str
    username_claim: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        client_id = self.client_id

        client_secret_set = self.client_secret_set

        display_name = self.display_name

        enabled = self.enabled

        groups_claim = self.groups_claim

        issuer = self.issuer

        jit = self.jit

        local_passwords = self.local_passwords

        role_map = self.role_map.to_dict()

        scopes = self.scopes

        updated_at = self.updated_at.isoformat()

        updated_by = self.updated_by

        username_claim = self.username_claim

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "client_id": client_id,
                "client_secret_set": client_secret_set,
                "display_name": display_name,
                "enabled": enabled,
                "groups_claim": groups_claim,
                "issuer": issuer,
                "jit": jit,
                "local_passwords": local_passwords,
                "role_map": role_map,
                "scopes": scopes,
                "updated_at": updated_at,
                "updated_by": updated_by,
                "username_claim": username_claim,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.sso_out_role_map import SsoOutRoleMap

        d = dict(src_dict)
        client_id = d.pop("client_id")

        client_secret_set = d.pop("client_secret_set")

        display_name = d.pop("display_name")

        enabled = d.pop("enabled")

        groups_claim = d.pop("groups_claim")

        issuer = d.pop("issuer")

        jit = d.pop("jit")

        local_passwords = d.pop("local_passwords")

        role_map = SsoOutRoleMap.from_dict(d.pop("role_map"))

        scopes = cast(list[str], d.pop("scopes"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        updated_by = d.pop("updated_by")

        username_claim = d.pop("username_claim")

        sso_out = cls(
            client_id=client_id,
            client_secret_set=client_secret_set,
            display_name=display_name,
            enabled=enabled,
            groups_claim=groups_claim,
            issuer=issuer,
            jit=jit,
            local_passwords=local_passwords,
            role_map=role_map,
            scopes=scopes,
            updated_at=updated_at,
            updated_by=updated_by,
            username_claim=username_claim,
        )

        sso_out.additional_properties = d
        return sso_out

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
