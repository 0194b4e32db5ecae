"""Issue 8 finding 9: a full disk is a 503 `unavailable` that says so (the real
SQLITE_FULL is logged, not hidden behind a failed ROLLBACK), reads keep working, and
writes succeed again once space returns. The database lives on a small tmpfs."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_proc import daemon, verify


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (we run as root in CI); skipped, saying why, where mounting fails."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system has not one byte left."""
    with path.open("wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


async def test_disk_full_is_503_and_recovers(small_disk: Path, tmp_path: Path) -> None:
    db = small_disk / "perpd.db"
    async with daemon(db, log=tmp_path / "perpd.log") as d:
        agent = d.agent()
        await agent.fund("100")
        filler = small_disk / "filler"
        fill(filler)

        refused = await d.http.post("/dev/faucet", json={"agent_id": agent.id, "amount_usdc": "1"})
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "unavailable" and "disk is full" in error["message"]
        assert refused.headers["Retry-After"] == "5"
        for _ in range(3):  # and stays a clean refusal, call after call
            again = await agent.post(
                "/trade/request",
                {
                    "market": "SOL-PERP",
                    "side": "long",
                    "size_usdc": "10",
                    "leverage": 2,
                    "max_funding_rate": "0.01",
                },
            )
            assert again.status_code == 503 and "disk is full" in again.text
        assert await agent.balances() == (100_000_000, 0)  # reads still answer

        log = d.log_text()
        assert "database or disk is full (SQLITE_FULL)" in log, log
        assert "no transaction is active" not in log

        filler.unlink()  # space returns: so does every write
        await agent.fund("1")
        assert await agent.balances() == (101_000_000, 0)
        assert d.alive()
    code, out = await verify(db)
    assert code == 0 and "books balance" in out, out
