from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detail import Detail
from ...models.error_list import ErrorList
from ...models.policy import Policy
from ...models.policy_in import PolicyIn
from ...models.set_retention_policy_category import SetRetentionPolicyCategory
from ...types import Response


def _get_kwargs(
    category: SetRetentionPolicyCategory,
    *,
    body: PolicyIn,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/api/v1/retention/policies/{category}".format(
            category=quote(str(category), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Detail | ErrorList | Policy | None:
    if response.status_code == 200:
        response_200 = Policy.from_dict(response.json())

        return response_200

    if response.status_code == 400:

        def _parse_response_400(data: object) -> Detail | ErrorList:
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

        response_400 = _parse_response_400(response.json())

        return response_400

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
) -> Response[Detail | ErrorList | Policy]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    category: SetRetentionPolicyCategory,
    *,
    client: AuthenticatedClient,
    body: PolicyIn,
) -> Response[Detail | ErrorList | Policy]:
    """Change a category's retention policy (audited; refused below a legal floor)

    Args:
        category (SetRetentionPolicyCategory): The data category
        body (PolicyIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | Policy]
    """

    kwargs = _get_kwargs(
        category=category,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    category: SetRetentionPolicyCategory,
    *,
    client: AuthenticatedClient,
    body: PolicyIn,
) -> Detail | ErrorList | Policy | None:
    """Change a category's retention policy (audited; refused below a legal floor)

    Args:
        category (SetRetentionPolicyCategory): The data category
        body (PolicyIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | Policy
    """

    return sync_detailed(
        category=category,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    category: SetRetentionPolicyCategory,
    *,
    client: AuthenticatedClient,
    body: PolicyIn,
) -> Response[Detail | ErrorList | Policy]:
    """Change a category's retention policy (audited; refused below a legal floor)

    Args:
        category (SetRetentionPolicyCategory): The data category
        body (PolicyIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Detail | ErrorList | Policy]
    """

    kwargs = _get_kwargs(
        category=category,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    category: SetRetentionPolicyCategory,
    *,
    client: AuthenticatedClient,
    body: PolicyIn,
) -> Detail | ErrorList | Policy | None:
    """Change a category's retention policy (audited; refused below a legal floor)

    Args:
        category (SetRetentionPolicyCategory): The data category
        body (PolicyIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Detail | ErrorList | Policy
    """

    return (
        await asyncio_detailed(
            category=category,
            client=client,
            body=body,
        )
    ).parsed
