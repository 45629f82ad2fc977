"""A client generated from the committed openapi/openapi.json, with no hand edits, trades with a
live service: openapi-python-client (from PyPI) writes the client into a temporary folder, and
its own functions open accounts, make a member key, pay, read the balance, replay a trade by
its Idempotency-Key, and receive typed problems for refusals, against a real
`mutualcredit serve` process on a database of its own.
"""

import importlib
import inspect
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.federation.cluster import Cluster, Node

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
PACKAGE = "mutualcredit_client"


@pytest.fixture(scope="module")
def node(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    cluster = Cluster(server_url, tmp_path_factory.mktemp("client-service"))
    try:
        yield cluster.add("gen", default_credit_limit=1_000)
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("generated")
    generator = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(  # noqa: S603 - the generator, on our own document
        [
            str(generator),
            "generate",
            "--path",
            str(OPENAPI),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    # The generator warns (and leaves pieces out) for what it cannot turn into code.
    assert "Warning" not in output, output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_trades_with_a_live_service(
    node: Node, client_package: ModuleType
) -> None:
    models = _module("models")
    # What the document says shapes the client: a trade needs its Idempotency-Key, and an
    # operation that needs a key takes only a client that sends one; the probes take any.
    pay = inspect.signature(_module("api.trades.create_trade").sync_detailed).parameters
    assert pay["idempotency_key"].default is inspect.Parameter.empty
    assert pay["client"].annotation is client_package.AuthenticatedClient
    probe = inspect.signature(_module("api.health.healthz").sync_detailed).parameters
    assert probe["client"].annotation != client_package.AuthenticatedClient

    clients = ExitStack()

    def connect(token: str) -> Any:
        # As a context manager, so that its connections are closed at the end.
        return clients.enter_context(
            client_package.AuthenticatedClient(base_url=node.url, token=token)
        )

    with clients:
        _trade(node, models, connect)


def _trade(node: Node, models: Any, connect: Callable[[str], Any]) -> None:
    open_account = _module("api.accounts.open_account")
    get_account = _module("api.accounts.get_account")
    create_key = _module("api.keys.create_key")
    create_trade = _module("api.trades.create_trade")
    get_me = _module("api.keys.get_me")
    operator = connect(node.operator)

    # Accounts, opened by the network's operator.
    for code, limit in (("bakery", None), ("alice", 500)):
        body = models.AccountCreate(code=code, name=code.title())
        if limit is not None:
            body.credit_limit = limit
        opened = open_account.sync_detailed(node.name, client=operator, body=body)
        assert opened.status_code == 201, opened.content
        assert isinstance(opened.parsed, models.Account)
        assert opened.parsed.code == code

    # A member key for alice, who then pays from her own account.
    member = models.KeyCreate(role=models.KeyCreateRole.MEMBER, account="alice")
    made = create_key.sync_detailed(node.name, client=operator, body=member)
    assert made.status_code == 201, made.content
    assert isinstance(made.parsed, models.KeyCreated)
    alice = connect(made.parsed.token)
    me = get_me.sync(client=alice)
    assert isinstance(me, models.Me)
    assert (me.role, me.account) == (models.Role.MEMBER, "alice")

    key = str(uuid.uuid4())
    trade = models.TradeCreate(payer="alice", payee="bakery", amount=250, description="bread")
    paid = create_trade.sync_detailed(node.name, client=alice, body=trade, idempotency_key=key)
    assert paid.status_code == 201, paid.content
    assert isinstance(paid.parsed, models.Trade)
    assert paid.parsed.status == models.TradeStatus.POSTED
    assert (paid.parsed.payer, paid.parsed.payee, paid.parsed.amount) == ("alice", "bakery", 250)

    # The same key again: the same trade, booked once.
    again = create_trade.sync_detailed(node.name, client=alice, body=trade, idempotency_key=key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.id == paid.parsed.id

    # The balances, read with the client's typed models.
    account = get_account.sync(node.name, "alice", client=alice)
    assert isinstance(account, models.Account)
    assert (account.balance, account.available) == (-250, 250)
    assert get_account.sync(node.name, "bakery", client=operator).balance == 250

    # A refusal is a typed Problem with its stable code and the numbers that go with it.
    beyond = models.TradeCreate(payer="alice", payee="bakery", amount=300)
    refused = create_trade.sync_detailed(
        node.name, client=alice, body=beyond, idempotency_key=str(uuid.uuid4())
    )
    assert refused.status_code == 409
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.code == "credit_limit_exceeded"
    assert refused.parsed.status == 409
    assert refused.parsed.additional_properties["available"] == 250
    assert refused.parsed.additional_properties["shortfall"] == 50

    # A member paying from another account: forbidden, typed too.
    theirs = models.TradeCreate(payer="bakery", payee="alice", amount=1)
    forbidden = create_trade.sync_detailed(
        node.name, client=alice, body=theirs, idempotency_key=str(uuid.uuid4())
    )
    assert forbidden.status_code == 403
    assert isinstance(forbidden.parsed, models.Problem)
    assert forbidden.parsed.code == "forbidden"

    # A key the service does not know: 401, typed.
    stranger = connect("mc_0000_not-a-key")
    unknown = get_account.sync_detailed(node.name, "alice", client=stranger)
    assert unknown.status_code == 401
    assert isinstance(unknown.parsed, models.Problem)
    assert unknown.parsed.code == "unauthorized"

    # Nothing refused was booked.
    assert get_account.sync(node.name, "alice", client=operator).balance == -250
