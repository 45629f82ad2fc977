"""Events: what happened in a network, read from its audit log, in commit order.

Every state change is recorded in `audit_log` by triggers in the writer's own transaction (a
transactional outbox): an event exists exactly when its change committed. The feed does not read
records as they are inserted but once they are *sealed*: the sealer (mc_audit_seal, a background
job of every worker) gives each committed record its `seq` in the network's hash chain, under a
lock on the network's chain head, after the writer committed, in the order it finds records
committed. So the sealed `seq`s a reader can see are always a prefix of the chain: a record
committed later is sealed later and gets a larger `seq`, and a reader that asks for
`seq > cursor` never skips one. (An insert-time id is not such an order: a transaction that
takes id 7 can commit after the one that took id 8, and a reader already past 8 would miss 7.)
The price is latency: an event appears within one seal interval of its commit
(MUTUALCREDIT_SEAL_INTERVAL_SECONDS, 0.1 s by default: jobs.seal_forever).

The event's `seq` is the record's chain seq; its id, `evt_<network>_<seq>`, is stable. Records
that are no event (keys, links, settings of no interest to a client) leave gaps in the seqs.

An event's payload is the state of its subject as of the event: the row's fields that never
change, with the fields the change set taken from the record itself. A trade that posts carries
the balance of each party just after it (from its entries, which never change); a member's view
keeps only its own account's balance (`viewer`).
"""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.events import payloads, repository
from mutualcredit.events.errors import UnknownEventType
from mutualcredit.events.schemas import (
    AccountEventData,
    Event,
    FeeData,
    FeeEventData,
    RequestEventData,
    SettlementEventData,
    TradeEventData,
    TransferEventData,
    WebhookData,
    WebhookEventData,
)
from mutualcredit.schemas import OutputModel

VERSION = 1

EVENT_TYPES: dict[str, str] = {
    "trade.posted": "A trade was posted (at once, or a hold was completed): balances moved.",
    "trade.held": "A trade was held: the payer's available balance is reserved until it posts.",
    "trade.voided": "A held trade was voided: the reservation is released, nothing moved.",
    "trade.expired": "A held trade expired unposted: the reservation is released.",
    "trade.reversed": "An operator reversed a posted trade with a new trade the other way.",
    "fee.charged": "A fee rule charged an account: a fee trade to the treasury was posted.",
    "request.created": "A payee asked a payer for a payment.",
    "request.accepted": "The payer accepted a payment request: its trade is posted.",
    "request.rejected": "The payer rejected a payment request.",
    "request.cancelled": "The payee cancelled a payment request.",
    "request.expired": "A payment request expired unanswered.",
    "account.limits_changed": "An account's credit limit or maximum balance changed.",
    "account.suspended": "An account was suspended: it may not trade.",
    "account.reactivated": "A suspended account was made active again.",
    "account.closed": "An account was closed for good.",
    "transfer.accepted": "A cross-network transfer was accepted (booked at its destination).",
    "transfer.refused": "A cross-network transfer was refused: its hold is voided.",
    "settlement.executed": "A link's settlement was executed on this network's ledger.",
    "webhook.disabled": "A webhook endpoint was disabled: by an operator, or for failing for days.",
}

# The audit actions each event type comes from (a record's action, `<subject>.<status>` for a
# change of status: mc_audit_change). A record becomes at most one event (`_type`).
SOURCES: dict[str, tuple[str, ...]] = {
    "trade.posted": ("trade.created", "trade.posted"),
    "trade.held": ("trade.created",),
    "trade.voided": ("trade.voided",),
    "trade.expired": ("trade.expired",),
    "trade.reversed": ("trade.created",),
    "fee.charged": ("trade.created",),
    "request.created": ("payment_request.created",),
    "request.accepted": ("payment_request.accepted",),
    "request.rejected": ("payment_request.rejected",),
    "request.cancelled": ("payment_request.cancelled",),
    "request.expired": ("payment_request.expired",),
    "account.limits_changed": ("account.limits_changed",),
    "account.suspended": ("account.suspended",),
    "account.reactivated": ("account.active",),
    "account.closed": ("account.closed",),
    "transfer.accepted": ("transfer.created", "transfer.accepted"),
    "transfer.refused": ("transfer.created", "transfer.refused"),
    "settlement.executed": ("settlement.created", "settlement.executed"),
    "webhook.disabled": ("webhook_endpoint.disabled",),
}

# Every other action that is an event: one type each.
_BY_ACTION: dict[str, str] = {
    action: event_type
    for event_type, actions in SOURCES.items()
    for action in actions
    if not action.endswith(".created") or event_type == "request.created"
}

# Most records scanned per query: a read whose types split an action (trade.created) may
# scan more than one batch to fill its page.
BATCH = 500


def check_types(types: Sequence[str]) -> None:
    unknown = sorted(set(types) - EVENT_TYPES.keys())
    if unknown:
        raise UnknownEventType(f"Unknown event types: {', '.join(unknown)}", unknown=unknown)


def _type(action: str, after: dict[str, Any] | None) -> str | None:
    """The event type of an audit record, or None when the record is no event."""
    fields = after or {}
    if action == "trade.created":
        if fields.get("kind") == "reversal":
            return "trade.reversed"
        if fields.get("kind") == "fee":
            return "fee.charged"
        return "trade.posted" if fields.get("status") == "posted" else "trade.held"
    if action in ("transfer.created", "settlement.created"):
        subject = action.split(".")[0]
        status = fields.get("status")
        wanted = ("accepted", "refused") if subject == "transfer" else ("executed",)
        return f"{subject}.{status}" if status in wanted else None
    return _BY_ACTION.get(action)


async def read(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    after: int | None,
    types: Sequence[str] | None,
    account: str | None,
    limit: int,
    network_code: str | None = None,
    viewer: str | None = None,
) -> list[Event]:
    """Events with seq > `after`, in seq order, at most `limit`: of the given `types` (all if
    None) and about `account` (all if None). `viewer`, a member's account code, keeps the
    balances of other accounts out of the payloads. An unknown account has no events."""
    wanted = list(types) if types else list(EVENT_TYPES)
    check_types(wanted)
    actions = sorted({a for t in wanted for a in SOURCES[t]})
    account_id = None
    if account is not None:
        account_id = await repository.account_id(session, network_id, account)
        if account_id is None:
            return []
    code = network_code or await repository.network_code(session, network_id)
    cursor = after or 0
    batch = min(max(limit, 1), BATCH)
    events: list[Event] = []
    while len(events) < limit:
        rows = await repository.sealed_records(
            session,
            network_id,
            after=cursor,
            actions=actions,
            account_id=account_id,
            limit=batch,
        )
        typed = [(row, t) for row in rows if (t := _type(row.action, row.after)) in wanted]
        events += await _build(session, code, typed, viewer)
        if len(rows) < batch:
            break
        cursor = rows[-1].seq
    return events[:limit]


async def _build(
    session: AsyncSession,
    network: str,
    typed: Sequence[tuple[Row[Any], str | None]],
    viewer: str | None,
) -> list[Event]:
    ids: dict[str, list[str]] = {}
    for row, _ in typed:
        ids.setdefault(row.subject_type, []).append(row.subject_id)
    trades = await repository.trades(session, [uuid.UUID(i) for i in ids.get("trade", [])])
    requests = await repository.requests(
        session, [uuid.UUID(i) for i in ids.get("payment_request", [])]
    )
    transfers = await repository.transfers(session, [int(i) for i in ids.get("transfer", [])])
    settlements = await repository.settlements(
        session, [uuid.UUID(i) for i in ids.get("settlement", [])]
    )
    endpoints = await repository.webhook_endpoints(
        session, [uuid.UUID(i) for i in ids.get("webhook_endpoint", [])]
    )
    balances = await repository.balances_after(session, list(trades))
    fees = await repository.fee_charges(session, [t.id for t in trades.values() if t.kind == "fee"])
    account_ids: set[uuid.UUID] = {uuid.UUID(i) for i in ids.get("account", [])}
    for t in trades.values():
        account_ids |= {t.payer_id, t.payee_id}
    for r in requests.values():
        account_ids |= {r.payer_id, r.payee_id}
    transfer_trades = await repository.trades(
        session, [t.trade_id for t in transfers.values() if t.trade_id is not None]
    )
    for t in transfer_trades.values():
        account_ids |= {t.payer_id, t.payee_id}
    codes = await repository.account_codes(session, list(account_ids))

    events: list[Event] = []
    for row, event_type in typed:
        assert event_type is not None
        after: dict[str, Any] = row.after or {}
        if row.subject_type == "trade":
            trade = trades[uuid.UUID(row.subject_id)]
            accounts = [codes[trade.payer_id], codes[trade.payee_id]]
            moved = None
            if event_type in ("trade.posted", "trade.reversed", "fee.charged"):
                moved = {
                    codes[a]: b
                    for a, b in balances.get(trade.id, {}).items()
                    if viewer is None or codes[a] == viewer
                }
            payload: OutputModel
            if event_type == "fee.charged":
                charge = fees[trade.id]
                payload = FeeEventData(
                    trade=payloads.trade(trade, after, codes),
                    balances_after=moved,
                    fee=FeeData.model_validate(charge),
                )
            else:
                payload = TradeEventData(
                    trade=payloads.trade(trade, after, codes), balances_after=moved
                )
        elif row.subject_type == "payment_request":
            request = requests[uuid.UUID(row.subject_id)]
            accounts = [codes[request.payer_id], codes[request.payee_id]]
            payload = RequestEventData(request=payloads.request(request, after, codes))
        elif row.subject_type == "account":
            code = codes[uuid.UUID(row.subject_id)]
            accounts = [code]
            payload = AccountEventData(account=code, before=row.before, after=after)
        elif row.subject_type == "transfer":
            transfer = transfers[int(row.subject_id)]
            parties = transfer_trades.get(transfer.trade_id) if transfer.trade_id else None
            accounts = [codes[parties.payer_id], codes[parties.payee_id]] if parties else []
            payload = TransferEventData(transfer=payloads.transfer(transfer, after))
        elif row.subject_type == "settlement":
            settlement, link_account = settlements[uuid.UUID(row.subject_id)]
            accounts = [link_account]
            payload = SettlementEventData(
                settlement=payloads.settlement(settlement, after, link_account)
            )
        elif row.subject_type == "webhook_endpoint":
            endpoint = endpoints[uuid.UUID(row.subject_id)]
            accounts = [endpoint.member_account] if endpoint.member_account else []
            payload = WebhookEventData(
                webhook=WebhookData(
                    id=endpoint.id,
                    url=endpoint.url,
                    description=endpoint.description,
                    account=endpoint.account,
                    member_account=endpoint.member_account,
                    status=after["status"],
                    status_reason=after.get("status_reason"),
                    changed_by=row.actor,
                )
            )
        else:
            # A type added to SOURCES needs its payload here: never skip an event silently.
            raise RuntimeError(f"no payload for events about a {row.subject_type}")
        events.append(
            Event(
                id=f"evt_{network}_{row.seq}",
                seq=row.seq,
                type=event_type,
                version=VERSION,
                occurred_at=row.occurred_at,
                network=network,
                accounts=accounts,
                data=payloads.dump(payload),
            )
        )
    return events


async def require_account(session: AsyncSession, network_id: uuid.UUID, code: str) -> None:
    if await repository.account_id(session, network_id, code) is None:
        raise AccountNotFound(f"No account {code!r} in this network", account=code)
