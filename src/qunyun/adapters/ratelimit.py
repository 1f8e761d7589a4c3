"""Token-bucket rate limits shared by all workers (Redis) or by threads of one process.

``acquire`` never blocks: it returns 0 when a token was taken, else the seconds to wait, so the
worker can put the row back with a due time instead of holding a claim while it sleeps.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

# KEYS[1] bucket; ARGV: rate per second, burst, now (seconds). Returns wait in milliseconds.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


class RateLimiter(Protocol):
    def acquire(self, key: str, rate_per_second: float, burst: float) -> float: ...


class LocalRateLimiter:
    """Buckets in this process only: right for one worker, too generous for several."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate_per_second: float, burst: float) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, ts = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - ts) * rate_per_second)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate_per_second


class RedisRateLimiter:
    """One bucket per key in Redis, updated atomically by a Lua script (all workers share it)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "qunyun:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_LUA)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "qunyun:rl:") -> RedisRateLimiter:
        return cls(redis.Redis.from_url(url), prefix=prefix)

    def acquire(self, key: str, rate_per_second: float, burst: float) -> float:
        wait_ms = self._script(keys=[self._prefix + key],
                               args=[rate_per_second, burst, time.time()])
        return int(wait_ms) / 1000.0
