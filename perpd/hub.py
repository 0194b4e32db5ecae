"""The event hub: fans committed events out to WebSocket sessions, in ``seq`` order.

The store hands the hub each commit's events right after COMMIT (so nothing is sent
before its transaction committed), in ``seq`` order; the hub pushes each, encoded once
as its final WebSocket frame, to every live session that may see it: written to the
socket at once where it can be (`perpd.ws_wire`), else into a bounded queue.
A session that subscribes with ``since`` first catches up from the database by itself,
then turns live at a moment when it has sent exactly what the hub has dispatched: no
gap, no duplicate.
A session whose queue is full is closed (it resumes with ``since``), so one slow or
dead client never slows the hub or anyone else.
The public stream's sessions (`PublicSession`, ``GET /ws/public``) ride the same path:
they see the public projection of every event of their markets
(`perpd.public_events`), its frame too built once per event for all of them.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from perpd.public_events import PUBLIC_TYPES, public_wire
from perpd.records import Event
from perpd.store import Store
from perpd.store import queries as q
from perpd.store.public import public_events
from perpd.ws_wire import Wire, text_frame

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024  # events a session may lag behind before it is cut off
BATCH = 500
CLOSE_LAGGING = 4001  # application close code: too slow, reconnect with since=<last seq>


def visible(e: Event, agent_id: str, markets: frozenset[str]) -> bool:
    """SPEC §6: public events of subscribed markets; an agent's own events everywhere."""
    return (e.public and e.market in markets) or agent_id in e.audience


class Session:
    """One subscribed socket as the hub sees it: who, which markets, a bounded queue.

    With a `Wire` (a plain HTTP/1.1 socket) the hub writes each frame to the socket at
    once and the queue is the wire's (frames beyond the kernel's buffer); without one,
    texts wait in a memory channel for the socket's task to send them.
    """

    def __init__(self, agent_id: str, markets: frozenset[str], wire: Wire | None = None) -> None:
        self.agent_id = agent_id
        self.markets = markets
        self.wire = wire
        self.send, self.receive = trio.open_memory_channel[str](QUEUE_SIZE)
        self.closed = False  # its socket is gone: never (re-)register it
        self.cursor = 0  # last seq handed to this client (replayed or queued)
        self.lagging = trio.Event()

    def replay(self, since: int, until: int) -> Callable[..., list[Event]]:
        """The store read of the next replay batch after ``since`` (up to ``until``)."""
        return partial(
            q.events_visible_to, agent_id=self.agent_id, since=since, limit=BATCH, until=until
        )

    def text_of(self, e: Event) -> str | None:
        """``e``'s frame text for this client, None if it may not see it."""
        return e.wire if visible(e, self.agent_id, self.markets) else None

    def offer(self, e: Event, text: str, frame: bytes = b"") -> None:
        """Send or queue ``e`` unless already sent; a full queue marks it as lagging."""
        if e.seq <= self.cursor or self.lagging.is_set() or self.closed:
            return
        if self.wire is not None:
            if not self.wire.offer(frame or text_frame(text.encode()), QUEUE_SIZE):
                if self.wire.closing or self.wire.broken:
                    self.closed = True
                else:
                    self.lagging.set()
                return
            self.cursor = e.seq
            return
        try:
            self.send.send_nowait(text)
        except trio.WouldBlock:
            self.lagging.set()
            return
        except trio.ClosedResourceError:  # a dead client must never take the hub down
            self.closed = True
            return
        self.cursor = e.seq


class PublicSession(Session):
    """A socket of the public stream (``GET /ws/public``): no agent, the public events
    of its markets and the public projection of the private ones
    (`perpd.public_events`)."""

    def __init__(self, markets: frozenset[str], wire: Wire | None = None) -> None:
        super().__init__("", markets, wire)

    def replay(self, since: int, until: int) -> Callable[..., list[Event]]:
        return partial(
            public_events,
            markets=sorted(self.markets),
            types=PUBLIC_TYPES,
            since=since,
            limit=BATCH,
            until=until,
        )

    def text_of(self, e: Event) -> str | None:
        return public_wire(e) if e.market in self.markets else None


class Hub:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._inbox: deque[Event] = deque()
        self._arrived = trio.Event()
        # every event <= dispatched was offered to live sessions; later ones are in the inbox
        self.dispatched = store.add_listener(self._committed)
        self._by_market: dict[str, set[Session]] = defaultdict(set)
        self._by_agent: dict[str, set[Session]] = defaultdict(set)
        self._public: dict[str, set[Session]] = defaultdict(set)  # public stream, by market
        self.sessions = 0
        self._public_live: set[Session] = set()
        self.cut_off = 0

    def _add(self, s: Session) -> None:
        if isinstance(s, PublicSession):
            self._public_live.add(s)
            for m in s.markets:
                self._public[m].add(s)
            return
        self.sessions += 1
        self._by_agent[s.agent_id].add(s)
        for m in s.markets:
            self._by_market[m].add(s)

    def remove(self, s: Session) -> None:
        """Forget ``s`` (idempotent); a replay still running for it will not register it."""
        s.closed = True
        if isinstance(s, PublicSession):
            if s in self._public_live:
                self._public_live.discard(s)
                for m in s.markets:
                    self._public[m].discard(s)
        elif s in self._by_agent.get(s.agent_id, ()):
            self.sessions -= 1
            self._by_agent[s.agent_id].discard(s)
            for m in s.markets:
                self._by_market[m].discard(s)
        s.send.close()

    async def catch_up(
        self, s: Session, since: int, deliver: Callable[[str], Awaitable[None]]
    ) -> None:
        """Replay what ``s`` may see after ``since`` via ``deliver``, then make it live."""
        s.cursor = since
        while True:
            target = self.dispatched
            if s.closed:
                return
            if s.cursor >= target:
                self._add(s)  # no await since the check: the hub cannot slip in between
                return
            events = await self._store.read(s.replay(s.cursor, target))
            for e in events:
                text = s.text_of(e)
                if text is not None:
                    await deliver(text)
            s.cursor = events[-1].seq if len(events) == BATCH else target

    def dispatch(self, events: list[Event]) -> None:
        """Offer each event to the live sessions that may see it (never blocks)."""
        for e in events:
            targets: set[Session] = set()
            if e.public and e.market is not None:
                targets |= self._by_market.get(e.market, set())
            for agent in e.audience:
                targets |= self._by_agent.get(agent, set())
            text: str | None = None
            frame = b""
            if targets:  # a funding tick's events mostly have no live reader: no text
                text = e.wire
                frame = text_frame(text.encode())  # one frame for every socket
                for s in targets:
                    s.offer(e, text, frame)
            public = self._public.get(e.market) if e.market is not None else None
            if public:  # the public stream's own text, built once for all its sockets
                ptext = public_wire(e)
                if ptext is not None:
                    pframe = frame if ptext is text else text_frame(ptext.encode())
                    for s in public:
                        s.offer(e, ptext, pframe)
            self.dispatched = e.seq

    def _committed(self, events: list[Event]) -> None:
        """Store listener: queue the committed events for the hub's task (never blocks)."""
        self._inbox.extend(events)
        self._arrived.set()

    async def wait_committed(self) -> list[Event]:
        """Block until events committed since the last call; take them, in ``seq`` order.

        Cancelling it is safe: nothing is taken from the inbox before the wait ends.
        """
        await self._arrived.wait()
        self._arrived = trio.Event()
        events = list(self._inbox)
        self._inbox.clear()
        return events

    def statistics(self) -> dict[str, int]:
        return {
            "sessions": self.sessions,
            "public_sessions": len(self._public_live),
            "dispatched": self.dispatched,
            "cut_off": self.cut_off,
        }
