"""The Redis cache, made optional: when Redis is down, reads miss and writes are dropped (with a
warning), so lookups and logins keep working from the database, only slower."""

import logging
from collections.abc import Iterable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class ResilientRedisCache(RedisCache):
    def _call(self, method: str, default: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(super(), method)(*args, **kwargs)
        except RedisError as exc:
            logger.warning("cache unavailable (%s); going on without it", type(exc).__name__)
            return default

    def get(self, key: Any, default: Any | None = None, version: int | None = None) -> Any:
        return self._call("get", default, key, default, version)

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        result: dict[Any, Any] = self._call("get_many", {}, keys, version)
        return result

    def set(
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> None:
        self._call("set", None, key, value, timeout, version)

    def add(
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> bool:
        added: bool = self._call("add", False, key, value, timeout, version)
        return added

    def delete(self, key: Any, version: int | None = None) -> bool:
        deleted: bool = self._call("delete", False, key, version)
        return deleted

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        self._call("delete_many", None, keys, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        value: int = self._call("incr", delta, key, delta, version)
        return value

    def touch(
        self, key: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        touched: bool = self._call("touch", False, key, timeout, version)
        return touched

    def clear(self) -> None:
        self._call("clear", None)
