"""Soak: honest traders and makers, then the same plus one hostile agent (issue 8).

Two phases on one daemon (a subprocess on loopback, fresh database):

1. **baseline** (half the duration): ``--traders`` traders each loop request → accept
   the first quote that fills (from their socket, in arrival order) → close → read
   their account; ``--makers`` makers quote on their sockets on every request of 10
   USDC or more.
2. **hostile** (the other half): the same, plus one hostile agent doing every attack of
   issue 8 at once: replaying a maker's captured socket login, oversized frames,
   a flood of sockets that never log in, dust requests, quote spam on the honest
   traders' requests, anonymous list-scraping loops and malformed numbers.

The honest load is paced: each trader starts a round at most every ``--interval``
seconds (0.3 s: 4 traders make about 50 signed calls and 40 socket quotes a second, half
of what one daemon process serves on this machine). Unpaced (``--interval 0``) the
traders loop as fast as the daemon answers, so the baseline measures the daemon's
throughput with its queues full, and any extra work at all shows up whole in the p99.
The hostile agent is not paced: every attack runs at full strength in its own process.

It prints the honest p99 of each phase (every signed HTTP call an honest trader
makes), their ratio, the daemon's CPU seconds in each phase, the daemon's RSS at the
start and the end, what the hostile agent achieved, and runs ``perpd verify`` on the
database at the end. The last line is one JSON object.

    python bench/soak.py [--duration 60] [--traders 4] [--makers 3] [--interval 0.3]
                         [--attacks a,b,...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from perpd.auth import sign_headers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import REQUEST, BenchAgent, cpu_s, daemon_process, pct, rss_kb  # noqa: E402

MARKETS = ["BTC-PERP"]
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: c29hay1ob3N0aWxlLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
OVERSIZED = 2 * 1024 * 1024
OVERSIZED_HEADER = bytes([0x81, 0xFF]) + OVERSIZED.to_bytes(8, "big") + bytes(4)
ZEROS = b"a" * 65536
MIN_QUOTED_USDC = 10  # an honest maker's minimum size: dust is not worth quoting
BAD_BODIES = [  # finding 6: each must be a 4xx
    '{"market": "BTC-PERP", "side": "long", "size_usdc": "100", "leverage": "²",'
    ' "max_funding_rate": "0.001"}',
    '{"market": "BTC-PERP", "side": "long", "size_usdc": 1E999999999999999999999,'
    ' "leverage": 10, "max_funding_rate": "0.001"}',
    '{"market": "BTC-PERP", "side": "long", "size_usdc": "100", "leverage": "-+5",'
    ' "max_funding_rate": "1E-999999999"}',
    '{"market": "\\ud800", "side": "long", "size_usdc": "100", "leverage": 10,'
    ' "max_funding_rate": "0.001"}',
]


class Run:
    """Shared state: the phase's latency samples, the stop signal, the tallies."""

    def __init__(self, url: str, interval: float = 0.0) -> None:
        self.url = url
        self.interval = interval
        self.ws_url = url.replace("http://", "ws://") + "/ws"
        self.samples: list[float] = []
        self.kinds: list[str] = []  # each sample's call, in the same order
        self.started = 0.0  # the phase's start (perf_counter), for `slowest`
        self.at: list[float] = []  # each sample's start, seconds into the phase
        self.honest_errors: Counter[str] = Counter()
        # accepts that filled after an earlier quote on the same request was refused
        self.retried_accepts: Counter[str] = Counter()
        self.hostile: Counter[str] = Counter()
        self.maker_logins: list[str] = []
        self.hostile_cpu_s = 0.0  # CPU the hostile process used (its own, not the daemon's)

    async def timed(self, kind: str, call: Awaitable[httpx.Response]) -> httpx.Response:
        t0 = time.perf_counter()
        r = await call
        self.samples.append(time.perf_counter() - t0)
        self.kinds.append(kind)
        self.at.append(t0 - self.started)
        return r

    def reset(self) -> None:
        self.samples, self.kinds, self.at = [], [], []
        self.started = time.perf_counter()

    def by_kind(self) -> dict[str, float]:
        """p99 (ms) of each kind of honest call in the phase."""
        kinds: dict[str, list[float]] = {}
        for kind, seconds in zip(self.kinds, self.samples, strict=True):
            kinds.setdefault(kind, []).append(seconds)
        return {k: round(pct(v, 99) * 1000, 1) for k, v in sorted(kinds.items())}

    def slowest(self, n: int = 8) -> list[tuple[str, float, float]]:
        """The ``n`` slowest honest calls: (kind, seconds into the phase, ms)."""
        order = sorted(range(len(self.samples)), key=self.samples.__getitem__)[-n:]
        return [
            (self.kinds[i], round(self.at[i], 1), round(self.samples[i] * 1000, 1)) for i in order
        ]


async def login(ws: WebSocketConnection, agent: BenchAgent) -> str:
    text = agent.ws_auth()
    await ws.send_message(text)
    ok = json.loads(await ws.get_message())
    assert ok["type"] == "auth_ok", ok
    return text


async def signed(agent: BenchAgent, method: str, path: str, body: Any = None) -> httpx.Response:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = sign_headers(agent.keypair, method, path, raw, timestamp_ms=agent.stamp())
    return await agent.http.request(method, path, content=raw, headers=headers)


# --- honest agents ---------------------------------------------------------------------


async def maker(run: Run, agent: BenchAgent) -> None:
    async with open_websocket_url(run.ws_url) as ws:
        run.maker_logins.append(await login(ws, agent))
        await ws.send_message(json.dumps({"type": "subscribe", "markets": MARKETS}))
        while True:
            msg = json.loads(await ws.get_message())
            if msg["type"] == "trade_request":
                data = msg["data"]
                if Decimal(data["size_usdc"]) >= MIN_QUOTED_USDC:
                    rate = f"{random.randint(1, 9) / 10_000:.4f}"
                    await ws.send_message(
                        json.dumps(
                            {
                                "type": "quote",
                                "request_id": data["request_id"],
                                "funding_rate": rate,
                                "collateral_usdc": "20",
                            }
                        )
                    )


async def trader(run: Run, agent: BenchAgent) -> None:
    """request → first quote → accept → close → account read, one round every
    ``run.interval`` seconds at most (paced: see the module docstring)."""
    async with open_websocket_url(run.ws_url) as ws:
        await login(ws, agent)
        await ws.send_message(json.dumps({"type": "subscribe", "markets": []}))
        next_round = trio.current_time()
        while True:
            await trio.sleep_until(next_round)
            next_round = max(next_round + run.interval, trio.current_time())
            r = await run.timed("request", signed(agent, "POST", "/trade/request", REQUEST))
            if r.status_code != 201:
                run.honest_errors[f"request {r.status_code}"] += 1
                await trio.sleep(0.1)
                continue
            rid = r.json()["request_id"]
            r = await take_a_quote(run, agent, ws, rid)
            if r is None:
                continue
            pid = r.json()["position"]["position_id"]
            r = await run.timed(
                "close", signed(agent, "POST", "/trade/close", {"position_id": pid})
            )
            if r.status_code != 200:
                run.honest_errors[f"close {r.status_code}"] += 1
            r = await run.timed("account", signed(agent, "GET", f"/accounts/{agent.id}"))
            if r.status_code != 200:
                run.honest_errors[f"account {r.status_code}"] += 1


async def take_a_quote(
    run: Run, agent: BenchAgent, ws: WebSocketConnection, rid: str
) -> httpx.Response | None:
    """Accept the first quote on ``rid`` that the venue fills, in arrival order, as a
    trader does: a quote refused because its maker's collateral is locked elsewhere
    meanwhile (409/422: the quote spammer's) leaves the request open for the next one.
    None (counted as an honest error) if no quote came within 5 s or none filled."""
    refused: str | None = None
    with trio.move_on_after(5):
        while True:
            msg = json.loads(await ws.get_message())
            if msg["type"] != "quote" or msg["data"]["request_id"] != rid:
                continue
            body = {"request_id": rid, "quote_id": msg["data"]["quote_id"]}
            r = await run.timed("accept", signed(agent, "POST", "/trade/accept", body))
            if r.status_code == 200:
                if refused is not None:
                    run.retried_accepts[refused] += 1
                return r
            refused = f"accept {r.status_code} {r.json().get('error', {}).get('code')}"
            if r.status_code not in (409, 422):
                break
    run.honest_errors[refused or "no quote"] += 1
    return None


# --- the hostile agent ----------------------------------------------------------------


async def forever(run: Run, name: str, attack: Callable[[], Awaitable[str]], pause: float) -> None:
    """Repeat ``attack``; tally what each attempt achieved (or how it was stopped)."""
    while True:
        try:
            outcome = await attack()
        except Exception as exc:  # noqa: BLE001 - the hostile agent only counts how it failed
            outcome = type(exc).__name__
        run.hostile[f"{name}: {outcome}"] += 1
        await trio.sleep(pause)


ATTACKS = ("replay", "oversized", "no-login", "dust", "quote-spam", "scrape", "malformed")


def hostile_attacks(
    run: Run, me: BenchAgent, anon: httpx.AsyncClient, chosen: frozenset[str]
) -> list[Any]:
    async def replay_login() -> str:
        if not run.maker_logins:
            return "nothing captured"
        async with open_websocket_url(run.ws_url) as ws:
            await ws.send_message(random.choice(run.maker_logins))
            msg = json.loads(await ws.get_message())
            return "ACCEPTED" if msg["type"] == "auth_ok" else msg["error"]["code"]

    async def oversized() -> str:
        """A 2 MB text frame on a fresh socket, pre-built (masked with a zero key) so the
        hostile process spends no CPU masking it; the server should close with 1009."""
        host, port = run.url.removeprefix("http://").rsplit(":", 1)
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            await stream.send_all(HANDSHAKE.replace(b"HOST", f"{host}:{port}".encode()))
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some(4096)
            if b" 101 " not in head.split(b"\r\n")[0]:
                return head.split(b"\r\n")[0].decode()
            try:
                await stream.send_all(OVERSIZED_HEADER)
                for _ in range(OVERSIZED // len(ZEROS)):
                    await stream.send_all(ZEROS)
            except trio.BrokenResourceError:
                pass  # the server closed it mid-frame
            rest = head.partition(b"\r\n\r\n")[2]
            with trio.move_on_after(2):
                while data := await stream.receive_some(65536):
                    rest += data
            return "closed 1009" if b"\x88\x02\x03\xf1" in rest else "not closed"

    async def never_login() -> str:
        """Open a socket and say nothing: the login deadline must close it (1008)."""
        t0 = time.monotonic()
        async with open_websocket_url(run.ws_url) as ws:
            try:
                while True:
                    await ws.get_message()  # the refusal's error message comes first
            except ConnectionClosed as closed:
                code = closed.reason.code
        return f"closed {code} after {round(time.monotonic() - t0):d} s"

    async def dust() -> str:
        r = await signed(me, "POST", "/trade/request", {**REQUEST, "size_usdc": "0.000001"})
        return str(r.status_code)

    async def scrape() -> str:
        r = await anon.get("/requests")
        listed = r.json().get("requests") or [] if r.status_code == 200 else []
        if listed:
            await anon.get(f"/quotes?request_id={listed[-1]['request_id']}")
        return str(r.status_code)

    async def malformed() -> str:
        r = await signed(me, "POST", "/trade/request", random.choice(BAD_BODIES).encode())
        return str(r.status_code)

    async def quote_spam() -> str:
        async with open_websocket_url(run.ws_url) as ws:
            await login(ws, me)
            await ws.send_message(json.dumps({"type": "subscribe", "markets": MARKETS}))
            while True:
                msg = json.loads(await ws.get_message())
                if msg["type"] == "trade_request" and msg["data"]["agent_id"] != me.id:
                    run.hostile["quote spam: requests hit"] += 1
                    for _ in range(20):
                        quote = {
                            "type": "quote",
                            "request_id": msg["data"]["request_id"],
                            "funding_rate": "0.001",
                            "collateral_usdc": "5",
                        }
                        await ws.send_message(json.dumps(quote))

    table: dict[str, list[Any]] = {
        "replay": [(forever, run, "replayed login", replay_login, 0.1)],
        "dust": [(forever, run, "dust request", dust, 0.005)],
        "malformed": [(forever, run, "malformed", malformed, 0.02)],
        "quote-spam": [(forever, run, "quote spam", quote_spam, 0.5)],
        "oversized": [(forever, run, "oversized frame", oversized, 0.05)] * 4,
        "no-login": [(forever, run, "no login", never_login, 0.05)] * 50,
        "scrape": [(forever, run, "scrape", scrape, 0.0)] * 4,
    }
    return [attack for name in ATTACKS if name in chosen for attack in table[name]]


# --- the run ---------------------------------------------------------------------------


async def http_calls(http: httpx.AsyncClient) -> Counter[str]:
    """The daemon's HTTP calls answered so far, by "method route status" (``/metrics``;
    the reading itself is one of them)."""
    calls: Counter[str] = Counter()
    for family in text_string_to_metric_families((await http.get("/metrics")).text):
        for sample in family.samples:
            if sample.name == "perpd_http_requests_total":
                key = " ".join(sample.labels[k] for k in ("method", "route", "status"))
                calls[key] += int(sample.value)
    return calls


def per_s(calls: Counter[str], seconds: float) -> dict[str, float]:
    """Calls per second of each kind, busiest first (those under 0.5/s left out)."""
    return {k: round(n / seconds, 1) for k, n in calls.most_common() if n / seconds >= 0.5}


async def phase(run: Run, seconds: float, attacks: list[Any]) -> list[float]:
    run.reset()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for args in attacks:
                nursery.start_soon(*args)
            await trio.sleep_forever()
    return run.samples


async def hostile_phase(run: Run, seconds: float, chosen: frozenset[str]) -> list[float]:
    """Start the hostile process; measure from the moment it says it is attacking."""
    command = [sys.executable, __file__, "--hostile", run.url, "--duration", str(seconds)]
    command += ["--attacks", ",".join(sorted(chosen)), "--logins", json.dumps(run.maker_logins)]
    proc = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = b""
    try:
        while b"attacking\n" not in out:
            chunk = await proc.stdout.receive_some()
            if not chunk:
                raise RuntimeError("the hostile process ended before attacking")
            out += chunk
        run.reset()
        while chunk := await proc.stdout.receive_some():
            out += chunk
    finally:
        with trio.CancelScope(shield=True):
            if await proc.wait() != 0:
                raise RuntimeError(f"the hostile process failed ({proc.returncode})")
    tallies = json.loads(out.decode().splitlines()[-1])
    run.hostile_cpu_s = tallies.pop("_cpu_ms") / 1000
    run.hostile.update(tallies)
    return run.samples


async def main(
    duration: float, traders: int, makers: int, interval: float, chosen: frozenset[str]
) -> dict[str, Any]:
    # off-chain: the honest agents here sign calls, not consents (issue 8 measures the
    # router's hardening; bench/chain_lifecycle.py measures the chain's cost)
    async with daemon_process("--chain", "none") as d:
        run = Run(d.url, interval)
        async with trio.open_nursery() as honest:
            clients = [
                httpx.AsyncClient(base_url=d.url, timeout=30) for _ in range(traders + makers)
            ]
            agents = [BenchAgent(c) for c in clients]
            for a in agents:
                await a.fund("100000")
            await clients[0].post("/dev/price", json={"market": "BTC-PERP", "price": "50000"})
            for a in agents[:makers]:
                honest.start_soon(maker, run, a)
            for a in agents[makers : makers + traders]:
                honest.start_soon(trader, run, a)
            await trio.sleep(2)  # warm up: sockets open, first trades done
            rss_start, load_start = rss_kb(d.pid), os.getloadavg()[0]
            cpu0, calls0 = cpu_s(d.pid), await http_calls(clients[0])
            baseline = await phase(run, duration / 2, [])
            base_kinds, base_slowest = run.by_kind(), run.slowest()
            cpu1, calls1 = cpu_s(d.pid), await http_calls(clients[0])
            rss_mid = rss_kb(d.pid)
            hostile = await hostile_phase(run, duration / 2, chosen)
            cpu2, calls2 = cpu_s(d.pid), await http_calls(clients[0])
            hostile_kinds, hostile_slowest = run.by_kind(), run.slowest()
            honest.cancel_scope.cancel()
        await trio.sleep(1)
        rss_end = rss_kb(d.pid)
        verify = await trio.run_process(
            [sys.executable, "-m", "perpd", "verify", "--db", d.db],
            capture_stdout=True,
            check=False,
        )
        for c in clients:
            await c.aclose()
    p99_base, p99_hostile = pct(baseline, 99) * 1000, pct(hostile, 99) * 1000
    print(f"honest calls: baseline n={len(baseline)}, hostile n={len(hostile)}")
    print(f"honest errors: {dict(run.honest_errors)}")
    print(f"honest accepts filled on a later quote: {dict(run.retried_accepts)}")
    for key, n in sorted(run.hostile.items()):
        print(f"hostile {key}: {n}")
    print(
        f"honest p99: baseline {p99_base:.1f} ms, hostile {p99_hostile:.1f} ms "
        f"(ratio {p99_hostile / p99_base:.2f}; target <= 2)"
    )
    print(f"honest p99 by call (ms): baseline {base_kinds}, hostile {hostile_kinds}")
    print(f"slowest (call, s into phase, ms): baseline {base_slowest}")
    print(f"                                  hostile {hostile_slowest}")
    served = [per_s(calls1 - calls0, duration / 2), per_s(calls2 - calls1, duration / 2)]
    print(f"HTTP calls served per s (method route status): baseline {served[0]}")
    print(f"                                                hostile {served[1]}")
    print(
        f"daemon RSS: {rss_start / 1024:.0f} MB -> {rss_mid / 1024:.0f} MB at the hostile "
        f"phase's start -> {rss_end / 1024:.0f} MB (target +-20%)"
    )
    print(f"perpd verify: {verify.stdout.decode().strip().splitlines()[-1]}")
    return {
        "honest_p99_baseline_ms": round(p99_base, 2),
        "honest_p99_hostile_ms": round(p99_hostile, 2),
        "p99_ratio": round(p99_hostile / p99_base, 3),
        "honest_calls": [len(baseline), len(hostile)],
        "p99_by_call_ms": [base_kinds, hostile_kinds],
        "honest_errors": sum(run.honest_errors.values()),
        "honest_accepts_retried": sum(run.retried_accepts.values()),
        "load_avg_1m": [round(x, 2) for x in (load_start, os.getloadavg()[0])],
        "daemon_cpu_s": [round(cpu1 - cpu0, 1), round(cpu2 - cpu1, 1)],
        "http_per_s": served,
        "hostile_process_cpu_s": round(run.hostile_cpu_s, 1),
        "rss_start_mb": round(rss_start / 1024, 1),
        "rss_end_mb": round(rss_end / 1024, 1),
        "rss_change_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
        "rss_mid_mb": round(rss_mid / 1024, 1),
        "rss_hostile_change_pct": round(100 * (rss_end - rss_mid) / rss_mid, 1),
        "verify_ok": verify.returncode == 0,
        "replays_accepted": sum(n for k, n in run.hostile.items() if k.endswith("ACCEPTED")),
        "hostile_5xx": sum(n for k, n in run.hostile.items() if k.split(": ")[-1].startswith("5")),
    }


async def hostile_main(
    url: str, duration: float, chosen: frozenset[str], logins: list[str]
) -> None:
    """The hostile agent, in a process of its own (its client work must not stall the
    honest agents' event loop: only the daemon is measured). Prints its tallies."""
    run = Run(url)
    run.maker_logins = logins
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        httpx.AsyncClient(base_url=url, timeout=30) as anon,
    ):
        me = BenchAgent(http)
        await me.fund("100000")
        print("attacking", flush=True)
        await phase(run, duration, hostile_attacks(run, me, anon, chosen))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({**run.hostile, "_cpu_ms": round(1000 * (usage.ru_utime + usage.ru_stime))}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds, both phases")
    parser.add_argument("--traders", type=int, default=4)
    parser.add_argument("--makers", type=int, default=3)
    parser.add_argument(
        "--interval", type=float, default=0.3, help="seconds between a trader's rounds, at least"
    )
    parser.add_argument(
        "--attacks",
        default=",".join(ATTACKS),
        help=f"the hostile agent's attacks, comma-separated (default all: {','.join(ATTACKS)})",
    )
    parser.add_argument("--hostile", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--logins", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = frozenset(args.attacks.split(","))
    if chosen - set(ATTACKS):
        parser.error(f"unknown attacks: {', '.join(sorted(chosen - set(ATTACKS)))}")
    if args.hostile:
        trio.run(hostile_main, args.hostile, args.duration, chosen, json.loads(args.logins))
    else:
        sizes = (args.traders, args.makers, args.interval)
        print(json.dumps(trio.run(main, args.duration, *sizes, chosen)))
