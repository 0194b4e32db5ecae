"""The tarpit: rate refusals answered late (the router's door and its TCP server)."""

from __future__ import annotations

import trio


class Tarpit:
    """Rate refusals answered late, so a caller looping on them slows itself down.

    A client that sends its next call as soon as its 429 arrives (most floods do) makes
    as many refusals a second as the daemon can write: each is cheap, but thousands
    still take the one trio thread from honest agents. Held ``delay_s`` first (well
    inside the ``Retry-After`` of at least 1 s that it carries), each looping task of
    the flood makes at most ``1 / delay_s`` calls a second, for the cost of a sleeping
    task. At most ``max_held`` are held at once (each holds a socket); past that a
    refusal goes out at once, as it did before."""

    def __init__(self, delay_s: float, max_held: int) -> None:
        self.delay_s = delay_s
        self.max_held = max_held
        self.held = 0
        self.held_total = 0

    async def hold(self) -> None:
        if self.delay_s <= 0 or self.held >= self.max_held:
            return
        self.held += 1
        self.held_total += 1
        try:
            await trio.sleep(self.delay_s)
        finally:
            self.held -= 1
