"""The arithmetic of fees, checked against an independent exact computation (hypothesis).

`mc_fee_amount`, the one rounding rule of every fee, on a real PostgreSQL over its whole input
range: bases up to 2^53 - 1 (the largest amount), rates num/den with den up to 10^12, a fixed
part, a minimum and a maximum, and a base of zero. The model is Python's exact Fraction: the
floor of base x num / den, plus the fixed part, raised to the minimum, cut to the maximum and
to the largest amount; nothing for a base of zero.
"""

import asyncio
import math
from collections.abc import Iterator
from fractions import Fraction

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

MAX_AMOUNT = 2**53 - 1
MAX_DEN = 10**12

Case = tuple[int, int, int, int, int | None, int | None]


def expected_fee(case: Case) -> int:
    base, num, den, fixed, minimum, maximum = case
    if base <= 0:
        return 0
    fee = math.floor(Fraction(base) * Fraction(num, den)) + fixed
    if minimum is not None:
        fee = max(fee, minimum)
    if maximum is not None:
        fee = min(fee, maximum)
    return min(fee, MAX_AMOUNT)


amounts = st.one_of(
    st.integers(0, MAX_AMOUNT),
    st.integers(0, 1000),
    st.sampled_from([1, MAX_AMOUNT - 1, MAX_AMOUNT]),
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Rules the table admits (0 <= num <= den <= 10^12, 1 <= minimum <= maximum)."""
    den = draw(st.one_of(st.integers(1, MAX_DEN), st.sampled_from([1, 3, 7, 100, MAX_DEN])))
    num = draw(st.one_of(st.integers(0, den), st.sampled_from([0, 1, den - 1, den])))
    minimum = draw(st.none() | st.integers(1, MAX_AMOUNT) | st.integers(1, 1000))
    maximum = draw(st.none() | st.integers(minimum or 1, MAX_AMOUNT))
    base = draw(amounts)
    return base, num, den, draw(amounts), minimum, maximum


@pytest.fixture
def conn(database_url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Connection]]:
    """A connection of its own on a loop of its own: hypothesis runs the test synchronously."""
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(asyncpg.connect(database_url))
    yield loop, connection
    loop.run_until_complete(connection.close())
    loop.close()


def test_the_rounding_rule_is_exact(
    conn: tuple[asyncio.AbstractEventLoop, asyncpg.Connection],
) -> None:
    loop, connection = conn

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(cases(), min_size=1, max_size=40))
    @example([(MAX_AMOUNT, MAX_DEN, MAX_DEN, MAX_AMOUNT, None, None)])  # past the largest amount
    @example([(0, 1, 1, 5, 3, None), (1, 0, 1, 0, 2, 9), (MAX_AMOUNT, 1, MAX_DEN, 0, None, 7)])
    @example([(10**12 - 1, 1, MAX_DEN, 0, None, None), (3, 2, 3, 1, None, None)])  # 0, 2 + 1
    def check(batch: list[Case]) -> None:
        # One round trip for the whole batch: the function applied to each row of arrays.
        got = loop.run_until_complete(
            connection.fetch(
                "SELECT mc_fee_amount(b, n, d, f, lo, hi) AS fee"
                " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
                "             $5::bigint[], $6::bigint[])"
                "      WITH ORDINALITY AS c(b, n, d, f, lo, hi, i)"
                " ORDER BY i",
                *([case[k] for case in batch] for k in range(6)),
            )
        )
        assert [row["fee"] for row in got] == [expected_fee(case) for case in batch]

    check()
