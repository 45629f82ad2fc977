from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from mutualcredit.accounts import service as accounts
from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.apidoc import answers
from mutualcredit.auth import service
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.errors import ApiKeyNotFound, LastOperatorKey
from mutualcredit.auth.models import ApiKey, Role
from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.auth.schemas import Key, KeyCreate, KeyCreated, Me
from mutualcredit.db import Session
from mutualcredit.errors import ValidationProblem
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.responses import IdempotencyKey, idempotent

router = APIRouter(route_class=StrictJSONRoute, prefix="/v1", tags=["keys"])


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
@answers(any_key=True)
async def get_me(principal: CurrentPrincipal) -> Me:
    """Any valid key. The calling key's id and role, and the network and account it acts for (none
    for a platform key): what a client reads to learn what its key may do."""
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
@answers(AccountNotFound)
async def create_key(
    network: str,
    body: KeyCreate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Makes a key with a role: `member` (for the
    `account` given, which acts for that account alone), `operator` or `auditor`. The answer holds
    the secret `token`, once: it is stored only as a hash (a replay with the same Idempotency-Key
    answers `token: null`). Refused with 422 when `account` is missing for a member key or given for
    another role, and 404 `account_not_found` for an unknown account."""
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
    """An operator or auditor of the network (or the platform). Every key of the network, revoked
    ones too: id, role, account, label and dates; never a secret."""
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
@answers(ApiKeyNotFound, LastOperatorKey)
async def revoke_key(
    network: str, key_id: str, session: Session, principal: CurrentPrincipal
) -> Key:
    """An operator of the network (or the platform). The key fails from its next request on; the
    revocation is on record. Refused with 404 `api_key_not_found` for a key id the network does not
    have, and 409 `last_operator_key` when an operator key would revoke its network's last active
    operator key (the platform may)."""
    net = await networks.get_network(session, principal, network)
    require_operator(principal)
    key = await service.revoke_key(session, principal, net.id, key_id)
    codes = await accounts.codes_by_id(session, [key.account_id] if key.account_id else [])
    return Key(**_key(key, net.code, codes.get(key.account_id) if key.account_id else None))
