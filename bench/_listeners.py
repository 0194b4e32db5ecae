"""Many subscribed sockets that cost their client almost nothing per message.

A fan-out figure should be the daemon's: 1,000 trio-websocket clients in the bench's
own process spend more CPU parsing one broadcast than the daemon spends sending it, on
the same two cores. Here each socket logs in and subscribes with wsproto over a plain
blocking socket, then one epoll loop in a thread only watches the raw bytes for the
awaited event's type (server frames are unmasked, so the JSON text is on the wire).
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

SOCKETS_PER_ADDRESS = 50  # under the daemon's per-address handshake burst (64)


class Listeners:
    """``n`` sockets, each logged in as its own agent and subscribed to ``markets``;
    socket ``i`` connects from loopback address 127.0.0.(2 + i // 50), as many agents
    come from many hosts (the daemon limits handshakes per address)."""

    def __init__(self, port: int, n: int, auth: Callable[[], str], markets: list[str]) -> None:
        self.socks: list[socket.socket] = []
        for i in range(n):
            source = f"127.0.0.{2 + i // SOCKETS_PER_ADDRESS}"
            sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
            ws = WSConnection(ConnectionType.CLIENT)
            sock.sendall(ws.send(Request(host=f"127.0.0.1:{port}", target="/ws")))
            self._await(sock, ws, AcceptConnection)
            sock.sendall(ws.send(TextMessage(auth())))
            reply = self._await(sock, ws, TextMessage)
            if json.loads(reply.data)["type"] != "auth_ok":
                raise RuntimeError(f"login refused: {reply.data}")
            sub = json.dumps({"type": "subscribe", "markets": markets})
            sock.sendall(ws.send(TextMessage(sub)))
            sock.setblocking(False)
            self.socks.append(sock)

    @staticmethod
    def _await(sock: socket.socket, ws: WSConnection, kind: type) -> object:
        while True:
            for event in ws.events():
                if isinstance(event, kind):
                    return event
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("the daemon closed a listener during its login")
            ws.receive_data(data)

    def drain(self) -> None:
        """Discard whatever already arrived (earlier rounds' events)."""
        for sock in self.socks:
            try:
                while sock.recv(65536):
                    pass
            except BlockingIOError:
                pass

    def wait_all(self, marker: bytes, timeout_s: float = 30.0) -> float:
        """Block until every socket has received bytes containing ``marker``; returns the
        ``perf_counter`` of the last arrival (run it in a thread, started before the
        event is caused)."""
        waiting = {sock.fileno(): (sock, bytearray()) for sock in self.socks}
        poller = select.epoll()
        for fd in waiting:
            poller.register(fd, select.EPOLLIN)
        last = 0.0
        deadline = time.perf_counter() + timeout_s
        try:
            while waiting:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{len(waiting)} sockets never got {marker!r}")
                for fd, _ in poller.poll(0.5):
                    if fd not in waiting:
                        continue
                    sock, seen = waiting[fd]
                    try:
                        seen += sock.recv(65536)
                    except BlockingIOError:
                        continue
                    if marker in seen:
                        last = time.perf_counter()
                        poller.unregister(fd)
                        del waiting[fd]
        finally:
            poller.close()
        return last

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
