from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    person_id: None | str | Unset = UNSET,
    status: None | str | Unset = UNSET,
    content_id: None | str | Unset = UNSET,
    origin: None | str | Unset = UNSET,
    limit: int | Unset = 100,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_person_id: None | str | Unset
    if isinstance(person_id, Unset):
        json_person_id = UNSET
    else:
        json_person_id = person_id
    params["person_id"] = json_person_id

    json_status: None | str | Unset
    if isinstance(status, Unset):
        json_status = UNSET
    else:
        json_status = status
    params["status"] = json_status

    json_content_id: None | str | Unset
    if isinstance(content_id, Unset):
        json_content_id = UNSET
    else:
        json_content_id = content_id
    params["content_id"] = json_content_id

    json_origin: None | str | Unset
    if isinstance(origin, Unset):
        json_origin = UNSET
    else:
        json_origin = origin
    params["origin"] = json_origin

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/sends",
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
    *,
    client: AuthenticatedClient,
    person_id: None | str | Unset = UNSET,
    status: None | str | Unset = UNSET,
    content_id: None | str | Unset = UNSET,
    origin: None | str | Unset = UNSET,
    limit: int | Unset = 100,
) -> Response[Any | Detail | ErrorList]:
    """The outbox: sends with status, reason, attempts and the provider's error

    Args:
        person_id (None | str | Unset):
        status (None | str | Unset):
        content_id (None | str | Unset):
        origin (None | str | Unset): origin prefix, e.g. journey:jr_123
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Detail | ErrorList]
    """

    kwargs = _get_kwargs(
        person_id=person_id,
        status=status,
        content_id=content_id,
        origin=origin,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    person_id: None | str | Unset = UNSET,
    status: None | str | Unset = UNSET,
    content_id: None | str | Unset = UNSET,
    origin: None | str | Unset = UNSET,
    limit: int | Unset = 100,
) -> Any | Detail | ErrorList | None:
    """The outbox: sends with status, reason, attempts and the provider's error

    Args:
        person_id (None | str | Unset):
        status (None | str | Unset):
        content_id (None | str | Unset):
        origin (None | str | Unset): origin prefix, e.g. journey:jr_123
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Detail | ErrorList
    """

    return sync_detailed(
        client=client,
        person_id=person_id,
        status=status,
        content_id=content_id,
        origin=origin,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    person_id: None | str | Unset = UNSET,
    status: None | str | Unset = UNSET,
    content_id: None | str | Unset = UNSET,
    origin: None | str | Unset = UNSET,
    limit: int | Unset = 100,
) -> Response[Any | Detail | ErrorList]:
    """The outbox: sends with status, reason, attempts and the provider's error

    Args:
        person_id (None | str | Unset):
        status (None | str | Unset):
        content_id (None | str | Unset):
        origin (None | str | Unset): origin prefix, e.g. journey:jr_123
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Detail | ErrorList]
    """

    kwargs = _get_kwargs(
        person_id=person_id,
        status=status,
        content_id=content_id,
        origin=origin,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    person_id: None | str | Unset = UNSET,
    status: None | str | Unset = UNSET,
    content_id: None | str | Unset = UNSET,
    origin: None | str | Unset = UNSET,
    limit: int | Unset = 100,
) -> Any | Detail | ErrorList | None:
    """The outbox: sends with status, reason, attempts and the provider's error

    Args:
        person_id (None | str | Unset):
        status (None | str | Unset):
        content_id (None | str | Unset):
        origin (None | str | Unset): origin prefix, e.g. journey:jr_123
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Detail | ErrorList
    """

    return (
        await asyncio_detailed(
            client=client,
            person_id=person_id,
            status=status,
            content_id=content_id,
            origin=origin,
            limit=limit,
        )
    ).parsed
