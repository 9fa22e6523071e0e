"""bot.shared_state against a real redis-server (deploy/redis.conf), started by the fixture.

Two RedisState objects on one Redis stand for two replicas of the bot.
"""

from __future__ import annotations

import asyncio
import logging
import re

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
        assert len(token) == 12  # QUERY_TOKEN_BYTES: 72 random bits
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


@pytest.fixture
def round_trips(monkeypatch):
    """Every exchange with Redis, as the list of the commands each sent (a pipeline's go in one);
    not a new connection's handshake (CLIENT SETINFO...), made once per pooled connection."""
    from redis.asyncio.connection import AbstractConnection

    sent: list[list[str]] = []
    original = AbstractConnection.send_packed_command

    async def send_packed_command(self, command, check_health=True):
        chunks = [command] if isinstance(command, (bytes, str)) else list(command)
        packed = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
        commands = [m.decode().upper() for m in re.findall(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n", packed)]
        if commands and commands[0] not in ("CLIENT", "HELLO", "AUTH", "SELECT"):
            sent.append(commands)
        return await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send_packed_command)
    return sent


async def test_the_paging_question_is_written_while_the_answer_is_sent(make_redis, round_trips):
    a, b = await replicas(make_redis().url)
    try:
        round_trips.clear()
        query = StoredQuery("Who met the Taliban in Moscow?", 3)
        token = await a.put_query(query)
        assert round_trips == []  # the answer carrying the token does not wait on Redis
        assert await a.get_query(token) == query  # a button pressed at once, on this replica
        await asyncio.gather(*a._writes)
        assert round_trips == [["SET"]]
        assert await b.get_query(token) == query  # and on another
    finally:
        await close([a, b])


async def test_a_question_costs_one_round_trip_before_its_answer_and_one_after(make_redis, round_trips):
    a, b = await replicas(make_redis().url)  # 3 per minute
    try:
        await a.claim(1, rate_key=77)  # the scripts are loaded once per process (NOSCRIPT, SCRIPT LOAD)
        await a.answered(1)
        round_trips.clear()
        assert await a.claim(2, rate_key=5) is Claim.MINE
        assert (await a.check_rate(5, update_id=2)).verdict is Verdict.ALLOW  # counted with the claim
        await a.put_query(StoredQuery("q", 3))
        assert round_trips == [["EVALSHA"]]  # claim and rate limit, one script: all the answer waits for
        await a.answered(2)
        await asyncio.gather(*a._writes)
        assert sorted(map(tuple, round_trips)) == [("EVALSHA",), ("SET",), ("SET",)]
        # the count made with the claim is the user's, on every replica
        assert (await b.check_rate(5)).verdict is Verdict.ALLOW
        assert await b.claim(3, rate_key=5) is Claim.MINE
        assert (await b.check_rate(5, update_id=3)).verdict is Verdict.ALLOW  # the 3rd of 3 per minute
        # a re-delivered update is neither claimed nor counted again
        assert await a.claim(2, rate_key=5) is Claim.ANSWERED
        assert await b.claim(3, rate_key=5) is Claim.BUSY
        await b.answered(3)
        assert (await a.check_rate(5)).verdict is Verdict.NOTICE  # the 4th
        assert (await b.check_rate(5)).verdict is Verdict.SILENT
    finally:
        await close([a, b])


async def test_a_count_made_with_the_claim_and_never_asked_for_is_taken_back(make_redis, round_trips):
    a, b = await replicas(make_redis().url)  # 3 per minute
    try:
        for update_id in (1, 2, 3):  # not questions after all (no words, a refused chat...)
            assert await a.claim(update_id, rate_key=5) is Claim.MINE
            await a.answered(update_id)
        assert await a.claim(4, rate_key=5) is Claim.MINE
        await a.release(4)  # given up (shutdown): taken back as well
        assert [c for trip in round_trips[-1:] for c in trip if c == "ZREM"] == ["ZREM"]
        verdicts = [(await state.check_rate(5)).verdict for state in (a, b, a)]
        assert verdicts == [Verdict.ALLOW] * 3  # none of the four counts above is left
        # a notice decided at the claim and never given is still due
        assert await a.claim(5, rate_key=5) is Claim.MINE
        await a.answered(5)
        assert (await b.check_rate(5)).verdict is Verdict.NOTICE
        assert (await a.check_rate(5)).verdict is Verdict.SILENT
        assert not a._counted
    finally:
        await close([a, b])


async def test_a_paging_question_written_while_redis_is_down_reaches_it_when_back(make_redis):
    redis = make_redis()
    a, b = await replicas(redis.url, probe_seconds=0.1)
    try:
        redis.stop()
        token = await a.put_query(StoredQuery("made during the outage", 3))
        await asyncio.gather(*a._writes)
        assert a.degraded and (await a.get_query(token)).question == "made during the outage"
        redis.start()
        for _ in range(100):
            if not a.degraded:
                break
            await asyncio.sleep(0.05)
        assert (await b.get_query(token)).question == "made during the outage"
    finally:
        await close([a, b])
