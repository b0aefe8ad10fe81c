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
    journey: None | str | Unset = UNSET,
    person: None | str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_journey: None | str | Unset
    if isinstance(journey, Unset):
        json_journey = UNSET
    else:
        json_journey = journey
    params["journey"] = json_journey

    json_person: None | str | Unset
    if isinstance(person, Unset):
        json_person = UNSET
    else:
        json_person = person
    params["person"] = json_person

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/compliance/sends.csv",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Detail | ErrorList | str | None:
    if response.status_code == 200:
        response_200 = response.text
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
) -> Response[Detail | ErrorList | str]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    journey: None | str | Unset = UNSET,
    person: None | str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Response[Detail | ErrorList | str]:
    """Proof of every send as CSV (formula-safe; audited)

    Args:
        journey (None | str | Unset): journey key (or id): the journey's sends
        person (None | str | Unset): person id: the person's sends
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | str]
    """

    kwargs = _get_kwargs(
        journey=journey,
        person=person,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    journey: None | str | Unset = UNSET,
    person: None | str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Detail | ErrorList | str | None:
    """Proof of every send as CSV (formula-safe; audited)

    Args:
        journey (None | str | Unset): journey key (or id): the journey's sends
        person (None | str | Unset): person id: the person's sends
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | str
    """

    return sync_detailed(
        client=client,
        journey=journey,
        person=person,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    journey: None | str | Unset = UNSET,
    person: None | str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Response[Detail | ErrorList | str]:
    """Proof of every send as CSV (formula-safe; audited)

    Args:
        journey (None | str | Unset): journey key (or id): the journey's sends
        person (None | str | Unset): person id: the person's sends
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | str]
    """

    kwargs = _get_kwargs(
        journey=journey,
        person=person,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    journey: None | str | Unset = UNSET,
    person: None | str | Unset = UNSET,
    limit: int | Unset = 1000,
) -> Detail | ErrorList | str | None:
    """Proof of every send as CSV (formula-safe; audited)

    Args:
        journey (None | str | Unset): journey key (or id): the journey's sends
        person (None | str | Unset): person id: the person's sends
        limit (int | Unset):  Default: 1000.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | str
    """

    return (
        await asyncio_detailed(
            client=client,
            journey=journey,
            person=person,
            limit=limit,
        )
    ).parsed
