"""The shop's cache: Redis with short timeouts, bypassed when it misbehaves.

Every failure (timeout, refused, reset) is a miss, never an error for the shop's caller.
A circuit breaker stops asking a broken Redis for ``reset_timeout_s`` after ``fail_max``
failures in a row, so a hung Redis costs the shop three timeouts, not one per request.
"""

import pybreaker
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class Cache:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.2,
        ttl_s: int = 60,
        fail_max: int = 3,
        reset_timeout_s: float = 1.0,
    ) -> None:
        self.redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # no hidden retries: the breaker decides
        )
        self.ttl_s = ttl_s
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout_s, name="cache"
        )
        self.stats = {"hits": 0, "misses": 0, "errors": 0, "bypassed": 0}

    def get(self, key: str) -> bytes | None:
        try:
            with self.breaker.calling():  # not call(): it would serialise every read
                value = self.redis.get(key)
        except pybreaker.CircuitBreakerError:
            self.stats["bypassed"] += 1
            return None
        except redis.RedisError:
            self.stats["errors"] += 1
            return None
        if not isinstance(value, bytes):  # None: not cached (bytes: no decode_responses)
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return value

    def set(self, key: str, value: bytes) -> None:
        try:
            with self.breaker.calling():
                self.redis.set(key, value, ex=self.ttl_s)
        except pybreaker.CircuitBreakerError:
            self.stats["bypassed"] += 1
        except redis.RedisError:
            self.stats["errors"] += 1

    @property
    def state(self) -> str:
        return self.breaker.current_state
