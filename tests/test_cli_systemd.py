"""The process as an operator runs it: crash → non-zero exit; systemd notify and watchdog."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from perpd import cli
from perpd.nursery import liquidation_watcher
from tests.daemon_proc import free_port


def test_a_crashing_service_stops_the_daemon_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    real = liquidation_watcher.Watcher.check

    async def failing(self: liquidation_watcher.Watcher) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # well after start-up: the daemon is serving
            raise RuntimeError("watcher bug")
        await real(self)

    monkeypatch.setattr(liquidation_watcher.Watcher, "check", failing)
    code = cli.main(["run", "--db", str(tmp_path / "x.db"), "--port", "0"])
    assert code == 1
    assert calls == 3
    assert "perpd stopped on an error" in caplog.text
    assert "watcher bug" in caplog.text


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert cli.main(["run", "--db", str(tmp_path / "x.db"), "--funding-period", "0"]) == 2


def test_systemd_ready_watchdog_stopping(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perpd",
            "run",
            "--db",
            str(tmp_path / "d.db"),
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        messages = [sock.recv(256).decode()]
        assert messages[0] == "READY=1"
        # READY=1 only once it listens: the port answers at once, with no retry
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        while messages.count("WATCHDOG=1") < 3:
            messages.append(sock.recv(256).decode())
        proc.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in messages:
            messages.append(sock.recv(256).decode())
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
        sock.close()
