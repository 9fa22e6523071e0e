"""bot.shared_state against a real redis-server (deploy/redis.conf), started by the fixture.

Two RedisState objects on one Redis stand for two replicas of the bot.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.ratelimit import Verdict
from bot.shared_state import Claim, LocalState, RedisState, open_state
from bot.state import StoredQuery

pytestmark = pytest.mark.asyncio


async def replicas(url: str, n: int = 2, **kwargs) -> list[RedisState]:
    states = [RedisState(url, 3, bot_id=42, **kwargs) for _ in range(n)]
    for state in states:
        await state.start()
    return states


async def close(states) -> None:
    for state in states:
        await state.close()


async def test_an_update_is_claimed_once_and_never_answered_again(make_redis):
    a, b = await replicas(make_redis().url)
    try:
        assert await a.claim(1) is Claim.MINE
        assert await b.claim(1) is Claim.BUSY  # a holds the lease
        assert await a.claim(1) is Claim.BUSY  # a re-delivery to a itself while it answers
        await a.answered(1)
        assert await b.claim(1) is Claim.ANSWERED
        assert await a.claim(1) is Claim.ANSWERED
        assert await b.claim(2) is Claim.MINE  # other updates are independent
    finally:
        await close([a, b])


async def test_a_dead_replicas_lease_runs_out_and_another_answers(make_redis):
    a, b = await replicas(make_redis().url, lease_seconds=0.3)
    try:
        assert await a.claim(7) is Claim.MINE
        await a.close()  # a dies mid-answer: it never marks the update answered
        assert await b.claim(7) is Claim.BUSY
        await asyncio.sleep(0.45)
        assert await b.claim(7) is Claim.MINE
        await b.answered(7)
        assert await b.claim(7) is Claim.ANSWERED
    finally:
        await close([b])


async def test_a_renewed_lease_outlives_its_length_and_release_frees_it(make_redis):
    a, b = await replicas(make_redis().url, lease_seconds=0.3)
    try:
        assert await a.claim(8) is Claim.MINE
        for _ in range(4):
            await asyncio.sleep(0.15)
            await a.renew(8)
        assert await b.claim(8) is Claim.BUSY  # 0.6 s later, still a's
        assert not await b.renew(8)  # renewing another replica's lease does nothing
        await a.release(8)
        assert await b.claim(8) is Claim.MINE
    finally:
        await close([a, b])


async def test_a_stalled_replica_keeps_its_lease_unless_another_took_it(make_redis):
    a, b = await replicas(make_redis().url, lease_seconds=0.3)
    try:
        assert await a.claim(9) is Claim.MINE
        await asyncio.sleep(0.45)  # a stalls past its lease; nobody claims the update meanwhile
        assert await a.renew(9)  # alive again: the heartbeat takes the lease back
        assert await b.claim(9) is Claim.BUSY
        await asyncio.sleep(0.45)
        assert await b.claim(9) is Claim.MINE  # this time a re-delivery reached b first
        assert not await a.renew(9)  # a learns that b holds it now
        assert await b.renew(9)
        await b.answered(9)
        assert not await a.renew(9)  # answered: nobody takes it again
        assert await a.claim(9) is Claim.ANSWERED
    finally:
        await close([a, b])


async def test_rate_limit_is_shared_by_replicas(make_redis):
    a, b = await replicas(make_redis().url)  # 3 per minute
    try:
        verdicts = [(await state.check_rate(5)).verdict for state in (a, b, a)]
        assert verdicts == [Verdict.ALLOW] * 3
        notice = await b.check_rate(5)
        assert notice.verdict is Verdict.NOTICE and 0 < notice.retry_in <= 60
        assert (await a.check_rate(5)).verdict is Verdict.SILENT  # told once, on any replica
        assert (await a.check_rate(6)).verdict is Verdict.ALLOW  # another user
    finally:
        await close([a, b])


async def test_a_button_made_on_one_replica_works_on_another(make_redis):
    a, b = await replicas(make_redis().url)
    try:
        query = StoredQuery("Who met the Taliban in Moscow?", 3, cut=True, compact=False)
        token = await a.put_query(query)
        assert len(token) == 8
        assert await b.get_query(token) == query
        assert await b.get_query("AAAAAAAA") is None
        assert await a.first_refusal(99) is True
        assert await b.first_refusal(99) is False
    finally:
        await close([a, b])


async def test_unreachable_redis_degrades_with_one_log_line_and_recovers(make_redis, caplog):
    redis = make_redis()
    a, b = await replicas(redis.url, probe_seconds=0.1)
    try:
        token_before = await a.put_query(StoredQuery("before", 3))
        await a.claim(1)
        await a.answered(1)
        redis.stop()
        with caplog.at_level(logging.INFO, logger="bot.shared_state"):
            # degraded: everything still works, on this replica's own state
            assert await a.claim(2) is Claim.MINE
            await a.answered(2)
            assert await a.claim(2) is Claim.ANSWERED  # locally remembered
            token = await a.put_query(StoredQuery("during the outage", 3))
            assert (await a.get_query(token)).question == "during the outage"
            for _ in range(5):
                await a.check_rate(1)  # local limits: 3 per minute
            assert (await a.check_rate(1)).verdict is Verdict.SILENT
            down = [r for r in caplog.records if "unreachable" in r.getMessage()]
            assert len(down) == 1 and down[0].levelno == logging.ERROR
            assert "Redis at redis://127.0.0.1:" in down[0].getMessage()
            redis.start()
            for _ in range(100):
                if not a.degraded:
                    break
                await asyncio.sleep(0.05)
            assert not a.degraded
            back = [r for r in caplog.records if "reachable again" in r.getMessage()]
            assert len(back) == 1
        # what was made during the outage is now shared; what was there before survived the restart
        assert (await b.get_query(token)).question == "during the outage"
        assert (await b.get_query(token_before)).question == "before"
        assert await b.claim(2) is Claim.ANSWERED
        assert await b.claim(1) is Claim.ANSWERED
        assert await b.claim(3) is Claim.MINE  # de-duplication is back
        assert await a.claim(3) is Claim.BUSY
    finally:
        await close([a, b])


async def test_local_state_and_open_state():
    local = open_state(None, 2)
    assert isinstance(local, LocalState) and not local.shared
    assert await local.claim(1) is Claim.MINE
    assert await local.claim(1) is Claim.BUSY
    await local.answered(1)
    assert await local.claim(1) is Claim.ANSWERED
    token = await local.put_query(StoredQuery("q", 3))
    assert (await local.get_query(token)).question == "q"
    assert isinstance(open_state("redis://127.0.0.1:1/0", 2), RedisState)
    with pytest.raises(ValueError, match="unsupported scheme"):
        open_state("http://127.0.0.1/", 2)
