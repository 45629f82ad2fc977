from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from mutualcredit.accounts import service as accounts
from mutualcredit.auth import service
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.models import ApiKey, Role
from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.auth.schemas import Key, KeyCreate, KeyCreated, Me
from mutualcredit.db import Session
from mutualcredit.errors import ValidationProblem
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import PROBLEM_RESPONSES

router = APIRouter(
    route_class=StrictJSONRoute, prefix="/v1", tags=["keys"], responses=PROBLEM_RESPONSES
)


def _key(key: ApiKey, network: str | None, account: str | None) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "role": key.role,
        "network": network,
        "account": account,
        "label": key.label,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@router.get("/me", response_model=Me, summary="Who am I: the calling key's role and scope")
async def me(principal: CurrentPrincipal) -> Me:
    return Me(
        key_id=principal.key_id,
        role=principal.role,
        network=principal.network_code,
        account=principal.account_code,
    )


@router.post(
    "/networks/{network}/keys",
    status_code=201,
    response_model=KeyCreated,
    summary="Create an API key for a member account or an operator of the network",
)
async def create_key(
    network: str,
    body: KeyCreate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    net = await networks.get_network(session, principal, network)
    require_operator(principal)
    if (body.role == "member") != (body.account is not None):  # operators and auditors: none
        raise ValidationProblem("account: required for a member key, and only for one")

    async def write() -> KeyCreated:
        account_id = None
        if body.account is not None:
            account_id = (await accounts.get_account(session, net.id, body.account)).id
        key, token = await service.create_key(
            session,
            role=Role(body.role),
            network_id=net.id,
            account_id=account_id,
            label=body.label,
        )
        return KeyCreated(**_key(key, net.code, body.account), token=token)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"create_key:{net.code}",
        payload=body.model_dump(mode="json"),
        status_code=201,
        write=write,
        # The secret exists only in the first response; the stored replay never holds it.
        secret_fields=("token",),
    )


@router.get("/networks/{network}/keys", response_model=list[Key], summary="List the network's keys")
async def list_keys(network: str, session: Session, principal: CurrentPrincipal) -> list[Key]:
    net = await networks.get_network(session, principal, network)
    require_reader(principal)
    keys = await service.list_keys(session, net.id)
    codes = await accounts.codes_by_id(session, [k.account_id for k in keys if k.account_id])
    return [
        Key(**_key(k, net.code, codes.get(k.account_id) if k.account_id else None)) for k in keys
    ]


@router.post(
    "/networks/{network}/keys/{key_id}/revoke",
    response_model=Key,
    summary="Revoke a key: it fails from the next request on",
)
async def revoke_key(
    network: str, key_id: str, session: Session, principal: CurrentPrincipal
) -> Key:
    net = await networks.get_network(session, principal, network)
    require_operator(principal)
    key = await service.revoke_key(session, principal, net.id, key_id)
    codes = await accounts.codes_by_id(session, [key.account_id] if key.account_id else [])
    return Key(**_key(key, net.code, codes.get(key.account_id) if key.account_id else None))
