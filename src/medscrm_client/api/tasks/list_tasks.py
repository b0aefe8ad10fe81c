from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...models.list_tasks_response_list_tasks import ListTasksResponseListTasks
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    status: str | Unset = "open",
    assignee: None | str | Unset = UNSET,
    journey: None | str | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["status"] = status

    json_assignee: None | str | Unset
    if isinstance(assignee, Unset):
        json_assignee = UNSET
    else:
        json_assignee = assignee
    params["assignee"] = json_assignee

    json_journey: None | str | Unset
    if isinstance(journey, Unset):
        json_journey = UNSET
    else:
        json_journey = journey
    params["journey"] = json_journey

    params["limit"] = limit

    params["offset"] = offset

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/tasks",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Detail | ErrorList | ListTasksResponseListTasks | None:
    if response.status_code == 200:
        response_200 = ListTasksResponseListTasks.from_dict(response.json())

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
) -> Response[Detail | ErrorList | ListTasksResponseListTasks]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    status: str | Unset = "open",
    assignee: None | str | Unset = UNSET,
    journey: None | str | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Response[Detail | ErrorList | ListTasksResponseListTasks]:
    """Tasks: a rep's own (about their HCPs), or the tenant's for other roles

    Args:
        status (str | Unset): open, done, dismissed, cancelled or all Default: 'open'.
        assignee (None | str | Unset): only this assignee ('' = unassigned)
        journey (None | str | Unset): only tasks of this journey (key)
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | ListTasksResponseListTasks]
    """

    kwargs = _get_kwargs(
        status=status,
        assignee=assignee,
        journey=journey,
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
    status: str | Unset = "open",
    assignee: None | str | Unset = UNSET,
    journey: None | str | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Detail | ErrorList | ListTasksResponseListTasks | None:
    """Tasks: a rep's own (about their HCPs), or the tenant's for other roles

    Args:
        status (str | Unset): open, done, dismissed, cancelled or all Default: 'open'.
        assignee (None | str | Unset): only this assignee ('' = unassigned)
        journey (None | str | Unset): only tasks of this journey (key)
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | ListTasksResponseListTasks
    """

    return sync_detailed(
        client=client,
        status=status,
        assignee=assignee,
        journey=journey,
        limit=limit,
        offset=offset,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    status: str | Unset = "open",
    assignee: None | str | Unset = UNSET,
    journey: None | str | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Response[Detail | ErrorList | ListTasksResponseListTasks]:
    """Tasks: a rep's own (about their HCPs), or the tenant's for other roles

    Args:
        status (str | Unset): open, done, dismissed, cancelled or all Default: 'open'.
        assignee (None | str | Unset): only this assignee ('' = unassigned)
        journey (None | str | Unset): only tasks of this journey (key)
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | ListTasksResponseListTasks]
    """

    kwargs = _get_kwargs(
        status=status,
        assignee=assignee,
        journey=journey,
        limit=limit,
        offset=offset,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    status: str | Unset = "open",
    assignee: None | str | Unset = UNSET,
    journey: None | str | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Detail | ErrorList | ListTasksResponseListTasks | None:
    """Tasks: a rep's own (about their HCPs), or the tenant's for other roles

    Args:
        status (str | Unset): open, done, dismissed, cancelled or all Default: 'open'.
        assignee (None | str | Unset): only this assignee ('' = unassigned)
        journey (None | str | Unset): only tasks of this journey (key)
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | ListTasksResponseListTasks
    """

    return (
        await asyncio_detailed(
            client=client,
            status=status,
            assignee=assignee,
            journey=journey,
            limit=limit,
            offset=offset,
        )
    ).parsed
