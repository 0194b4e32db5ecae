"""The daemon's logs (issue 12): JSON lines when not on a terminal, one per HTTP request
with its request id, method, route, status and duration, and never a key, a signature
or a consent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.daemon_proc import daemon, open_position


async def test_one_json_line_per_request_and_no_secret_in_any(tmp_path: Path) -> None:
    db, log = tmp_path / "perpd.db", tmp_path / "perpd.log"
    sent: list[str] = []  # every signature and consent the agents sent

    async def remember(request: httpx.Request) -> None:
        if "x-signature" in request.headers:
            sent.append(request.headers["x-signature"])
        body = json.loads(request.content or b"{}")
        if isinstance(body, dict) and body.get("consent"):
            sent.append(body["consent"])

    async with daemon(db, "--chain", "local", log_level="INFO", log=log) as d:
        d.http.event_hooks["request"].append(remember)
        await d.pin("ETH-PERP", "3000")
        requester, maker = d.agent(), d.agent()
        for a in (requester, maker):
            await a.fund("1000")
        pos = await open_position(requester, maker, "ETH-PERP")
        await requester.ok("/trade/close", {"position_id": pos["position_id"]})
        traced = await d.http.get("/markets", headers={"X-Request-Id": "trace-42"})
        assert traced.headers["x-request-id"] == "trace-42"
        made = (await d.http.get("/health")).headers["x-request-id"]
        assert len(made) == 16
        missing = await d.http.get(f"/positions/{'x' * 20}")
        assert missing.status_code == 404

    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    http = [r for r in records if r["logger"] == "perpd.http"]
    by_route: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in http:
        assert set(r) >= {"ts", "level", "request_id", "method", "route", "status", "duration_ms"}
        assert isinstance(r["duration_ms"], float) and r["duration_ms"] >= 0
        by_route.setdefault((r["method"], r["route"]), []).append(r)
    for path in ("/trade/request", "/trade/quote", "/trade/accept", "/trade/close"):
        assert [r["status"] for r in by_route[("POST", path)]] in ([200], [201])
    assert by_route[("GET", "/positions/<position_id>")][-1]["status"] == 404
    assert any(r["request_id"] == "trace-42" for r in by_route[("GET", "/markets")])
    assert any(r["request_id"] == made for r in http)
    assert len({r["request_id"] for r in http}) == len(http)  # one line per request

    assert len(sent) >= 8  # four signed POSTs at least, each with its consent
    for secret in sent + [str(requester.keypair), str(maker.keypair)]:
        assert secret not in text


async def test_text_lines_on_request_for_a_person(tmp_path: Path) -> None:
    db, log = tmp_path / "perpd.db", tmp_path / "perpd.log"
    async with daemon(db, "--log-format", "text", log_level="INFO", log=log) as d:
        await d.http.get("/markets", headers={"X-Request-Id": "abc"})
    line = next(x for x in log.read_text().splitlines() if "request_id=abc" in x)
    assert " INFO perpd.http: http request_id=abc method=GET route=/markets status=200 " in line
