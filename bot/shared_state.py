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

Round trips: a private question costs one before its answer (:meth:`RedisState.claim` runs one
script that claims the update and counts it against its user's rate limit; the handler's
:meth:`~RedisState.check_rate` takes that decision without asking Redis again), the paging
question behind its buttons is written while the answer is being sent (:meth:`~RedisState.put_query`
returns its token at once), and the answered mark is made after the answer (tests/test_shared_state.py
counts them; bench/README.md, section 7, times them).

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
QUERY_TOKEN_BYTES = 9  # paging tokens: 12 characters of callback data (at most 64 bytes), 72 random bits


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

    async def claim(self, update_id: int, rate_key: int | None = None) -> Claim:
        """Claim an update. With ``rate_key`` (the update looks like a question of that user:
        :func:`bot.handlers.question_rate_key`), a claimed update is also counted against the
        rate limit in the same step; the handler's :meth:`check_rate` then takes that decision,
        and one it never asks for is taken back when the update is answered or released."""
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

    async def check_rate(self, key: int, update_id: int | None = None) -> Decision:
        """Count one question of user ``key`` (asked in update ``update_id``) against the rate limit."""
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

    async def claim(self, update_id: int, rate_key: int | None = None) -> Claim:
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

    async def check_rate(self, key: int, update_id: int | None = None) -> Decision:
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
_RATE_FUNCTION = """
local function rate(events, noticed, limit, window, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', events, '-inf', now - window)
  if redis.call('ZCARD', events) < limit then
    redis.call('ZADD', events, now, member)
    redis.call('PEXPIRE', events, window)
    redis.call('DEL', noticed)
    return {0, 0}
  end
  local oldest = tonumber(redis.call('ZRANGE', events, 0, 0, 'WITHSCORES')[2])
  local retry = oldest + window - now
  if redis.call('SET', noticed, '1', 'NX', 'PX', window) then return {1, retry} end
  return {2, retry}
end
"""
_RATE_SCRIPT = _RATE_FUNCTION + "return rate(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])"
# Claiming an update, one round trip: KEYS update [, events, noticed]; ARGV owner, lease ms [, limit,
# window ms, member]. Claimed: {1} or, with the rate keys, {1, verdict, retry ms} (counted as by
# _RATE_SCRIPT); not claimed: {0, holder} (another replica's id, or "answered").
_CLAIM_SCRIPT = (
    _RATE_FUNCTION
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if #KEYS == 1 then return {1} end
  local decision = rate(KEYS[2], KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5])
  return {1, decision[1], decision[2]}
end
return {0, redis.call('GET', KEYS[1])}
"""
)
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
        self._writing: dict[str, StoredQuery] = {}  # paging questions being written (put_query)
        self._writes: set[asyncio.Task] = set()
        self._counted: dict[int, _Counted] = {}  # updates counted at their claim, by update id

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
            for name, text in (
                ("claim", _CLAIM_SCRIPT),
                ("rate", _RATE_SCRIPT),
                ("renew", _RENEW_SCRIPT),
                ("release", _RELEASE_SCRIPT),
            )
        }
        try:
            await self.redis.ping()
            log.info("shared state in Redis at %s", self.where)
        except Exception as exc:
            self._went_down(exc)

    async def close(self) -> None:
        if self._writes:  # the paging questions on their way to Redis get there first
            await asyncio.wait(set(self._writes), timeout=2 * self.timeout)
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

    async def claim(self, update_id: int, rate_key: int | None = None) -> Claim:
        keys: list[str] = [self._key("update", update_id)]
        args: list[Any] = [self.owner, self.lease_ms]
        member = ""
        if rate_key is not None:
            member = _member()
            keys += [self._key("rate", rate_key), self._key("noticed", rate_key)]
            args += [self.limit, 60_000, member]
        ok, result = await self._call(lambda: self._scripts["claim"](keys=keys, args=args))
        if not ok:
            return await self.local.claim(update_id)
        if int(result[0]) != 1:
            return Claim.ANSWERED if result[1] == _DONE else Claim.BUSY
        if rate_key is not None:
            decision = Decision(_VERDICTS[int(result[1])], float(result[2]) / 1000.0)
            self._counted[update_id] = _Counted(rate_key, member, decision)
        return Claim.MINE

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

        async def mark() -> None:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(key, _DONE, ex=ANSWERED_SECONDS)
            self._uncount(pipe, update_id)
            await pipe.execute()

        ok, _ = await self._call(mark)
        if not ok:
            self._pending_done.add(update_id)

    async def release(self, update_id: int) -> None:
        await self.local.release(update_id)
        key = self._key("update", update_id)

        async def give_up() -> None:  # rare (a shutdown mid-answer): two round trips are fine
            await self._scripts["release"](keys=[key], args=[self.owner])
            pipe = self.redis.pipeline(transaction=False)
            self._uncount(pipe, update_id)
            if len(pipe):
                await pipe.execute()

        await self._call(give_up)

    def _uncount(self, pipe: Any, update_id: int) -> None:
        """Take back, in ``pipe``, the rate-limit count made when ``update_id`` was claimed, if
        its handler never asked for it (not a question after all: a refused chat, no words...)."""
        counted = self._counted.pop(update_id, None)
        if counted is None:
            return
        if counted.decision.verdict is Verdict.ALLOW:
            pipe.zrem(self._key("rate", counted.key), counted.member)
        elif counted.decision.verdict is Verdict.NOTICE:  # the notice was not given: it still is due
            pipe.delete(self._key("noticed", counted.key))

    # ------------------------------------------------------------------------------- per user

    async def check_rate(self, key: int, update_id: int | None = None) -> Decision:
        if update_id is not None:
            counted = self._counted.get(update_id)
            if counted is not None and counted.key == key:  # counted when the update was claimed
                del self._counted[update_id]
                return counted.decision
        keys = [self._key("rate", key), self._key("noticed", key)]
        member = _member()
        ok, result = await self._call(lambda: self._scripts["rate"](keys=keys, args=[self.limit, 60_000, member]))
        if not ok:
            return await self.local.check_rate(key)
        verdict, retry_ms = int(result[0]), float(result[1])
        return Decision(_VERDICTS[verdict], retry_ms / 1000.0)

    async def put_query(self, query: StoredQuery) -> str:
        """The token at once; the question is written to Redis by a task of its own, while the
        answer that carries the token is being sent (one Redis round trip fewer before the answer).
        The write is a ~0.2 ms exchange on the network next to the Bot API's; a button pressed
        before it lands finds the question in :attr:`_writing` on this replica, or is asked again
        (:data:`GET_QUERY_RETRIES`) on another."""
        token = secrets.token_urlsafe(QUERY_TOKEN_BYTES)
        self._writing[token] = query
        task = asyncio.get_running_loop().create_task(self._write_query(token, query), name="citebot-put-query")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return token

    async def _write_query(self, token: str, query: StoredQuery) -> None:
        key = self._key("query", token)
        try:
            ok, stored = await self._call(lambda: self.redis.set(key, _dump_query(query), ex=QUERY_SECONDS, nx=True))
            if not ok:  # Redis unreachable: kept here, written when it is back
                self.local.queries.set(token, query)
                self._pending_queries[token] = query
            elif not stored:  # 72 random bits: two live tokens never meet; should it happen, say so
                log.error("paging token %s already taken in Redis: its button may show another question", token)
        finally:
            self._writing.pop(token, None)

    async def get_query(self, token: str) -> StoredQuery | None:
        writing = self._writing.get(token)  # made here, still on its way to Redis
        if writing is not None:
            return writing
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


@dataclasses.dataclass(frozen=True)
class _Counted:
    """A question counted against the rate limit when its update was claimed."""

    key: int  # the user
    member: str  # its entry in the user's window
    decision: Decision


def _member() -> str:
    """A unique entry of a user's rate-limit window."""
    return f"{time.time_ns()}-{secrets.token_hex(4)}"


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
