"""The bot's per-user and per-update state, in this process or shared by every replica in Redis.

One small interface, :class:`SharedState`, with two implementations chosen by
``telegram.state_url`` (:func:`open_state`):

* :class:`LocalState` (no URL; one process, as with long polling): the rate limiter, the questions
  behind "More results" buttons and the claims of updates live in this process's memory;
* :class:`RedisState` (``redis://host:port/db``; N webhook replicas behind a load balancer): all of
  it lives in Redis, so a replica keeps no per-user state of its own. A button pressed on a message
  that replica A answered works on replica B, and a user's rate limit counts on every replica.

Update de-duplication (Telegram re-delivers an update whose webhook request failed or timed out):
a replica *claims* an ``update_id`` before answering it (``SET NX PX``: a lease of
``telegram.update_lease_seconds``, renewed while the answer is being made) and marks it
*answered* once the answer is sent. A re-delivered update that is answered is acknowledged and
not answered again; one still leased by another replica is refused (the webhook answers 503 and
Telegram delivers it again later); one whose replica died loses its lease and is answered by the
next replica that receives it. The one window no design closes: the answer was sent and the
replica died before marking it answered; the update is then answered twice (docs/deploy.md).

When Redis cannot be reached, questions are still answered, degraded: each replica claims,
limits and pages on its own (:class:`LocalState`), one ERROR line says so, and a probe every
:data:`PROBE_SECONDS` notices when Redis is back (one line again); the paging tokens and the
"answered" marks made meanwhile are then written to Redis, so buttons made during the outage work
on every replica afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from .ratelimit import Decision, RateLimiter, Verdict
from .state import QueryCache, RecentSet, StoredQuery

log = logging.getLogger(__name__)

PROBE_SECONDS = 0.5  # while Redis is unreachable, how often a replica checks whether it is back
REDIS_TIMEOUT_SECONDS = 0.5  # a Redis call slower than this counts as Redis being unreachable
ANSWERED_SECONDS = 26 * 3600  # Telegram keeps an undelivered update for 24 h: remember answers longer
QUERY_SECONDS = 7 * 24 * 3600  # how long a "More results" button keeps working
REFUSED_SECONDS = 30 * 24 * 3600  # how long a refused private chat is remembered (told once)
GET_QUERY_RETRIES = (0.25, 0.5, 1.0)  # seconds between the tries of an unknown paging token
LOCAL_ANSWERED = 100_000  # update ids remembered in memory (LocalState, and during an outage)


class Claim(enum.Enum):
    """What to do with an update that arrived: answer it, or not."""

    MINE = "mine"  # claimed: answer it, then call :meth:`SharedState.answered`
    ANSWERED = "answered"  # already answered (a re-delivery): acknowledge it, answer nothing
    BUSY = "busy"  # another replica holds its lease: refuse it, Telegram will deliver it again


class SharedState:
    """What the handlers and the webhook server ask of the state (all coroutines)."""

    shared = False  # whether other replicas see this state

    async def start(self) -> None:
        """Connect (called on the event loop that will use the state)."""

    async def close(self) -> None:
        """Disconnect."""

    async def claim(self, update_id: int) -> Claim:
        raise NotImplementedError

    async def renew(self, update_id: int) -> bool:
        """Extend the lease of an update being answered; False when another replica holds it now
        (this one stalled past its lease and the re-delivered update was claimed elsewhere)."""
        return True

    async def answered(self, update_id: int) -> None:
        """Mark an update answered: it is never answered again."""
        raise NotImplementedError

    async def release(self, update_id: int) -> None:
        """Give up a claim without answering (the next delivery may be answered at once)."""

    async def check_rate(self, key: int) -> Decision:
        """Count one question of user ``key`` against the rate limit."""
        raise NotImplementedError

    async def put_query(self, query: StoredQuery) -> str:
        """Store the question behind a "More results" button; returns its short token."""
        raise NotImplementedError

    async def get_query(self, token: str) -> StoredQuery | None:
        raise NotImplementedError

    async def first_refusal(self, chat_id: int) -> bool:
        """True the first time a private chat outside ``allowed_chats`` is refused."""
        raise NotImplementedError


class LocalState(SharedState):
    """Everything in this process: one bot, or a replica while Redis is unreachable."""

    def __init__(self, rate_limit_per_minute: int, *, queries: int = 5000) -> None:
        self.limiter = RateLimiter(rate_limit_per_minute, 60.0)
        self.queries: QueryCache[StoredQuery] = QueryCache(queries)
        self.refused = RecentSet(10_000)
        self.done = RecentSet(LOCAL_ANSWERED)
        self.in_progress: set[int] = set()

    async def claim(self, update_id: int) -> Claim:
        if update_id in self.done:
            return Claim.ANSWERED
        if update_id in self.in_progress:
            return Claim.BUSY
        self.in_progress.add(update_id)
        return Claim.MINE

    async def answered(self, update_id: int) -> None:
        self.in_progress.discard(update_id)
        self.done.add(update_id)

    async def release(self, update_id: int) -> None:
        self.in_progress.discard(update_id)

    async def check_rate(self, key: int) -> Decision:
        return self.limiter.check(key)

    async def put_query(self, query: StoredQuery) -> str:
        return self.queries.put(query)

    async def get_query(self, token: str) -> StoredQuery | None:
        return self.queries.get(token)

    async def first_refusal(self, chat_id: int) -> bool:
        return self.refused.add(chat_id)


# Atomic steps, run inside Redis. The rate limit is the same sliding window as RateLimiter, timed
# by Redis's clock (replicas' clocks may differ): KEYS events (sorted set), noticed flag;
# ARGV limit, window ms, a unique member. Returns {verdict 0 allow / 1 notice / 2 silent, retry ms}.
_RATE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  redis.call('DEL', KEYS[2])
  return {0, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
local retry = oldest + window - now
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', window) then return {1, retry} end
return {2, retry}
"""
# Renewing a lease: extended while it is ours; taken again when it ran out and nobody else took
# it (a replica that stalled longer than its lease, but is alive and answering, keeps the update);
# otherwise who holds it now (another replica, or "answered").
_RENEW_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return holder
"""
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_DONE = "answered"
_VERDICTS = (Verdict.ALLOW, Verdict.NOTICE, Verdict.SILENT)


def describe_url(url: str) -> str:
    """``redis://host:port/db`` without any password, for log lines."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"


class RedisState(SharedState):
    """The state in Redis, shared by every replica of one bot (keys ``citebot:<bot id>:...``).

    Falls back to a :class:`LocalState` while Redis is unreachable (see the module docstring)."""

    shared = True

    def __init__(
        self,
        url: str,
        rate_limit_per_minute: int,
        *,
        bot_id: int | str = 0,
        lease_seconds: float = 10.0,
        timeout: float = REDIS_TIMEOUT_SECONDS,
        probe_seconds: float = PROBE_SECONDS,
    ) -> None:
        self.url = url
        self.where = describe_url(url)
        self.limit = rate_limit_per_minute
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.timeout = timeout
        self.probe_seconds = probe_seconds
        self.prefix = f"citebot:{bot_id}:"
        self.owner = secrets.token_hex(8)  # this replica, as the holder of a lease
        self.local = LocalState(rate_limit_per_minute)
        self.redis: Any = None
        self.degraded = False
        self.degraded_since: float | None = None
        self.outages = 0
        self._probe: asyncio.Task | None = None
        self._pending_queries: dict[str, StoredQuery] = {}  # made while degraded: written when Redis is back
        self._pending_done: set[int] = set()
        self._scripts: dict[str, Any] = {}

    # ------------------------------------------------------------------------------ connection

    async def start(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # one immediate retry (a pooled connection closed by a Redis restart fails once), no
        # backoff: an unreachable Redis must cost one quick failure, after which the replica
        # answers on its own until the probe sees Redis again
        self.redis = aioredis.Redis.from_url(
            self.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 1),
            retry_on_timeout=False,
            decode_responses=True,
            max_connections=256,
        )
        self._scripts = {
            name: self.redis.register_script(text)
            for name, text in (("rate", _RATE_SCRIPT), ("renew", _RENEW_SCRIPT), ("release", _RELEASE_SCRIPT))
        }
        try:
            await self.redis.ping()
            log.info("shared state in Redis at %s", self.where)
        except Exception as exc:
            self._went_down(exc)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
            self._probe = None
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
            self.redis = None

    def _went_down(self, exc: BaseException) -> None:
        if self.degraded:
            return
        self.degraded, self.degraded_since = True, time.monotonic()
        self.outages += 1
        log.error(
            "shared state unreachable (Redis at %s: %s): answering without de-duplication, with this "
            "replica's own rate limits and paging, until it is back",
            self.where,
            _reason(exc),
        )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._wait_for_redis(), name="citebot-redis-probe")

    async def _wait_for_redis(self) -> None:
        while self.degraded:
            await asyncio.sleep(self.probe_seconds)
            try:
                await self.redis.ping()
                await self._flush_pending()
            except Exception:  # still down
                continue
            seconds = time.monotonic() - (self.degraded_since or time.monotonic())
            self.degraded, self.degraded_since = False, None
            log.warning(
                "shared state reachable again (Redis at %s) after %.1f s: de-duplication and shared rate limits resume",
                self.where,
                seconds,
            )

    async def _flush_pending(self) -> None:
        """Write what was made while Redis was unreachable: paging tokens and answered marks."""
        if not self._pending_queries and not self._pending_done:
            return
        pipe = self.redis.pipeline(transaction=False)
        for token, query in self._pending_queries.items():
            pipe.set(self._key("query", token), _dump_query(query), ex=QUERY_SECONDS, nx=True)
        for update_id in self._pending_done:
            pipe.set(self._key("update", update_id), _DONE, ex=ANSWERED_SECONDS)
        await pipe.execute()
        self._pending_queries.clear()
        self._pending_done.clear()

    def _key(self, kind: str, name: object) -> str:
        return f"{self.prefix}{kind}:{name}"

    async def _call(self, make: Any) -> tuple[bool, Any]:
        """(True, result) of ``await make()`` on Redis, or (False, None) when Redis is unreachable
        (then the state is degraded until the probe sees Redis again)."""
        if self.degraded or self.redis is None:
            return False, None
        try:
            return True, await make()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ConnectionError, TimeoutError, a Redis that is loading...
            self._went_down(exc)
            return False, None

    # ---------------------------------------------------------------------------------- updates

    async def claim(self, update_id: int) -> Claim:
        key = self._key("update", update_id)
        ok, claimed = await self._call(lambda: self.redis.set(key, self.owner, nx=True, px=self.lease_ms))
        if not ok:
            return await self.local.claim(update_id)
        if claimed:
            return Claim.MINE
        ok, holder = await self._call(lambda: self.redis.get(key))
        if not ok:
            return await self.local.claim(update_id)
        if holder == _DONE:
            return Claim.ANSWERED
        if holder is None:  # the lease ran out just now: try once more
            ok, claimed = await self._call(lambda: self.redis.set(key, self.owner, nx=True, px=self.lease_ms))
            return Claim.MINE if ok and claimed else Claim.BUSY
        return Claim.BUSY

    async def renew(self, update_id: int) -> bool:
        key = self._key("update", update_id)
        ok, kept = await self._call(lambda: self._scripts["renew"](keys=[key], args=[self.owner, self.lease_ms]))
        if not ok or isinstance(kept, int):  # while Redis is unreachable nobody can claim it there either
            return True
        log.warning(
            "update %s: %s while this replica was still answering it",
            update_id,
            "marked answered" if kept == _DONE else f"claimed by another replica ({kept})",
        )
        return False

    async def answered(self, update_id: int) -> None:
        await self.local.answered(update_id)
        key = self._key("update", update_id)
        ok, _ = await self._call(lambda: self.redis.set(key, _DONE, ex=ANSWERED_SECONDS))
        if not ok:
            self._pending_done.add(update_id)

    async def release(self, update_id: int) -> None:
        await self.local.release(update_id)
        key = self._key("update", update_id)
        await self._call(lambda: self._scripts["release"](keys=[key], args=[self.owner]))

    # ------------------------------------------------------------------------------- per user

    async def check_rate(self, key: int) -> Decision:
        keys = [self._key("rate", key), self._key("noticed", key)]
        member = f"{time.time_ns()}-{secrets.token_hex(4)}"
        ok, result = await self._call(lambda: self._scripts["rate"](keys=keys, args=[self.limit, 60_000, member]))
        if not ok:
            return await self.local.check_rate(key)
        verdict, retry_ms = int(result[0]), float(result[1])
        return Decision(_VERDICTS[verdict], retry_ms / 1000.0)

    async def put_query(self, query: StoredQuery) -> str:
        data = _dump_query(query)
        for _ in range(5):
            token = secrets.token_urlsafe(6)  # 8 characters: callback data is at most 64 bytes
            key = self._key("query", token)
            ok, stored = await self._call(lambda key=key: self.redis.set(key, data, ex=QUERY_SECONDS, nx=True))
            if not ok:
                token = await self.local.put_query(query)
                self._pending_queries[token] = query
                return token
            if stored:
                return token
        raise RuntimeError("could not find a free query token")  # 48 random bits, five times: never

    async def get_query(self, token: str) -> StoredQuery | None:
        # A token made by another replica while Redis was unreachable reaches Redis when that
        # replica sees Redis again (within PROBE_SECONDS of its return): a miss is asked again
        # for a little while before the button is called expired.
        for wait in (*GET_QUERY_RETRIES, None):
            ok, data = await self._call(lambda: self.redis.get(self._key("query", token)))
            if ok and data is not None:
                return _load_query(data)
            local = await self.local.get_query(token)  # made here while Redis was unreachable
            if local is not None or wait is None:
                return local
            await asyncio.sleep(wait)
        return None

    async def first_refusal(self, chat_id: int) -> bool:
        key = self._key("refused", chat_id)
        ok, fresh = await self._call(lambda: self.redis.set(key, "1", ex=REFUSED_SECONDS, nx=True))
        if not ok:
            return await self.local.first_refusal(chat_id)
        return bool(fresh)


def _dump_query(query: StoredQuery) -> str:
    return json.dumps(dataclasses.asdict(query), ensure_ascii=False)


def _load_query(data: str) -> StoredQuery | None:
    try:
        fields = json.loads(data)
        known = {f.name for f in dataclasses.fields(StoredQuery)}
        return StoredQuery(**{k: v for k, v in fields.items() if k in known})
    except (ValueError, TypeError):
        log.warning("unusable stored query in Redis: ignored")
        return None


def _reason(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_state(
    state_url: str | None, rate_limit_per_minute: int, *, bot_id: int | str = 0, lease_seconds: float = 10.0
) -> SharedState:
    """The state ``telegram.state_url`` asks for: Redis for ``redis://``/``rediss://``/``unix://``
    URLs, this process's memory when it is empty."""
    if not state_url:
        return LocalState(rate_limit_per_minute)
    if urlsplit(state_url).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"telegram.state_url: unsupported scheme in {describe_url(state_url)!r} (redis://host:port/db)"
        )
    return RedisState(state_url, rate_limit_per_minute, bot_id=bot_id, lease_seconds=lease_seconds)
