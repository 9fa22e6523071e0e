"""The hand-offs between the event loop and the search, without the model or Telegram.

USERS coroutines each ask EACH questions one after another; the "model" is a sleep per batch
(it releases the GIL, as torch does). Two paths, alternately, REPEATS times:

* thread pool + QueryBatcher: ``run_in_executor`` per question, the searcher's QueryBatcher forms
  the batch among the pool's threads, each answer back with its own ``call_soon_threadsafe``
  (the bot before ``embeddings.batching.AsyncQueryBatcher``);
* AsyncQueryBatcher: the loop appends, one thread runs the batch, one ``call_soon_threadsafe``
  per batch (the bot now).

    python -m bench.handoff [--model-ms 2]

Prints questions/s, CPU ms per question (the process: hand-offs and bookkeeping, the sleeping
model costs none) and questions per batch.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from embeddings.batching import AsyncQueryBatcher, QueryBatcher

USERS, EACH, REPEATS = 20, 300, 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-ms", type=float, default=2.0, help="the sleeping model's time per batch")
    delay = p.parse_args(argv).model_ms / 1000
    calls = [0]

    def run_batch(questions: list[str], k: int, offset: int) -> list[str]:
        calls[0] += 1
        time.sleep(delay)
        return list(questions)

    async def thread_pool() -> None:
        executor, batcher, loop = ThreadPoolExecutor(64), QueryBatcher(run_batch), asyncio.get_running_loop()

        async def user(u: int) -> None:
            for i in range(EACH):
                await loop.run_in_executor(executor, partial(batcher.submit, f"{u}-{i}", 3, 0))

        await asyncio.gather(*(user(u) for u in range(USERS)))
        executor.shutdown()

    async def one_thread() -> None:
        batcher = AsyncQueryBatcher(run_batch)

        async def user(u: int) -> None:
            for i in range(EACH):
                await batcher.search(f"{u}-{i}", 3, 0)

        await asyncio.gather(*(user(u) for u in range(USERS)))
        batcher.close()

    n = USERS * EACH
    for _ in range(REPEATS):
        for name, path in (("thread pool + QueryBatcher", thread_pool), ("AsyncQueryBatcher", one_thread)):
            calls[0] = 0
            cpu, wall = time.process_time(), time.perf_counter()
            asyncio.run(path())
            print(
                f"{name}: {n / (time.perf_counter() - wall):.0f} q/s, "
                f"{1000 * (time.process_time() - cpu) / n:.3f} ms CPU/question, {n / calls[0]:.1f} questions per batch",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
