from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...models.list_quarantine_response_200_item import ListQuarantineResponse200Item
from ...models.list_quarantine_status import ListQuarantineStatus
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    status: ListQuarantineStatus | Unset = ListQuarantineStatus.OPEN,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_status: str | Unset = UNSET
    if not isinstance(status, Unset):
        json_status = status.value

    params["status"] = json_status

    params["limit"] = limit

    params["offset"] = offset

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/quarantine",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Detail | ErrorList | list[ListQuarantineResponse200Item] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in _response_200:
            response_200_item = ListQuarantineResponse200Item.from_dict(
                response_200_item_data
            )

            response_200.append(response_200_item)

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
) -> Response[Detail | ErrorList | list[ListQuarantineResponse200Item]]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    status: ListQuarantineStatus | Unset = ListQuarantineStatus.OPEN,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Response[Detail | ErrorList | list[ListQuarantineResponse200Item]]:
    """Quarantined input with reasons

    Args:
        status (ListQuarantineStatus | Unset): all: any status Default: ListQuarantineStatus.OPEN.
        limit (int | Unset):  Default: 100.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | list[ListQuarantineResponse200Item]]
    """

    kwargs = _get_kwargs(
        status=status,
        limit=limit,
        offset=offset,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    status: ListQuarantineStatus | Unset = ListQuarantineStatus.OPEN,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Detail | ErrorList | list[ListQuarantineResponse200Item] | None:
    """Quarantined input with reasons

    Args:
        status (ListQuarantineStatus | Unset): all: any status Default: ListQuarantineStatus.OPEN.
        limit (int | Unset):  Default: 100.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | list[ListQuarantineResponse200Item]
    """

    return sync_detailed(
        client=client,
        status=status,
        limit=limit,
        offset=offset,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    status: ListQuarantineStatus | Unset = ListQuarantineStatus.OPEN,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Response[Detail | ErrorList | list[ListQuarantineResponse200Item]]:
    """Quarantined input with reasons

    Args:
        status (ListQuarantineStatus | Unset): all: any status Default: ListQuarantineStatus.OPEN.
        limit (int | Unset):  Default: 100.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | list[ListQuarantineResponse200Item]]
    """

    kwargs = _get_kwargs(
        status=status,
        limit=limit,
        offset=offset,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    status: ListQuarantineStatus | Unset = ListQuarantineStatus.OPEN,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Detail | ErrorList | list[ListQuarantineResponse200Item] | None:
    """Quarantined input with reasons

    Args:
        status (ListQuarantineStatus | Unset): all: any status Default: ListQuarantineStatus.OPEN.
        limit (int | Unset):  Default: 100.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | list[ListQuarantineResponse200Item]
    """

    return (
        await asyncio_detailed(
            client=client,
            status=status,
            limit=limit,
            offset=offset,
        )
    ).parsed
