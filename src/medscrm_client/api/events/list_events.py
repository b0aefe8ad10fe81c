import datetime
from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...models.list_events_response_list_events import ListEventsResponseListEvents
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    person_id: None | str | Unset = UNSET,
    user_id: None | str | Unset = UNSET,
    type_: None | str | Unset = UNSET,
    event: None | str | Unset = UNSET,
    since: datetime.datetime | None | Unset = UNSET,
    before: datetime.datetime | None | Unset = UNSET,
    limit: int | Unset = 100,
    cursor: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_person_id: None | str | Unset
    if isinstance(person_id, Unset):
        json_person_id = UNSET
    else:
        json_person_id = person_id
    params["person_id"] = json_person_id

    json_user_id: None | str | Unset
    if isinstance(user_id, Unset):
        json_user_id = UNSET
    else:
        json_user_id = user_id
    params["user_id"] = json_user_id

    json_type_: None | str | Unset
    if isinstance(type_, Unset):
        json_type_ = UNSET
    else:
        json_type_ = type_
    params["type"] = json_type_

    json_event: None | str | Unset
    if isinstance(event, Unset):
        json_event = UNSET
    else:
        json_event = event
    params["event"] = json_event

    json_since: None | str | Unset
    if isinstance(since, Unset):
        json_since = UNSET
    elif isinstance(since, datetime.datetime):
        json_since = since.isoformat()
    else:
        json_since = since
    params["since"] = json_since

    json_before: None | str | Unset
    if isinstance(before, Unset):
        json_before = UNSET
    elif isinstance(before, datetime.datetime):
        json_before = before.isoformat()
    else:
        json_before = before
    params["before"] = json_before

    params["limit"] = limit

    json_cursor: None | str | Unset
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/events",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Detail | ErrorList | ListEventsResponseListEvents | None:
    if response.status_code == 200:
        response_200 = ListEventsResponseListEvents.from_dict(response.json())

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
) -> Response[Detail | ErrorList | ListEventsResponseListEvents]:
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
    user_id: None | str | Unset = UNSET,
    type_: None | str | Unset = UNSET,
    event: None | str | Unset = UNSET,
    since: datetime.datetime | None | Unset = UNSET,
    before: datetime.datetime | None | Unset = UNSET,
    limit: int | Unset = 100,
    cursor: None | str | Unset = UNSET,
) -> Response[Detail | ErrorList | ListEventsResponseListEvents]:
    """Stored events, newest first

    Args:
        person_id (None | str | Unset):
        user_id (None | str | Unset):
        type_ (None | str | Unset): track, identify, page, screen, group, alias
        event (None | str | Unset): event name, e.g. Webinar Attended
        since (datetime.datetime | None | Unset): ISO-8601; events at or after
        before (datetime.datetime | None | Unset): ISO-8601; events before (page with `cursor`
            instead)
        limit (int | Unset):  Default: 100.
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | ListEventsResponseListEvents]
    """

    kwargs = _get_kwargs(
        person_id=person_id,
        user_id=user_id,
        type_=type_,
        event=event,
        since=since,
        before=before,
        limit=limit,
        cursor=cursor,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    person_id: None | str | Unset = UNSET,
    user_id: None | str | Unset = UNSET,
    type_: None | str | Unset = UNSET,
    event: None | str | Unset = UNSET,
    since: datetime.datetime | None | Unset = UNSET,
    before: datetime.datetime | None | Unset = UNSET,
    limit: int | Unset = 100,
    cursor: None | str | Unset = UNSET,
) -> Detail | ErrorList | ListEventsResponseListEvents | None:
    """Stored events, newest first

    Args:
        person_id (None | str | Unset):
        user_id (None | str | Unset):
        type_ (None | str | Unset): track, identify, page, screen, group, alias
        event (None | str | Unset): event name, e.g. Webinar Attended
        since (datetime.datetime | None | Unset): ISO-8601; events at or after
        before (datetime.datetime | None | Unset): ISO-8601; events before (page with `cursor`
            instead)
        limit (int | Unset):  Default: 100.
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | ListEventsResponseListEvents
    """

    return sync_detailed(
        client=client,
        person_id=person_id,
        user_id=user_id,
        type_=type_,
        event=event,
        since=since,
        before=before,
        limit=limit,
        cursor=cursor,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    person_id: None | str | Unset = UNSET,
    user_id: None | str | Unset = UNSET,
    type_: None | str | Unset = UNSET,
    event: None | str | Unset = UNSET,
    since: datetime.datetime | None | Unset = UNSET,
    before: datetime.datetime | None | Unset = UNSET,
    limit: int | Unset = 100,
    cursor: None | str | Unset = UNSET,
) -> Response[Detail | ErrorList | ListEventsResponseListEvents]:
    """Stored events, newest first

    Args:
        person_id (None | str | Unset):
        user_id (None | str | Unset):
        type_ (None | str | Unset): track, identify, page, screen, group, alias
        event (None | str | Unset): event name, e.g. Webinar Attended
        since (datetime.datetime | None | Unset): ISO-8601; events at or after
        before (datetime.datetime | None | Unset): ISO-8601; events before (page with `cursor`
            instead)
        limit (int | Unset):  Default: 100.
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | ListEventsResponseListEvents]
    """

    kwargs = _get_kwargs(
        person_id=person_id,
        user_id=user_id,
        type_=type_,
        event=event,
        since=since,
        before=before,
        limit=limit,
        cursor=cursor,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    person_id: None | str | Unset = UNSET,
    user_id: None | str | Unset = UNSET,
    type_: None | str | Unset = UNSET,
    event: None | str | Unset = UNSET,
    since: datetime.datetime | None | Unset = UNSET,
    before: datetime.datetime | None | Unset = UNSET,
    limit: int | Unset = 100,
    cursor: None | str | Unset = UNSET,
) -> Detail | ErrorList | ListEventsResponseListEvents | None:
    """Stored events, newest first

    Args:
        person_id (None | str | Unset):
        user_id (None | str | Unset):
        type_ (None | str | Unset): track, identify, page, screen, group, alias
        event (None | str | Unset): event name, e.g. Webinar Attended
        since (datetime.datetime | None | Unset): ISO-8601; events at or after
        before (datetime.datetime | None | Unset): ISO-8601; events before (page with `cursor`
            instead)
        limit (int | Unset):  Default: 100.
        cursor (None | str | Unset): `next_cursor` of the previous page

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | ListEventsResponseListEvents
    """

    return (
        await asyncio_detailed(
            client=client,
            person_id=person_id,
            user_id=user_id,
            type_=type_,
            event=event,
            since=since,
            before=before,
            limit=limit,
            cursor=cursor,
        )
    ).parsed
