"""A newcomer's first sight of federation, in one command:

    python scripts/demo_federation.py [--database-url postgresql://user@host/db]

Three networks, each served by its own `mutualcredit serve` process with its own database:
riverside, the regional hub, and two towns linked to it, hillcrest and lakeside. The towns send
what they cannot deliver directly through riverside (their default route). One hillcrest
unit is worth 1.5 riverside units; riverside and lakeside trade one for one. Members pay
across, one trade is refused for a trust cap, then each network shows its balances, each link
reconciles both sides' records, and hillcrest and riverside sign a checkpoint together.

Without --database-url it starts a throwaway embedded PostgreSQL. Everything it creates (the
databases, or the embedded server and its data) is removed at the end, whatever happens; only
when it fails does it keep the services' logs, and print where they are.
"""

import argparse
import shutil
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the multi-node harness lives in tests/

from tests.federation.cluster import Cluster, Node  # noqa: E402

SCALE = 2
WIDTH = 96


# -- printing ---------------------------------------------------------------------------------


def say(text: str = "", indent: int = 2) -> None:
    if not text:
        print()
        return
    prefix = " " * indent
    print(textwrap.fill(text, WIDTH, initial_indent=prefix, subsequent_indent=prefix))


def step(title: str) -> None:
    print()
    print(f"== {title} " + "=" * max(0, WIDTH - len(title) - 4))


def money(node: Node, amount: int | None) -> str:
    """Minor units as the network writes them: 1501 in riverside -> '15.01 R'."""
    if amount is None:
        return "no cap"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 10**SCALE)
    return f"{sign}{whole}.{cents:0{SCALE}d} {node.name[:1].upper()}"


def short(value: str | None, keep: int = 12) -> str:
    if value is None:
        return "-"
    return value if len(value) <= keep else value[:keep] + "..."


# -- the client's side ------------------------------------------------------------------------


def get(node: Node, path: str) -> Any:
    r = node.request("GET", path, node.operator)
    if r.status_code != 200:
        raise RuntimeError(f"GET {node.name}{path}: {r.status_code} {r.text}")
    return r.json()


def settle_trade(node: Node, trade: dict[str, Any], seconds: float = 30) -> dict[str, Any]:
    """A 202 means the outcome is not known yet: read the trade until it is."""
    deadline = time.monotonic() + seconds
    while trade["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.3)
        trade = node.trade(trade["id"])
    return trade


def pay(node: Node, payer: str, dest: Node, payee: str, amount: int, description: str) -> None:
    """A member pays a member of another network; prints what the payer's network answered
    and what reached the payee."""
    before = dest.balance(payee)
    say(f"{node.name}/{payer} pays {dest.name}/{payee} {money(node, amount)} ({description})")
    r = node.pay(payer, f"{dest.name}/{payee}", amount, description=description)
    body = r.json()
    if r.status_code in (201, 202):
        trade = settle_trade(node, body) if r.status_code == 202 else body
        transfer = trade.get("transfer") or {}
        say(
            f"HTTP {r.status_code}: the trade is {trade['status']}, its transfer to"
            f" {transfer.get('peer')} {transfer.get('status')};"
            f" {dest.name}/{payee} received {money(dest, dest.balance(payee) - before)}",
            indent=6,
        )
        return
    say(f"HTTP {r.status_code} {body.get('code')}: {body.get('detail')}", indent=6)
    if body.get("code") == "transfer_refused":
        say(
            f"refused_by={body.get('refused_by')}  remote_code={body.get('remote_code')}"
            f"  remote_detail={body.get('remote_detail')}",
            indent=6,
        )
        trade = node.trade(body["trade_id"])
        say(
            f"{payer}'s hold at {node.name} is {trade['status']}; {dest.name}/{payee} received"
            f" {money(dest, dest.balance(payee) - before)}: nothing moved anywhere",
            indent=6,
        )


# -- the demo ---------------------------------------------------------------------------------


def build(cluster: Cluster) -> tuple[Node, Node, Node]:
    step("Three networks, three service processes, three databases")
    riverside = cluster.add("riverside")
    hillcrest = cluster.add("hillcrest")
    lakeside = cluster.add("lakeside")
    for node in (riverside, hillcrest, lakeside):
        d = node.descriptor()
        key = next(k for k in d["keys"] if k["status"] == "active")
        say(
            f"{node.name:<10} {d['url']:<24} unit {d['unit']['symbol']} (scale"
            f" {d['unit']['scale']})  signing key {key['key_id']}"
        )
    say()
    say(
        "Each operator made its network's signing key (POST .../federation/keys/rotate), which"
        " publishes its descriptor; each read the peer's (GET /federation/v1/networks/{code}/"
        "descriptor) for its URL and public key."
    )

    step("Links: hillcrest <-> riverside (1 H = 1.5 R), lakeside <-> riverside (1 L = 1 R)")
    # Both operators create their side (the peer's side holds the inverse rate), then one
    # side agrees: a signed call, after which value may cross.
    cluster.connect(hillcrest, riverside, num=3, den=2, caps=50_000, a_default_route=True)
    cluster.connect(lakeside, riverside, num=1, den=1, caps=20_000, a_default_route=True)
    say()
    say(
        f"{'network':<10} {'peer':<10} {'status':<7} {'rate':<5} {'link account':<15}"
        f" {'peer may owe':>12} {'we may owe':>12}  route"
    )
    for node in (hillcrest, riverside, lakeside):
        for link in get(node, "/federation/links"):
            rate = f"{link['rate']['num']}/{link['rate']['den']}"
            say(
                f"{node.name:<10} {link['peer']:<10} {link['status']:<7} {rate:<5}"
                f" {link['account']:<15} {money(node, link['credit_limit']):>12}"
                f" {money(node, link['balance_max']):>12}"
                + ("  default" if link["default_route"] else "")
            )
    say()
    say(
        "rate: what one minor unit here is worth in the peer's minor units. peer may owe"
        " (credit_limit of link.<peer>) and we may owe (its balance_max) are the trust caps."
    )
    return riverside, hillcrest, lakeside


def members(riverside: Node, hillcrest: Node, lakeside: Node) -> None:
    step("Members")
    hillcrest.member("ann", credit_limit=50_000)
    riverside.member("rita")
    lakeside.member("lou")
    say(
        "hillcrest/ann (credit limit 500.00 H), riverside/rita and lakeside/lou (the default"
        " credit limit, 100.00)"
    )


def trades(riverside: Node, hillcrest: Node, lakeside: Node) -> None:
    step("Trades across networks: the same POST .../trades, with a payee network/account")
    say("Direct, over one link (floor(2501 x 3/2) = 3751: the half unit stays with hillcrest):")
    pay(hillcrest, "ann", riverside, "rita", 2_501, "apples")
    say()
    say("Through the hub: hillcrest has no link to lakeside, so riverside forwards it:")
    pay(hillcrest, "ann", lakeside, "lou", 1_000, "bread")
    say()
    say("And back the other way, lakeside -> riverside -> hillcrest (1000 R x 2/3 = 666 H):")
    pay(lakeside, "lou", hillcrest, "ann", 1_000, "honey")
    step("A refusal: above a trust cap")
    say(
        "300.00 H is 450.00 R at the hub, but riverside lets itself owe lakeside only"
        " 200.00 R. The hub refuses; hillcrest voids ann's hold."
    )
    pay(hillcrest, "ann", lakeside, "lou", 30_000, "a tractor")


def balances(nodes: list[Node]) -> None:
    step("Balances (link.<peer>: negative = the peer owes us, positive = we owe the peer)")
    for node in nodes:
        accounts = get(node, "/accounts?limit=100")["items"]
        say(f"{node.name}:")
        for a in accounts:
            if a["kind"] not in ("member", "link"):
                continue
            pending = a["pending_debits"] + a["pending_credits"]
            held = f"  (held: {money(node, pending)})" if pending else ""
            say(f"{a['code']:<18} {money(node, a['balance']):>12}{held}", indent=6)
        total = sum(a["balance"] for a in accounts)
        say(f"{'every account':<18} {money(node, total):>12}  (a ledger always sums to zero)", 6)


def reconcile(pairs: list[tuple[Node, Node]]) -> None:
    step("Reconciliation: both sides' statements of each link, compared entry by entry")
    for node, peer in pairs:
        rep = node.reconcile(peer)
        mirror = rep["mirror"]
        nodes = {node.name: node, peer.name: peer}
        count = len(rep["differences"])
        say(f"{node.name} <-> {peer.name}: agreed={rep['agreed']}, {count} differences")
        ledgers = ", ".join(
            f"{name} {money(nodes[name], b['ledger'])}"
            + ("" if b["ledger"] == b["from_statement"] else f" (statement: {b['from_statement']})")
            for name, b in rep["balances"].items()
        )
        say(f"link balances, each as its ledger and statement say: {ledgers}", indent=6)
        chains = ", ".join(f"{c} {v['ours']}/{v['theirs']}" for c, v in rep["chains"].items())
        say(f"transfers in each chain (here/there): {chains}", indent=6)
        unit = peer.name[:1].upper()
        remainder = mirror["tracked_remainder"]
        say(
            f"mirror.holds={mirror['holds']}: {node.name}'s balance valued in {unit}"
            f" ({mirror['ours_in_peer_units']}) + {peer.name}'s"
            f" ({rep['balances'][peer.name]['ledger']}) = {mirror['difference']}"
            + (
                ", nothing was rounded away on this link"
                if remainder == "0"
                else f", exactly the tracked_remainder: {remainder} minor units of {unit},"
                " rounded away by the floor of each conversion and kept by the sending sides"
            ),
            indent=6,
        )


def checkpoint(node: Node, peer: Node) -> None:
    step(f"A checkpoint, signed by both {node.name} and {peer.name}")
    r = node.request("POST", f"/federation/links/{peer.name}/checkpoints", node.operator)
    if r.status_code != 201:
        raise RuntimeError(f"checkpoint: {r.status_code} {r.text}")
    cp = r.json()
    payload = cp["payload"]
    say(f"checkpoint {cp['id']} at {cp['created_at']} ({payload['protocol']})")
    for chain, head in payload["chains"].items():
        say(f"chain {chain:<22} seq {head['seq']}  last hash {short(head['hash'])}", indent=6)
    nodes = {node.name: node, peer.name: peer}
    for name, balance in payload["balances"].items():
        say(f"link balance at {name:<12} {money(nodes[name], balance):>12}", indent=6)
    for name, sig in cp["signatures"].items():
        say(f"signed by {name:<12} key {sig['key_id']}  {short(sig['signature'], 24)}", indent=6)


def run(server_url: str, workdir: Path) -> None:
    cluster = Cluster(server_url, workdir)
    try:
        riverside, hillcrest, lakeside = build(cluster)
        members(riverside, hillcrest, lakeside)
        trades(riverside, hillcrest, lakeside)
        balances([hillcrest, riverside, lakeside])
        reconcile([(hillcrest, riverside), (lakeside, riverside)])
        checkpoint(hillcrest, riverside)
        step("Done: the services stop and their databases are dropped")
    finally:
        cluster.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to create the three databases on (they are dropped at the"
        " end); default: a throwaway embedded PostgreSQL",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mc-demo-"))
    server = None
    pg_dir: Path | None = None
    try:
        url = args.database_url
        if url is None:
            from mutualcredit import embedded

            print("Starting a throwaway embedded PostgreSQL...")
            # pgserver asks platformdirs for a runtime dir, which warns when XDG_RUNTIME_DIR
            # is unset; the server does not need it.
            warnings.filterwarnings("ignore", module="platformdirs")
            pg_dir = Path(tempfile.mkdtemp(prefix="mc-demo-pg-"))
            server, url = embedded.start(pg_dir, cleanup="delete")
        run(url, workdir)
    except Exception as exc:
        print(f"\nThe demo failed: {exc}", file=sys.stderr)
        print(f"Service logs: {workdir}/*.log", file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.cleanup()
        if pg_dir is not None:
            shutil.rmtree(pg_dir, ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
