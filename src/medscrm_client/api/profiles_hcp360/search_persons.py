from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...models.search_persons_response_search_persons import (
    SearchPersonsResponseSearchPersons,
)
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    q: None | str | Unset = UNSET,
    hospital: None | str | Unset = UNSET,
    department: None | str | Unset = UNSET,
    person_type: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_q: None | str | Unset
    if isinstance(q, Unset):
        json_q = UNSET
    else:
        json_q = q
    params["q"] = json_q

    json_hospital: None | str | Unset
    if isinstance(hospital, Unset):
        json_hospital = UNSET
    else:
        json_hospital = hospital
    params["hospital"] = json_hospital

    json_department: None | str | Unset
    if isinstance(department, Unset):
        json_department = UNSET
    else:
        json_department = department
    params["department"] = json_department

    json_person_type: None | str | Unset
    if isinstance(person_type, Unset):
        json_person_type = UNSET
    else:
        json_person_type = person_type
    params["person_type"] = json_person_type

    params["limit"] = limit

    params["offset"] = offset

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/persons",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Detail | ErrorList | SearchPersonsResponseSearchPersons | None:
    if response.status_code == 200:
        response_200 = SearchPersonsResponseSearchPersons.from_dict(response.json())

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
) -> Response[Detail | ErrorList | SearchPersonsResponseSearchPersons]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    q: None | str | Unset = UNSET,
    hospital: None | str | Unset = UNSET,
    department: None | str | Unset = UNSET,
    person_type: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> Response[Detail | ErrorList | SearchPersonsResponseSearchPersons]:
    """Search persons by name, hospital, department

    Args:
        q (None | str | Unset):
        hospital (None | str | Unset):
        department (None | str | Unset):
        person_type (None | str | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | SearchPersonsResponseSearchPersons]
    """

    kwargs = _get_kwargs(
        q=q,
        hospital=hospital,
        department=department,
        person_type=person_type,
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
    q: None | str | Unset = UNSET,
    hospital: None | str | Unset = UNSET,
    department: None | str | Unset = UNSET,
    person_type: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> Detail | ErrorList | SearchPersonsResponseSearchPersons | None:
    """Search persons by name, hospital, department

    Args:
        q (None | str | Unset):
        hospital (None | str | Unset):
        department (None | str | Unset):
        person_type (None | str | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | SearchPersonsResponseSearchPersons
    """

    return sync_detailed(
        client=client,
        q=q,
        hospital=hospital,
        department=department,
        person_type=person_type,
        limit=limit,
        offset=offset,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    q: None | str | Unset = UNSET,
    hospital: None | str | Unset = UNSET,
    department: None | str | Unset = UNSET,
    person_type: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> Response[Detail | ErrorList | SearchPersonsResponseSearchPersons]:
    """Search persons by name, hospital, department

    Args:
        q (None | str | Unset):
        hospital (None | str | Unset):
        department (None | str | Unset):
        person_type (None | str | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | SearchPersonsResponseSearchPersons]
    """

    kwargs = _get_kwargs(
        q=q,
        hospital=hospital,
        department=department,
        person_type=person_type,
        limit=limit,
        offset=offset,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    q: None | str | Unset = UNSET,
    hospital: None | str | Unset = UNSET,
    department: None | str | Unset = UNSET,
    person_type: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> Detail | ErrorList | SearchPersonsResponseSearchPersons | None:
    """Search persons by name, hospital, department

    Args:
        q (None | str | Unset):
        hospital (None | str | Unset):
        department (None | str | Unset):
        person_type (None | str | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset): Rows to skip (paging) Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | SearchPersonsResponseSearchPersons
    """

    return (
        await asyncio_detailed(
            client=client,
            q=q,
            hospital=hospital,
            department=department,
            person_type=person_type,
            limit=limit,
            offset=offset,
        )
    ).parsed
