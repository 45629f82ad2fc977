"""SQL only: the sealed audit records that become events, and the rows they are about.

Records are read by their chain `seq` (unique per network, `audit_log_network_id_seq_key`), which
the sealer assigns after commit, in the order it finds records committed: see service.py.

Rows are looked up by a list of ids as `= ANY(:ids)`, one array parameter, not `IN (:id1, ...)`:
the statement's text is then the same whatever the number of ids, so asyncpg's prepared
statement and PostgreSQL's plan are reused from one read to the next.

Webhook endpoints are read here as a table (WEBHOOK_ENDPOINTS), not through the webhooks
package's model: webhooks delivers events and sits above this package (the import contract
"domains"), while an event about an endpoint (`webhook.disabled`) still needs its row."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Row,
    Text,
    Uuid,
    any_,
    bindparam,
    case,
    cast,
    column,
    exists,
    false,
    or_,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts.models import Account
from mutualcredit.audit.models import AuditRecord
from mutualcredit.federation.models import Link, Settlement, Transfer
from mutualcredit.fees.models import FeeCharge, FeeRule
from mutualcredit.networks.models import Network
from mutualcredit.requests.models import PaymentRequest
from mutualcredit.trades.models import Entry, Trade

WEBHOOK_ENDPOINTS = table(
    "webhook_endpoints",
    column("id", Uuid),
    column("url", Text),
    column("description", Text),
    column("account", Text),
    column("member_account", Text),
)


def _one_of(ids: Sequence[Any], item: Uuid[Any] | BigInteger) -> Any:
    """`= ANY(...)` of this: the ids as one array parameter."""
    return any_(bindparam(None, list(ids), type_=ARRAY(item)))


async def sealed_records(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    after: int,
    actions: Sequence[str],
    account_id: uuid.UUID | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Sealed records of `actions` after `after`, in seq order; those about `account_id` only,
    if given (the account itself, its trades and requests, the transfers of its trades)."""
    query = select(
        AuditRecord.seq,
        AuditRecord.occurred_at,
        AuditRecord.actor,
        AuditRecord.action,
        AuditRecord.subject_type,
        AuditRecord.subject_id,
        AuditRecord.before,
        AuditRecord.after,
    ).where(
        AuditRecord.network_id == network_id,
        AuditRecord.seq > after,
        AuditRecord.action.in_(actions),
    )
    if account_id is not None:
        query = query.where(_about(account_id))
    return (await session.execute(query.order_by(AuditRecord.seq).limit(limit))).all()


def _about(account_id: uuid.UUID) -> ColumnElement[bool]:
    """The record is about the account. Checked per record, by primary key, so that a read
    costs what it scans of the log after its cursor, not the account's whole history (a long
    poll repeats it every fraction of a second). The CASE casts a subject id only for its own
    subject type."""
    subject = AuditRecord.subject_id
    parties = or_(Trade.payer_id == account_id, Trade.payee_id == account_id)
    trade = exists().where(Trade.id == cast(subject, Uuid), parties).correlate(AuditRecord)
    request = (
        exists()
        .where(
            PaymentRequest.id == cast(subject, Uuid),
            or_(PaymentRequest.payer_id == account_id, PaymentRequest.payee_id == account_id),
        )
        .correlate(AuditRecord)
    )
    transfer = (
        exists()
        .where(Transfer.id == cast(subject, BigInteger), Trade.id == Transfer.trade_id, parties)
        .correlate(AuditRecord)
    )
    code = select(Account.code).where(Account.id == account_id).scalar_subquery()
    endpoint = (
        exists()
        .where(
            WEBHOOK_ENDPOINTS.c.id == cast(subject, Uuid),
            WEBHOOK_ENDPOINTS.c.member_account == code,
        )
        .correlate(AuditRecord)
    )
    return case(
        (AuditRecord.subject_type == "account", subject == str(account_id)),
        (AuditRecord.subject_type == "webhook_endpoint", endpoint),
        (AuditRecord.subject_type == "trade", trade),
        (AuditRecord.subject_type == "payment_request", request),
        (AuditRecord.subject_type == "transfer", transfer),
        else_=false(),
    )


async def trades(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Trade]:
    if not ids:
        return {}
    rows = await session.scalars(select(Trade).where(Trade.id == _one_of(ids, Uuid())))
    return {t.id: t for t in rows}


async def balances_after(
    session: AsyncSession, trade_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[uuid.UUID, int]]:
    """Each posted trade's entries: the balance of each of its accounts just after it."""
    if not trade_ids:
        return {}
    rows = await session.execute(
        select(Entry.trade_id, Entry.account_id, Entry.balance_after).where(
            Entry.trade_id == _one_of(trade_ids, Uuid())
        )
    )
    found: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    for row in rows:
        found.setdefault(row.trade_id, {})[row.account_id] = row.balance_after
    return found


async def fee_charges(
    session: AsyncSession, trade_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The charge each fee trade booked, with its rule's code and kind (by the unique
    fee_charges (trade_id))."""
    if not trade_ids:
        return {}
    rows = await session.execute(
        select(
            FeeCharge.trade_id,
            FeeRule.code.label("rule"),
            FeeRule.kind,
            FeeCharge.cause_trade_id,
            FeeCharge.due_at,
            FeeCharge.waived,
            FeeCharge.past_limit,
        )
        .join(FeeRule, FeeRule.id == FeeCharge.rule_id)
        .where(FeeCharge.trade_id == _one_of(trade_ids, Uuid()))
    )
    return {row.trade_id: row._asdict() for row in rows}


async def requests(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, PaymentRequest]:
    if not ids:
        return {}
    rows = await session.scalars(
        select(PaymentRequest).where(PaymentRequest.id == _one_of(ids, Uuid()))
    )
    return {r.id: r for r in rows}


async def transfers(session: AsyncSession, ids: Sequence[int]) -> dict[int, Transfer]:
    if not ids:
        return {}
    rows = await session.scalars(select(Transfer).where(Transfer.id == _one_of(ids, BigInteger())))
    return {t.id: t for t in rows}


async def settlements(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Settlement, str]]:
    """Each settlement with the code of its link's account."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Settlement, Account.code)
        .join(Link, Link.id == Settlement.link_id)
        .join(Account, Account.id == Link.account_id)
        .where(Settlement.id == _one_of(ids, Uuid()))
    )
    return {s.id: (s, code) for s, code in rows.tuples()}


async def webhook_endpoints(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Row[Any]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(WEBHOOK_ENDPOINTS).where(WEBHOOK_ENDPOINTS.c.id == _one_of(ids, Uuid()))
    )
    return {row.id: row for row in rows}


async def account_codes(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Account.id, Account.code).where(Account.id == _one_of(ids, Uuid()))
    )
    return {row.id: row.code for row in rows}


async def account_id(session: AsyncSession, network_id: uuid.UUID, code: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        select(Account.id).where(Account.network_id == network_id, Account.code == code)
    )
    return found


async def network_code(session: AsyncSession, network_id: uuid.UUID) -> str:
    code: str = (
        await session.execute(select(Network.code).where(Network.id == network_id))
    ).scalar_one()
    return code
