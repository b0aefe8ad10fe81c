from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...types import UNSET, Response, Unset


def _get_kwargs(
    key: str,
    *,
    event: None | str | Unset = UNSET,
    property_: None | str | Unset = UNSET,
    value: None | str | Unset = UNSET,
    days: int | Unset = 14,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_event: None | str | Unset
    if isinstance(event, Unset):
        json_event = UNSET
    else:
        json_event = event
    params["event"] = json_event

    json_property_: None | str | Unset
    if isinstance(property_, Unset):
        json_property_ = UNSET
    else:
        json_property_ = property_
    params["property"] = json_property_

    json_value: None | str | Unset
    if isinstance(value, Unset):
        json_value = UNSET
    else:
        json_value = value
    params["value"] = json_value

    params["days"] = days

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/journeys/{key}/results".format(
            key=quote(str(key), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | Detail | ErrorList | None:
    if response.status_code == 200:
        response_200 = response.json()
        return response_200

    if response.status_code == 401:

        def _parse_response_401(data: object) -> Detail | ErrorList:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_api_error_type_0 = ErrorList.from_dict(data)

                return componentsschemas_api_error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            componentsschemas_api_error_type_1 = Detail.from_dict(data)

            return componentsschemas_api_error_type_1

        response_401 = _parse_response_401(response.json())

        return response_401

    if response.status_code == 403:

        def _parse_response_403(data: object) -> Detail | ErrorList:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_api_error_type_0 = ErrorList.from_dict(data)

                return componentsschemas_api_error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            componentsschemas_api_error_type_1 = Detail.from_dict(data)

            return componentsschemas_api_error_type_1

        response_403 = _parse_response_403(response.json())

        return response_403

    if response.status_code == 404:

        def _parse_response_404(data: object) -> Detail | ErrorList:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_api_error_type_0 = ErrorList.from_dict(data)

                return componentsschemas_api_error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            componentsschemas_api_error_type_1 = Detail.from_dict(data)

            return componentsschemas_api_error_type_1

        response_404 = _parse_response_404(response.json())

        return response_404

    if response.status_code == 422:

        def _parse_response_422(data: object) -> Detail | ErrorList:
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_api_error_type_0 = ErrorList.from_dict(data)

                return componentsschemas_api_error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            componentsschemas_api_error_type_1 = Detail.from_dict(data)

            return componentsschemas_api_error_type_1

        response_422 = _parse_response_422(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | Detail | ErrorList]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    key: str,
    *,
    client: AuthenticatedClient,
    event: None | str | Unset = UNSET,
    property_: None | str | Unset = UNSET,
    value: None | str | Unset = UNSET,
    days: int | Unset = 14,
) -> Response[Any | Detail | ErrorList]:
    """A/B results: per split and variant, entered, sends, opens, clicks, conversions and the test against
    the first variant (z or Fisher, 95 % CI of the difference)

    Args:
        key (str):
        event (None | str | Unset): conversion event (default: the journey's goal)
        property_ (None | str | Unset): event property to match
        value (None | str | Unset): the property's value
        days (int | Unset): days after the split Default: 14.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Detail | ErrorList]
    """

    kwargs = _get_kwargs(
        key=key,
        event=event,
        property_=property_,
        value=value,
        days=days,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    key: str,
    *,
    client: AuthenticatedClient,
    event: None | str | Unset = UNSET,
    property_: None | str | Unset = UNSET,
    value: None | str | Unset = UNSET,
    days: int | Unset = 14,
) -> Any | Detail | ErrorList | None:
    """A/B results: per split and variant, entered, sends, opens, clicks, conversions and the test against
    the first variant (z or Fisher, 95 % CI of the difference)

    Args:
        key (str):
        event (None | str | Unset): conversion event (default: the journey's goal)
        property_ (None | str | Unset): event property to match
        value (None | str | Unset): the property's value
        days (int | Unset): days after the split Default: 14.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Detail | ErrorList
    """

    return sync_detailed(
        key=key,
        client=client,
        event=event,
        property_=property_,
        value=value,
        days=days,
    ).parsed


async def asyncio_detailed(
    key: str,
    *,
    client: AuthenticatedClient,
    event: None | str | Unset = UNSET,
    property_: None | str | Unset = UNSET,
    value: None | str | Unset = UNSET,
    days: int | Unset = 14,
) -> Response[Any | Detail | ErrorList]:
    """A/B results: per split and variant, entered, sends, opens, clicks, conversions and the test against
    the first variant (z or Fisher, 95 % CI of the difference)

    Args:
        key (str):
        event (None | str | Unset): conversion event (default: the journey's goal)
        property_ (None | str | Unset): event property to match
        value (None | str | Unset): the property's value
        days (int | Unset): days after the split Default: 14.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Detail | ErrorList]
    """

    kwargs = _get_kwargs(
        key=key,
        event=event,
        property_=property_,
        value=value,
        days=days,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    key: str,
    *,
    client: AuthenticatedClient,
    event: None | str | Unset = UNSET,
    property_: None | str | Unset = UNSET,
    value: None | str | Unset = UNSET,
    days: int | Unset = 14,
) -> Any | Detail | ErrorList | None:
    """A/B results: per split and variant, entered, sends, opens, clicks, conversions and the test against
    the first variant (z or Fisher, 95 % CI of the difference)

    Args:
        key (str):
        event (None | str | Unset): conversion event (default: the journey's goal)
        property_ (None | str | Unset): event property to match
        value (None | str | Unset): the property's value
        days (int | Unset): days after the split Default: 14.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Detail | ErrorList
    """

    return (
        await asyncio_detailed(
            key=key,
            client=client,
            event=event,
            property_=property_,
            value=value,
            days=days,
        )
    ).parsed
