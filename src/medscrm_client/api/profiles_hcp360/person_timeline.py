import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...models.person_timeline_response_person_timeline import (
    PersonTimelineResponsePersonTimeline,
)
from ...types import UNSET, Response, Unset


def _get_kwargs(
    person_id: str,
    *,
    limit: int | Unset = 50,
    before: datetime.datetime | None | Unset = UNSET,
    cursor: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    json_before: None | str | Unset
    if isinstance(before, Unset):
        json_before = UNSET
    elif isinstance(before, datetime.datetime):
        json_before = before.isoformat()
    else:
        json_before = before
    params["before"] = json_before

    json_cursor: None | str | Unset
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/persons/{person_id}/timeline".format(
            person_id=quote(str(person_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Detail | ErrorList | PersonTimelineResponsePersonTimeline | None:
    if response.status_code == 200:
        response_200 = PersonTimelineResponsePersonTimeline.from_dict(response.json())

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
) -> Response[Detail | ErrorList | PersonTimelineResponsePersonTimeline]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    person_id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    before: datetime.datetime | None | Unset = UNSET,
    cursor: None | str | Unset = UNSET,
) -> Response[Detail | ErrorList | PersonTimelineResponsePersonTimeline]:
    """The person's events, newest first (page with `cursor`)

    Args:
        person_id (str):
        limit (int | Unset):  Default: 50.
        before (datetime.datetime | None | Unset):
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | PersonTimelineResponsePersonTimeline]
    """

    kwargs = _get_kwargs(
        person_id=person_id,
        limit=limit,
        before=before,
        cursor=cursor,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    person_id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    before: datetime.datetime | None | Unset = UNSET,
    cursor: None | str | Unset = UNSET,
) -> Detail | ErrorList | PersonTimelineResponsePersonTimeline | None:
    """The person's events, newest first (page with `cursor`)

    Args:
        person_id (str):
        limit (int | Unset):  Default: 50.
        before (datetime.datetime | None | Unset):
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | PersonTimelineResponsePersonTimeline
    """

    return sync_detailed(
        person_id=person_id,
        client=client,
        limit=limit,
        before=before,
        cursor=cursor,
    ).parsed


async def asyncio_detailed(
    person_id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    before: datetime.datetime | None | Unset = UNSET,
    cursor: None | str | Unset = UNSET,
) -> Response[Detail | ErrorList | PersonTimelineResponsePersonTimeline]:
    """The person's events, newest first (page with `cursor`)

    Args:
        person_id (str):
        limit (int | Unset):  Default: 50.
        before (datetime.datetime | None | Unset):
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | PersonTimelineResponsePersonTimeline]
    """

    kwargs = _get_kwargs(
        person_id=person_id,
        limit=limit,
        before=before,
        cursor=cursor,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    person_id: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 50,
    before: datetime.datetime | None | Unset = UNSET,
    cursor: None | str | Unset = UNSET,
) -> Detail | ErrorList | PersonTimelineResponsePersonTimeline | None:
    """The person's events, newest first (page with `cursor`)

    Args:
        person_id (str):
        limit (int | Unset):  Default: 50.
        before (datetime.datetime | None | Unset):
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | PersonTimelineResponsePersonTimeline
    """

    return (
        await asyncio_detailed(
            person_id=person_id,
            client=client,
            limit=limit,
            before=before,
            cursor=cursor,
        )
    ).parsed
