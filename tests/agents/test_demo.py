"""``perpd demo`` for 20 s as a user would run it: trades happen, SIGINT stops it with
status 0, and nothing it started is left running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.agents.conftest import ROOT


def test_demo_trades_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perpd", "demo", "--no-tty"],
            cwd=tmp_path,  # the demo must not need the repository as its directory
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we can look for leftovers
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            time.sleep(20)
            assert proc.poll() is None, out.read_text()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = out.read_text()
    assert code == 0, text
    final = re.search(r"perpd demo stopped: .*fills=(\d+).*books_balance=(\w+)", text)
    assert final is not None, text
    assert int(final.group(1)) > 0, text
    assert final.group(2) == "True", text
    # on the local chain: its slot and the last transaction's signature are shown
    chain = re.search(r"chain=local slot=(\d+) last_tx=(\w+):([1-9A-HJ-NP-Za-km-z]{86,88})", text)
    assert chain is not None and int(chain.group(1)) > 0, text
    assert "Traceback" not in text, text
    try:
        os.killpg(proc.pid, 0)
        raise AssertionError("a process of the demo's group is still running")
    except ProcessLookupError:
        pass
    assert list(tmp_path.iterdir()) == [out]  # the temporary database went with it
