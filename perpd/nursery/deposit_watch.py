"""Direct deposits: an agent may deposit USDC into its collateral account on chain itself
(the program's ``deposit`` takes anyone's tokens for anyone's collateral), outside the
daemon's outbox; this service credits the mirror with it, once.

Every outbox row that lands moves the mirror's free balance of the agents it names as
the program moved their collateral's, so for an agent no row is in flight for, the
chain's ``free`` above the mirror's is money that came in from outside. It is read while
the agent is quiet, and credited (a ledger deposit of the difference) in a unit that
finds the agent still quiet: no row naming it unfinished, none written since the read.
After that unit the two are equal, so a second look credits nothing: exactly once,
whatever the polling, restarts or concurrent readers (decisions.md "Chain over RPC, end
to end").

Known agents (those with an account row) are polled every few seconds, 100 to a
``getMultipleAccounts``; ``GET /accounts/{id}`` picks up its agent first, which is how
an agent the daemon has never seen becomes known.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import trio
from solders.pubkey import Pubkey

from perpd import engine
from perpd.chain._errors import ChainUnavailable
from perpd.errors import ApiError
from perpd.retry import Backoff
from perpd.store import outbox
from perpd.store import queries as q
from perpd.venue import Venue

log = logging.getLogger(__name__)

POLL_S = 3.0


class DepositWatch:
    def __init__(self, venue: Venue, chain: Any, *, interval_s: float = POLL_S) -> None:
        self.venue = venue
        self.chain = chain
        self.interval_s = interval_s
        self.backoff = Backoff("deposit watch")
        self.credited = 0  # direct deposits credited since start

    async def pick_up(self, agents: Sequence[str]) -> dict[str, int]:
        """Credit what each of ``agents`` deposited on chain directly; returns the
        amounts credited by agent. `ChainUnavailable` if the chain cannot be read."""
        if not agents:
            return {}

        def quiet(conn: sqlite3.Connection) -> tuple[int, list[str]]:
            mark = outbox.last_id(conn)
            return mark, [a for a in agents if not outbox.touches(conn, a, mark)]

        mark, calm = await self.venue.read(quiet)
        client = self.chain.client
        found = await self.chain.get_accounts(
            [client.collateral_address(Pubkey.from_string(a)) for a in calm]
        )
        seen = {
            agent: client.decode_collateral(bytes(account.data)).free
            for agent, account in zip(calm, found, strict=True)
            if account is not None
        }
        if not seen:
            return {}

        def credit(conn: sqlite3.Connection, ctx: engine.Ctx) -> dict[str, int]:
            credited: dict[str, int] = {}
            for agent, free in seen.items():
                if outbox.touches(conn, agent, mark):
                    continue  # a row for it since the read: the next look decides
                extra = free - q.get_account(conn, agent).free
                if extra < 0:
                    log.error("collateral of %s: %d on chain, less than the mirror's", agent, free)
                    continue
                if extra == 0:
                    continue
                try:
                    engine.deposit(conn, ctx, agent, extra)
                except ApiError as exc:  # past a ceiling: checked before anything is written
                    log.error("direct deposit of %s not credited: %s", agent, exc.message)
                    continue
                credited[agent] = extra
            return credited

        credited: dict[str, int] = await self.venue.mutate(credit, urgent=True)
        for agent, amount in credited.items():
            log.info("direct deposit of %d micro-USDC by %s credited", amount, agent)
        self.credited += len(credited)
        return credited

    async def poll(self) -> None:
        agents = await self.venue.read(q.agent_ids)
        try:
            for start in range(0, len(agents), 100):
                await self.pick_up(agents[start : start + 100])
        except ChainUnavailable as exc:
            log.warning("deposit watch: chain unavailable (%s); next look in %ss", exc, POLL_S)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.backoff.call(self.poll)
            await trio.sleep(self.interval_s)


async def run(
    watch: DepositWatch, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The service: poll known agents' collateral accounts forever."""
    await watch.run(task_status=task_status)
