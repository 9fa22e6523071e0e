"""bot/ordering.py: replies to one chat in the order of the questions."""

import asyncio

import pytest

from bot.ordering import ChatOrder

pytestmark = pytest.mark.asyncio


async def test_replies_follow_the_order_of_the_turns_within_a_chat_not_across_chats():
    order = ChatOrder()
    sent = []

    async def question(chat, name, delay):
        async with order.turn(chat) as turn:
            await asyncio.sleep(delay)  # the search: later questions may finish first
            await turn.ready()
            sent.append(name)

    await asyncio.gather(
        question("a", "a1", 0.3), question("a", "a2", 0.0), question("b", "b1", 0.1), question("a", "a3", 0.1)
    )
    assert [n for n in sent if n.startswith("a")] == ["a1", "a2", "a3"]
    assert sent.index("b1") < sent.index("a1")  # another chat does not wait
    assert len(order) == 0  # nothing kept once the chat is quiet


async def test_a_failed_turn_lets_the_next_go_and_a_wedged_one_is_waited_for_a_bounded_time():
    order = ChatOrder(max_wait=0.2)
    first = order.turn("a")
    second = order.turn("a")
    first.finish()  # e.g. the handler raised: finish() runs in its finally
    await asyncio.wait_for(second.ready(), 1)
    second.finish()
    wedged = order.turn("a")
    late = order.turn("a")
    started = asyncio.get_running_loop().time()
    await late.ready()
    assert 0.15 < asyncio.get_running_loop().time() - started < 1.0
    wedged.finish()
    late.finish()
    assert len(order) == 0
