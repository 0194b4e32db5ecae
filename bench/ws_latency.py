"""WebSocket latency: request → position_opened with 50 makers, and fan-out to 1,000 sockets.

1. Baseline: a raw WebSocket echo round trip (``/dev/echo``) on the same daemon.
2. With ``--makers`` makers connected and subscribed, the requester POSTs
   ``/trade/request``; every maker quotes on its socket as soon as it sees the
   ``trade_request``; the requester accepts the first ``quote`` it receives; the
   sample is the time from the POST to the requester's ``position_opened``.
3. With ``--sockets`` sockets subscribed, the time for one ``trade_request`` to reach
   every socket (from just before the POST to the last arrival), as seen by light
   clients (`_listeners`) so that the figure is the daemon's, not the bench's.

    python bench/ws_latency.py [--makers 50] [--rounds 100] [--sockets 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import trio
from trio_websocket import WebSocketConnection, connect_websocket_url, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import REQUEST, BenchAgent, daemon, pct, summary  # noqa: E402
from _listeners import Listeners  # noqa: E402


async def echo_baseline(url: str, rounds: int) -> list[float]:
    samples = []
    async with open_websocket_url(url.replace("http", "ws") + "/dev/echo") as ws:
        for _ in range(rounds + 10):
            t = time.perf_counter()
            await ws.send_message('{"type":"ping","pad":"' + "x" * 200 + '"}')
            await ws.get_message()
            samples.append(time.perf_counter() - t)
    return samples[10:]


MARKER = b'"type":"trade_request"'


async def connected(
    nursery: trio.Nursery, url: str, agent: BenchAgent, markets: list[str]
) -> WebSocketConnection:
    """An authenticated, subscribed socket living in ``nursery``."""
    ws = await connect_websocket_url(nursery, url.replace("http", "ws") + "/ws")
    await ws.send_message(agent.ws_auth())
    assert json.loads(await ws.get_message())["type"] == "auth_ok"
    await ws.send_message(json.dumps({"type": "subscribe", "markets": markets}))
    return ws


async def lifecycle_latency(
    url: str, http: httpx.AsyncClient, makers: int, rounds: int
) -> list[float]:
    requester = BenchAgent(http)
    await requester.fund("10000000")
    samples: list[float] = []
    async with trio.open_nursery() as nursery:
        for _ in range(makers):
            mm = BenchAgent(http)
            await mm.fund("10000000")
            ws = await connected(nursery, url, mm, ["BTC-PERP"])

            async def maker_loop(ws: WebSocketConnection = ws) -> None:
                while True:
                    msg = json.loads(await ws.get_message())
                    if msg["type"] == "trade_request":
                        await ws.send_message(
                            json.dumps(
                                {
                                    "type": "quote",
                                    "request_id": msg["data"]["request_id"],
                                    "funding_rate": "0.0005",
                                    "collateral_usdc": "10",
                                }
                            )
                        )

            nursery.start_soon(maker_loop)
        rws = await connected(nursery, url, requester, [])
        await trio.sleep(0.5)
        for _ in range(rounds):
            t = time.perf_counter()
            rid = (await requester.post("/trade/request", REQUEST))["request_id"]
            accepted = False
            while True:
                msg = json.loads(await rws.get_message())
                if msg["type"] == "quote" and not accepted and msg["data"]["request_id"] == rid:
                    accepted = True
                    await requester.post(
                        "/trade/accept", {"request_id": rid, "quote_id": msg["data"]["quote_id"]}
                    )
                elif msg["type"] == "position_opened" and msg["data"]["request_id"] == rid:
                    samples.append(time.perf_counter() - t)
                    break
        nursery.cancel_scope.cancel()
    return samples


async def fan_out(url: str, http: httpx.AsyncClient, n: int, rounds: int) -> list[float]:
    """From just before the POST to the last of ``n`` sockets receiving its frame."""
    requester = BenchAgent(http)
    await requester.fund("10000000")
    port = urlsplit(url).port
    assert port is not None
    listeners = await trio.to_thread.run_sync(
        lambda: Listeners(port, n, lambda: BenchAgent(http).ws_auth(), ["ETH-PERP"])
    )
    samples: list[float] = []
    last: list[float] = []

    async def wait() -> None:
        last.append(await trio.to_thread.run_sync(listeners.wait_all, MARKER))

    try:
        await trio.sleep(1.0)
        for _ in range(rounds):
            listeners.drain()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.sleep(0.05)  # the thread is polling
                t = time.perf_counter()
                await requester.post("/trade/request", {**REQUEST, "market": "ETH-PERP"})
            samples.append(last.pop() - t)
    finally:
        listeners.close()
    return samples


async def main(makers: int, rounds: int, sockets: int) -> None:
    # off-chain: the socket path is the same with a chain, and these quotes carry no consent
    async with daemon("--chain", "none") as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            await http.post("/dev/price", json={"market": "BTC-PERP", "price": "50000"})
            await http.post("/dev/price", json={"market": "ETH-PERP", "price": "3000"})
            echo = await echo_baseline(url, rounds * 5)
            life = await lifecycle_latency(url, http, makers, rounds)
            fan = await fan_out(url, http, sockets, max(5, rounds // 10))
    print(summary("raw WebSocket echo round trip", echo))
    print(summary(f"POST /trade/request -> position_opened, {makers} makers quoting", life))
    print(summary(f"one trade_request reaching all {sockets} sockets", fan))
    for p in (50, 99):
        print(f"ratio p{p} lifecycle / echo: {pct(life, p) / pct(echo, p):.1f}")
    print(f"ratio p99 fan-out / echo p99: {pct(fan, 99) / pct(echo, 99):.1f}")
    figures = {"makers": makers, "sockets": sockets}
    for key, samples in (("echo", echo), ("lifecycle", life), ("fanout", fan)):
        for p in (50, 99):
            figures[f"{key}_p{p}_ms"] = round(pct(samples, p) * 1000, 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--makers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=1000)
    args = parser.parse_args()
    trio.run(main, args.makers, args.rounds, args.sockets)
