"""Typed helpers that speak to the service through its HTTP API, as a client would."""

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_code(prefix: str = "net") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Net:
    """A network of the test, with its operator's token."""

    code: str
    operator: str

    @property
    def base(self) -> str:
        return f"/v1/networks/{self.code}"


class Api:
    def __init__(self, client: httpx.AsyncClient, platform_token: str) -> None:
        self.client = client
        self.platform = platform_token

    async def network(self, **fields: Any) -> Net:
        body = {
            "code": new_code(),
            "name": "Test network",
            "unit_name": "hour",
            "unit_symbol": "h",
            "scale": 2,
            "default_credit_limit": 1000,
            **fields,
        }
        r = await self.client.post("/v1/networks", json=body, headers=auth(self.platform))
        assert r.status_code == 201, r.text
        r = await self.client.post(
            f"/v1/networks/{body['code']}/keys",
            json={"role": "operator"},
            headers=auth(self.platform),
        )
        assert r.status_code == 201, r.text
        return Net(code=body["code"], operator=r.json()["token"])

    async def account(self, net: Net, code: str, **fields: Any) -> dict[str, Any]:
        r = await self.client.post(
            f"{net.base}/accounts", json={"code": code, **fields}, headers=auth(net.operator)
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def member_key(self, net: Net, account: str) -> str:
        r = await self.client.post(
            f"{net.base}/keys",
            json={"role": "member", "account": account},
            headers=auth(net.operator),
        )
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    async def pay(
        self,
        net: Net,
        payer: str,
        payee: str,
        amount: Any,
        *,
        token: str | None = None,
        key: str | None = None,
        **fields: Any,
    ) -> httpx.Response:
        headers = auth(token or net.operator)
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
        return await self.client.post(
            f"{net.base}/trades",
            json={"payer": payer, "payee": payee, "amount": amount, **fields},
            headers=headers,
        )

    async def get_account(self, net: Net, code: str) -> dict[str, Any]:
        r = await self.client.get(f"{net.base}/accounts/{code}", headers=auth(net.operator))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def balances(self, net: Net) -> dict[str, int]:
        r = await self.client.get(
            f"{net.base}/accounts", params={"limit": 500}, headers=auth(net.operator)
        )
        assert r.status_code == 200, r.text
        return {a["code"]: a["balance"] for a in r.json()["items"]}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"].endswith(code)
    return body


async def network_sums(db: asyncpg.Connection, network_code: str) -> tuple[int, int, int]:
    """(sum of balances, sum of pending debits, sum of pending credits) of a network."""
    row = await db.fetchrow(
        "SELECT coalesce(sum(balance), 0), coalesce(sum(pending_debits), 0),"
        " coalesce(sum(pending_credits), 0)"
        " FROM accounts a JOIN networks n ON n.id = a.network_id WHERE n.code = $1",
        network_code,
    )
    return int(row[0]), int(row[1]), int(row[2])
