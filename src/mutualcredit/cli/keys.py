"""Commands for networks and keys: create-network, create-key, list-keys, revoke-key. Each
writes in one transaction that names the command as the actor of its audit records."""

import argparse
from typing import TYPE_CHECKING, Any

from mutualcredit.cli.common import (
    EXIT_OK,
    CommandError,
    actor,
    print_json,
    require_schema,
    resolve_database,
    run,
    transaction,
)
from mutualcredit.config import Settings

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

    from mutualcredit.networks.schemas import NetworkCreate


def _network_create(args: argparse.Namespace) -> "NetworkCreate":
    """The request, checked by the API's own rules before the database is touched."""
    from mutualcredit.networks.schemas import NetworkCreate

    return NetworkCreate(
        code=args.code,
        name=args.name,
        unit_name=args.unit_name,
        unit_symbol=args.unit_symbol,
        scale=args.scale,
        default_credit_limit=args.default_credit_limit,
        default_balance_max=args.default_balance_max,
    )


async def _create_network(
    url: str, args: argparse.Namespace, data: "NetworkCreate"
) -> dict[str, Any]:
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role
    from mutualcredit.networks import service as networks

    async with transaction(url, actor(args)) as session:
        network = await networks.create_network(session, data)
        result: dict[str, Any] = {"network": network.code, "id": str(network.id)}
        if not args.no_key:
            key, token = await keys.create_key(
                session, role=Role.operator, network_id=network.id, label=args.label
            )
            result["key_id"] = key.key_id
            result["operator_key"] = token
        return result


def cmd_create_network(args: argparse.Namespace, settings: Settings) -> int:
    data = _network_create(args)
    url, _ = resolve_database(settings)
    require_schema(url)
    print_json(run(_create_network(url, args, data)))
    return EXIT_OK


async def _network_id(session: "AsyncSession", code: str) -> "uuid.UUID":
    from sqlalchemy import select

    from mutualcredit.networks.errors import NetworkNotFound
    from mutualcredit.networks.models import Network

    network_id: uuid.UUID | None = await session.scalar(
        select(Network.id).where(Network.code == code)
    )
    if network_id is None:
        raise NetworkNotFound(f"no network {code!r}")
    return network_id


def _check_key_options(args: argparse.Namespace) -> None:
    """Each role has its scope (api_keys_role_scope_check): say which option is missing or
    does not belong, rather than guess."""
    from mutualcredit.auth.schemas import KeyCreate

    role = args.role
    if role == "platform" and args.network:
        raise CommandError("a platform key belongs to no network: leave out --network")
    if role != "platform" and not args.network:
        raise CommandError("--network is required for operator, auditor and member keys")
    if role == "member" and not args.account:
        raise CommandError("--account is required for a member key")
    if role != "member" and args.account:
        raise CommandError(f"--account is only for a member key, not for a {role} key")
    # The API's own rules for an account code and a label. A platform key (which the API
    # cannot create) has no account, and its label follows the same rule.
    KeyCreate(
        role="operator" if role == "platform" else role, account=args.account, label=args.label
    )


async def _create_key(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from mutualcredit.accounts import service as accounts
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role

    role = Role(args.role)
    async with transaction(url, actor(args)) as session:
        network_id = account_id = None
        if args.network:
            network_id = await _network_id(session, args.network)
        if args.account:
            assert network_id is not None  # _check_key_options: an account comes with a network
            account_id = (await accounts.get_account(session, network_id, args.account)).id
        key, token = await keys.create_key(
            session, role=role, network_id=network_id, account_id=account_id, label=args.label
        )
        return {
            "key_id": key.key_id,
            "role": role.value,
            "network": args.network,
            "account": args.account,
            "token": token,
        }


def cmd_create_key(args: argparse.Namespace, settings: Settings) -> int:
    _check_key_options(args)
    url, _ = resolve_database(settings)
    require_schema(url)
    print_json(run(_create_key(url, args)))
    return EXIT_OK


async def _list_keys(url: str, network: str | None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from mutualcredit.accounts.models import Account
    from mutualcredit.auth.models import ApiKey
    from mutualcredit.auth.schemas import Key
    from mutualcredit.networks.models import Network

    async with transaction(url, "cli:list-keys") as session:
        query = (
            select(ApiKey, Network.code, Account.code)
            .outerjoin(Network, Network.id == ApiKey.network_id)
            .outerjoin(Account, Account.id == ApiKey.account_id)
            .order_by(ApiKey.created_at, ApiKey.key_id)
        )
        if network is not None:
            query = query.where(ApiKey.network_id == await _network_id(session, network))
        rows = (await session.execute(query)).all()
    return [
        Key(
            key_id=key.key_id,
            role=key.role,
            network=network_code,
            account=account_code,
            label=key.label,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        ).model_dump(mode="json")
        for key, network_code, account_code in rows
    ]


def cmd_list_keys(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    print_json(run(_list_keys(url, args.network)))
    return EXIT_OK


async def _revoke_key(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select

    from mutualcredit.audit.context import explain
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.errors import ApiKeyNotFound
    from mutualcredit.auth.models import ApiKey

    async with transaction(url, actor(args)) as session:
        network_id = (
            await session.execute(select(ApiKey.network_id).where(ApiKey.key_id == args.key_id))
        ).one_or_none()
        if network_id is None:
            raise ApiKeyNotFound(f"no key {args.key_id!r} (see 'mutualcredit list-keys')")
        await explain(session, args.reason)
        key = await keys.revoke_key(session, None, network_id[0], args.key_id)
        assert key.revoked_at is not None
        return {"key_id": key.key_id, "role": key.role, "revoked_at": key.revoked_at.isoformat()}


def cmd_revoke_key(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    print_json(run(_revoke_key(url, args)))
    return EXIT_OK
