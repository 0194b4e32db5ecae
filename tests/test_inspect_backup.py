"""`perpd inspect`, `perpd backup` and `perpd db status` against a running daemon's file
(issue 12): read-only, one snapshot per view, the books as `perpd verify` sees them, a
follow that prints events as they commit, a verified online backup under load."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio

from perpd.store import _schema
from tests.conftest import Agent
from tests.daemon_proc import REQUEST, daemon, open_position, verify


async def perpd(*args: str) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "perpd", *args]
    done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)
    return done.returncode, (done.stdout + done.stderr).decode()


def follow_events(db: Path) -> subprocess.Popen[str]:
    """`perpd inspect events --follow` as a process, its stdout a text pipe."""
    cmd = [sys.executable, "-m", "perpd", "inspect", "--db", str(db), "events", "--follow"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def micro(text: str) -> int:
    return int(Decimal(text) * 1_000_000)


async def test_inspect_views_agree_with_the_daemon_and_with_verify(tmp_path: Path) -> None:
    db = tmp_path / "perpd.db"
    async with daemon(db, "--chain", "local") as d:
        await d.pin("ETH-PERP", "3000")
        agents = [d.agent() for _ in range(3)]
        for a in agents:
            await a.fund("10000")
        requester, maker, other = agents
        one = await open_position(requester, maker, "ETH-PERP")
        two = await open_position(other, maker, "ETH-PERP", side="short")
        await requester.ok("/trade/close", {"position_id": one["position_id"]})

        code, out = await perpd("inspect", "--db", str(db), "positions")
        assert code == 0, out
        shown = {p["position_id"]: p for p in lines(out)}  # JSON: stdout is not a terminal
        assert set(shown) == {one["position_id"], two["position_id"]}
        assert shown[one["position_id"]]["status"] == "closed"
        live = (await d.http.get(f"/positions/{two['position_id']}")).json()
        for key in ("status", "size_usdc", "requester_collateral_usdc", "lock_signature"):
            assert shown[two["position_id"]][key] == live[key]
        code, out = await perpd("inspect", "--db", str(db), "positions", "--status", "open")
        assert [p["position_id"] for p in lines(out)] == [two["position_id"]]

        code, out = await perpd("inspect", "--db", str(db), "agents")
        accounts = {a["agent_id"]: a for a in lines(out)}
        for a in agents:
            free, locked = await a.balances()
            row = accounts[a.id]
            assert (micro(row["free_usdc"]), micro(row["locked_usdc"])) == (free, locked)
        assert accounts[maker.id]["open_positions"] == 1

        code, out = await perpd("inspect", "--db", str(db), "requests", "--limit", "1")
        assert len(lines(out)) == 1 and lines(out)[0]["status"] == "filled"

        code, out = await perpd("inspect", "--db", str(db), "chain")
        view = json.loads(out)
        assert view["local_chain"] is True and "secret" not in view["meta"]
        assert view["outbox"]["pending"] + view["outbox"]["sent"] == 0
        assert {t["signature"] for t in view["recent_transactions"]} >= {two["lock_signature"]}

        code, out = await perpd("inspect", "--db", str(db), "books")
        assert code == 0, out
        books = json.loads(out)
    v_code, v_out = await verify(db)
    assert v_code == 0 and books["problems"] == []
    totals = json.loads(v_out.splitlines()[0])  # verify's first line: the totals in micro
    assert {k: micro(v) for k, v in books["books"].items()} == totals

    # a book that does not balance: inspect books says so and exits 1, as verify does
    conn = sqlite3.connect(db)
    conn.execute("UPDATE ledger SET fees = fees + 1")
    conn.commit()
    conn.close()
    code, out = await perpd("inspect", "--db", str(db), "books")
    assert code == 1 and "conservation" in json.loads(out)["problems"][0]
    assert (await verify(db))[0] == 1


async def test_events_follow_prints_events_as_they_commit(tmp_path: Path) -> None:
    db = tmp_path / "perpd.db"
    async with daemon(db) as d:
        await d.pin("ETH-PERP", "3000")
        a = d.agent()
        await a.fund("1000")
        ask = {**REQUEST, "market": "ETH-PERP"}
        await a.ok("/trade/request", ask, 201)
        before = (await d.http.get("/health")).json()["last_seq"]
        assert before >= 1
        follow = follow_events(db)
        try:
            assert follow.stdout is not None
            stdout = follow.stdout
            seen: list[dict[str, Any]] = []

            async def read_until(seq: int) -> None:
                def pull() -> None:
                    while not seen or seen[-1]["seq"] < seq:
                        line = stdout.readline()
                        assert line, "inspect events --follow exited"
                        seen.append(json.loads(line))

                with trio.fail_after(30):  # a loaded machine starts Python slowly
                    await trio.to_thread.run_sync(pull, abandon_on_cancel=True)

            await read_until(before)  # the history first
            for _ in range(3):  # then each event as it commits
                rid = (await a.ok("/trade/request", ask, 201))["request_id"]
                now = (await d.http.get("/health")).json()["last_seq"]
                await read_until(now)
                assert seen[-1]["type"] == "trade_request" and seen[-1]["seq"] == now
                assert seen[-1]["data"]["request_id"] == rid
            assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
        finally:
            follow.send_signal(signal.SIGINT)
            assert follow.wait(timeout=10) == 0
            assert follow.stdout is not None
            follow.stdout.close()


async def test_a_backup_under_load_opens_verifies_and_has_every_committed_event(
    tmp_path: Path,
) -> None:
    db, dest = tmp_path / "perpd.db", tmp_path / "backup.db"
    async with daemon(db) as d:
        await d.pin("ETH-PERP", "3000")
        stop = trio.Event()

        async def faucet(agent: Agent) -> None:
            while not stop.is_set():
                await agent.fund("1.5")

        async def trade(requester: Agent, maker: Agent) -> None:
            await requester.fund("100000")
            await maker.fund("100000")
            while not stop.is_set():
                pos = await open_position(requester, maker, "ETH-PERP")
                await requester.ok("/trade/close", {"position_id": pos["position_id"]})

        async with trio.open_nursery() as n:
            for _ in range(4):
                n.start_soon(faucet, d.agent())
            n.start_soon(trade, d.agent(), d.agent())
            await trio.sleep(1.0)
            committed = (await d.http.get("/health")).json()["last_seq"]
            code, out = await perpd("backup", "--db", str(db), str(dest))
            after = (await d.http.get("/health")).json()["last_seq"]
            stop.set()
        assert code == 0, out
        report = json.loads(out)
        assert committed <= report["last_seq"] <= after and after > committed  # under load
        # a second backup to the same place is refused; the first is untouched
        again, message = await perpd("backup", "--db", str(db), str(dest))
        assert again == 2 and "exists" in message

    assert (await verify(dest))[0] == 0
    live, copy = sqlite3.connect(db), sqlite3.connect(dest)
    try:
        sql = "SELECT seq, type, data FROM events WHERE seq <= ? ORDER BY seq"
        events = copy.execute(sql, (report["last_seq"],)).fetchall()
        assert len(events) == report["last_seq"]  # every event, no hole
        assert events == live.execute(sql, (report["last_seq"],)).fetchall()
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        live.close()
        copy.close()
    assert not (tmp_path / "backup.db.partial").exists()


async def test_db_status_lists_migrations_and_never_writes(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for version, migration in enumerate(_schema.MIGRATIONS[:3], start=1):
        migration(conn)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    before = old.read_bytes()

    code, out = await perpd("db", "status", "--db", str(old))
    status = json.loads(out)
    assert code == 1  # migrations are pending
    names = [m.__name__ for m in _schema.MIGRATIONS]
    assert status["applied"] == names[:3] and status["pending"] == names[3:]
    assert status["user_version"] == 3 and status["journal_mode"] == "wal"
    assert old.read_bytes() == before  # nothing written

    async with daemon(old):  # the daemon migrates it; then nothing is pending
        code, out = await perpd("db", "status", "--db", str(old))
    assert code == 0 and json.loads(out)["pending"] == []

    missing, message = await perpd("db", "status", "--db", str(tmp_path / "none.db"))
    assert missing == 2 and "no database" in message
    assert not (tmp_path / "none.db").exists()
