"""Per-key rate limiting: a token bucket per API key, in each worker process.

Each key may make `rate` requests per second on average, in bursts of up to `burst`. The buckets
live in the worker's memory (no shared store on the hot path), so with N workers a key's
ceiling is N times the configured rate: set the rate per worker accordingly.
"""

import math
import time
from collections import OrderedDict

from mutualcredit.errors import RateLimited

MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> None:
        """Takes one token for `key`, or raises RateLimited with the seconds to wait."""
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            raise RateLimited(max(1, math.ceil((1 - tokens) / self.rate)))
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)  # forget the least recently seen key
