from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.sso_in_role_map_type_0 import SsoInRoleMapType0


T = TypeVar("T", bound="SsoIn")


@_attrs_define
class SsoIn:
    """Settings to set; an omitted (null) field keeps its value. The first call needs issuer,
    client_id and role_map.

        Attributes:
            client_id (None | str | Unset):
            client_secret (None | str | Unset): Sealed at rest and never returned; an empty string removes it
            display_name (None | str | Unset): The name on the login button
            groups_claim (None | str | Unset):
            issuer (None | str | Unset): Issuer URL; discovery reads its /.well-known
            jit (bool | None | Unset): Create users at their first sign-in
            local_passwords (bool | None | Unset): Whether local passwords still sign in (admins with one always may: break-
                glass)
            role_map (None | SsoInRoleMapType0 | Unset): IdP group → role (admin, marketer, analyst, rep, compliance); most
                privileged wins
            scopes (list[str] | None | Unset): Must include openid
            username_claim (None | str | Unset):
    """

    client_id: None | str | Unset = UNSET
    client_secret: None | str | Unset = UNSET
    display_name: None | str | Unset = UNSET
    groups_claim: None | str | Unset = UNSET
    issuer: None | str | Unset = UNSET
    jit: bool | None | Unset = UNSET
    local_passwords: bool | None | Unset = UNSET
    role_map: None | SsoInRoleMapType0 | Unset = UNSET
    scopes: list[str] | None | Unset = UNSET
    username_claim: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.sso_in_role_map_type_0 import SsoInRoleMapType0

        client_id: None | str | Unset
        if isinstance(self.client_id, Unset):
            client_id = UNSET
        else:
            client_id = self.client_id

        client_secret: None | str | Unset
        if isinstance(self.client_secret, Unset):
            client_secret = UNSET
        else:
            client_secret = self.client_secret

        display_name: None | str | Unset
        if isinstance(self.display_name, Unset):
            display_name = UNSET
        else:
            display_name = self.display_name

        groups_claim: None | str | Unset
        if isinstance(self.groups_claim, Unset):
            groups_claim = UNSET
        else:
            groups_claim = self.groups_claim

        issuer: None | str | Unset
        if isinstance(self.issuer, Unset):
            issuer = UNSET
        else:
            issuer = self.issuer

        jit: bool | None | Unset
        if isinstance(self.jit, Unset):
            jit = UNSET
        else:
            jit = self.jit

        local_passwords: bool | None | Unset
        if isinstance(self.local_passwords, Unset):
            local_passwords = UNSET
        else:
            local_passwords = self.local_passwords

        role_map: dict[str, Any] | None | Unset
        if isinstance(self.role_map, Unset):
            role_map = UNSET
        elif isinstance(self.role_map, SsoInRoleMapType0):
            role_map = self.role_map.to_dict()
        else:
            role_map = self.role_map

        scopes: list[str] | None | Unset
        if isinstance(self.scopes, Unset):
            scopes = UNSET
        elif isinstance(self.scopes, list):
            scopes = self.scopes

        else:
            scopes = self.scopes

        username_claim: None | str | Unset
        if isinstance(self.username_claim, Unset):
            username_claim = UNSET
        else:
            username_claim = self.username_claim

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if client_id is not UNSET:
            field_dict["client_id"] = client_id
        if client_secret is not UNSET:
            field_dict["client_secret"] = client_secret
        if display_name is not UNSET:
            field_dict["display_name"] = display_name
        if groups_claim is not UNSET:
            field_dict["groups_claim"] = groups_claim
        if issuer is not UNSET:
            field_dict["issuer"] = issuer
        if jit is not UNSET:
            field_dict["jit"] = jit
        if local_passwords is not UNSET:
            field_dict["local_passwords"] = local_passwords
        if role_map is not UNSET:
            field_dict["role_map"] = role_map
        if scopes is not UNSET:
            field_dict["scopes"] = scopes
        if username_claim is not UNSET:
            field_dict["username_claim"] = username_claim

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.sso_in_role_map_type_0 import SsoInRoleMapType0

        d = dict(src_dict)

        def _parse_client_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        client_id = _parse_client_id(d.pop("client_id", UNSET))

        def _parse_client_secret(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        client_secret = _parse_client_secret(d.pop("client_secret", UNSET))

        def _parse_display_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        display_name = _parse_display_name(d.pop("display_name", UNSET))

        def _parse_groups_claim(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        groups_claim = _parse_groups_claim(d.pop("groups_claim", UNSET))

        def _parse_issuer(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        issuer = _parse_issuer(d.pop("issuer", UNSET))

        def _parse_jit(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        jit = _parse_jit(d.pop("jit", UNSET))

        def _parse_local_passwords(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        local_passwords = _parse_local_passwords(d.pop("local_passwords", UNSET))

        def _parse_role_map(data: object) -> None | SsoInRoleMapType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                role_map_type_0 = SsoInRoleMapType0.from_dict(data)

                return role_map_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SsoInRoleMapType0 | Unset, data)

        role_map = _parse_role_map(d.pop("role_map", UNSET))

        def _parse_scopes(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                scopes_type_0 = cast(list[str], data)

                return scopes_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        scopes = _parse_scopes(d.pop("scopes", UNSET))

        def _parse_username_claim(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        username_claim = _parse_username_claim(d.pop("username_claim", UNSET))

        sso_in = cls(
            client_id=client_id,
            client_secret=client_secret,
            display_name=display_name,
            groups_claim=groups_claim,
            issuer=issuer,
            jit=jit,
            local_passwords=local_passwords,
            role_map=role_map,
            scopes=scopes,
            username_claim=username_claim,
        )

        sso_in.additional_properties = d
        return sso_in

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
