"""Numeric bounds shared by every domain."""

# 2^53 - 1: the largest integer that every JSON client (JavaScript included) represents exactly.
# Amounts and limits are capped here so that no client silently rounds money.
MAX_AMOUNT = 9_007_199_254_740_991
