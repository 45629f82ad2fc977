"""Addresses of accounts across networks: `network/account`.

An account of this network is named by its code alone (`ann`); an account of another network by
that network's code, a slash, and its code there (`bravo/bob`). Account codes never contain a
slash, so the slash alone tells a cross-network payee from a local one: the trade route, the
trade lane and federation all decide it here.
"""


def is_remote(payee: str) -> bool:
    """True for an address in another network (`network/account`)."""
    return "/" in payee


def split(address: str) -> tuple[str, str]:
    """The network and the account of `network/account` (either may be empty if malformed)."""
    network, _, account = address.partition("/")
    return network, account
