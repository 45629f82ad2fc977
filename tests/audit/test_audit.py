"""The audit log: every state change is recorded, chained, and tampering is found."""

from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI

from mutualcredit import jobs
from mutualcredit.cli import main
from tests.helpers import Api, Net, assert_problem, auth, new_code

# Networks whose chain a test breaks on purpose; the session's final check skips them.
TAMPERED_PREFIX = "tampered-"


async def _records(api: Api, net: Net, **params: Any) -> list[dict[str, Any]]:
    r = await api.client.get(
        f"{net.base}/audit", params={"limit": 500, **params}, headers=auth(net.operator)
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _verify(api: Api, net: Net) -> dict[str, Any]:
    r = await api.client.get(f"{net.base}/audit/verify", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _busy_network(api: Api, code: str | None = None) -> Net:
    net = await api.network(**({"code": code} if code else {}))
    await api.account(net, "a")
    await api.account(net, "b")
    await api.pay(net, "a", "b", 10)
    hold = (await api.pay(net, "a", "b", 5, pending=True)).json()
    await api.client.post(f"{net.base}/trades/{hold['id']}/void", headers=auth(net.operator))
    await api.client.put(
        f"{net.base}/accounts/a/limits",
        json={"credit_limit": 50, "balance_max": None, "reason": "review"},
        headers=auth(net.operator),
    )
    await api.client.post(
        f"{net.base}/accounts/b/suspend", json={"reason": "paperwork"}, headers=auth(net.operator)
    )
    return net


async def test_every_state_change_appends_a_record(api: Api) -> None:
    net = await _busy_network(api)
    actions = [r["action"] for r in await _records(api, net)]
    assert actions == [
        "network.created",
        "api_key.created",
        "account.created",
        "account.created",
        "trade.created",
        "trade.created",
        "trade.voided",
        "account.limits_changed",
        "account.suspended",
    ]
    limits, suspended = (await _records(api, net))[-2:]
    assert (limits["before"], limits["after"], limits["reason"]) == (
        {"credit_limit": 1000},
        {"credit_limit": 50},
        "review",
    )
    assert (suspended["reason"], suspended["after"]) == ("paperwork", {"status": "suspended"})
    assert suspended["actor"] == f"operator:{net.operator.split('_')[1]}"
    # No secret ever reaches the log.
    key_record = (await _records(api, net, action="api_key.created"))[0]
    assert "secret_hash" not in key_record["after"]


async def test_records_are_sealed_into_a_chain_that_verifies(app: FastAPI, api: Api) -> None:
    net = await _busy_network(api)
    await jobs.seal_audit(app.state.sessionmaker)
    report = await _verify(api, net)
    assert report["ok"] is True
    assert (report["sealed"], report["unsealed"], report["head_seq"]) == (9, 0, 9)
    records = await _records(api, net)
    assert [r["seq"] for r in records] == list(range(1, 10))
    assert report["head_hash"] == records[-1]["hash"]


@pytest.mark.parametrize(
    ("tamper", "broken_at", "problem"),
    [
        ("UPDATE audit_log SET reason = 'forged' WHERE network_id = $1 AND seq = 4", 4,
         "record altered"),
        ("UPDATE audit_log SET after = '{\"amount\": 1}' WHERE network_id = $1 AND seq = 5", 5,
         "record altered"),
        ("DELETE FROM audit_log WHERE network_id = $1 AND seq = 3", 3, "record missing"),
        ("DELETE FROM audit_log WHERE network_id = $1 AND seq = 9", 9, "records after 8 missing"),
    ],
)  # fmt: skip
async def test_tampering_by_direct_sql_is_found_at_the_first_broken_record(
    app: FastAPI,
    api: Api,
    db: asyncpg.Connection,
    tamper: str,
    broken_at: int,
    problem: str,
) -> None:
    net = await _busy_network(api, code=new_code(TAMPERED_PREFIX.rstrip("-")))
    await jobs.seal_audit(app.state.sessionmaker)
    network_id = await db.fetchval("SELECT id FROM networks WHERE code = $1", net.code)

    # The guards refuse it...
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute(tamper, network_id)
    # ...so an attacker with the database's own superuser turns them off first.
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute(tamper, network_id)

    report = await _verify(api, net)
    assert report["ok"] is False
    assert report["first_broken"]["seq"] == broken_at
    assert report["first_broken"]["problem"].startswith(problem)


async def test_auditors_read_the_log_and_members_do_not(api: Api) -> None:
    net = await _busy_network(api)
    r = await api.client.post(
        f"{net.base}/keys", json={"role": "auditor"}, headers=auth(net.operator)
    )
    auditor = r.json()["token"]
    member = await api.member_key(net, "a")
    assert (await api.client.get(f"{net.base}/audit", headers=auth(auditor))).status_code == 200
    r = await api.client.get(f"{net.base}/audit/verify", headers=auth(auditor))
    assert r.status_code == 200
    assert_problem(
        await api.client.get(f"{net.base}/audit", headers=auth(member)), 403, "forbidden"
    )


def test_the_command_line_verifies_and_reports_a_break(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unknown network is an error of the command (exit status 2), said in one line.
    assert main(["--database-url", database_url, "audit", "verify", "--network", "nowhere"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "mutualcredit: no network 'nowhere'"
    code = main(["--database-url", database_url, "audit", "verify"])
    out = capsys.readouterr().out
    broken = [line for line in out.splitlines() if "BROKEN" in line]
    # Only the networks the tampering test broke on purpose are broken.
    assert all(line.startswith(TAMPERED_PREFIX) for line in broken), broken
    assert code == (1 if broken else 0)
