from __future__ import annotations

import uuid

import pytest

from qunyun.adapters.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter


def burst_then_wait(limiter: RateLimiter, key: str) -> None:
    waits = [limiter.acquire(key, 1.0, 3.0) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.5 < waits[3] <= 1.0
    assert limiter.acquire(f"{key}-other", 1.0, 3.0) == 0.0  # keys are independent


def test_local_token_bucket() -> None:
    burst_then_wait(LocalRateLimiter(), "k")


@pytest.mark.redis
def test_redis_token_bucket_is_shared_between_limiters(redis_url: str) -> None:
    prefix = f"qunyun:test:{uuid.uuid4().hex}:"
    first = RedisRateLimiter.from_url(redis_url, prefix=prefix)
    burst_then_wait(first, "k")
    second = RedisRateLimiter.from_url(redis_url, prefix=prefix)  # another worker process
    assert second.acquire("k", 1.0, 3.0) > 0
