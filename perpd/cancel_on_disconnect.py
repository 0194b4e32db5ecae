"""Cancel-on-disconnect (issue 13): which agents have sockets that asked for it.

Pure bookkeeping on the trio thread: a socket that subscribed with
``cancel_on_disconnect`` joins its agent's count; when the agent's last such socket
leaves (closed, silent past its heartbeat, cut off as too slow) the socket's task cancels
every live quote of that agent in one unit of work (`perpd.engine_cancel.cancel_all_of`).
The unit looks again when it runs: a new such socket that arrived meanwhile keeps them.
"""

from __future__ import annotations

from collections import Counter


class CancelOnDisconnect:
    def __init__(self) -> None:
        self._sockets: Counter[str] = Counter()
        self.cancelled = 0  # quotes cancelled on disconnect, for statistics

    def join(self, agent_id: str) -> None:
        self._sockets[agent_id] += 1

    def leave(self, agent_id: str) -> bool:
        """One such socket of ``agent_id`` ended; True if it was the last one."""
        self._sockets[agent_id] -= 1
        if self._sockets[agent_id] > 0:
            return False
        del self._sockets[agent_id]
        return True

    def guarded(self, agent_id: str) -> bool:
        """Whether ``agent_id`` has such a socket now."""
        return self._sockets.get(agent_id, 0) > 0
