"""A progress bar for the index build (``citebot index``, and ``citebot serve`` when it builds the
index first): tqdm on standard error, fed by the builder's (done, total) callback; nothing when
standard error is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class ProgressBar:
    """``with ProgressBar() as progress: build(progress=progress)``."""

    def __init__(self, disable: bool = False, desc: str = "embedding") -> None:
        self.disable = disable or not sys.stderr.isatty()
        self.desc = desc
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            if self.disable:
                return
            if self.bar is None:
                from tqdm import tqdm

                # started at the builder's first report (done == 0, before any batch), so the rate
                # is texts per second of embedding, not of one batch over no time
                self.bar = tqdm(total=total, initial=done, unit="text", desc=self.desc, file=sys.stderr)
            self.bar.update(done - self.bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
