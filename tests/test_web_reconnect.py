"""The web view across a daemon restart: the page reconnects to the new daemon (same
database, same port) and resumes its stream with no gap and no repeat (issue 15)."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.web_harness import Console, Watcher, chromium_path, demo, wait_js


def test_the_page_resumes_after_the_daemon_restarts_without_a_gap(tmp_path: Path) -> None:
    with demo(tmp_path) as d, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page()
        console = Console(page)
        page.goto(d.url + "/")
        page.wait_for_selector("#status[data-state=live]", timeout=10_000)
        wait_js(page, "window.perpdWeb.seqs.length >= 20")
        since = page.evaluate("window.perpdWeb.since")

        d.stop()
        page.wait_for_selector("#status[data-state=reconnecting]", timeout=10_000)
        before = page.evaluate("window.perpdWeb.stream.cursor")
        time.sleep(0.5)  # the page retries against a closed port meanwhile
        d.start()
        page.wait_for_selector("#status[data-state=live]", timeout=15_000)
        assert page.evaluate("window.perpdWeb.stream.reconnects") >= 1
        # events of the new daemon's run arrive on the resumed stream
        wait_js(page, f"window.perpdWeb.stream.cursor > {before} + 20", 30)

        seqs: list[int] = page.evaluate("window.perpdWeb.seqs")
        assert seqs == sorted(set(seqs)), "an event came twice or out of order"
        # every public event after `since` up to the page's last one, by our own replay
        with Watcher(d.url, since=since) as truth:
            truth.wait(lambda fs: True if fs and fs[-1].seq >= seqs[-1] else None)
            expected = [f.seq for f in truth.frames if f.seq <= seqs[-1]]
        assert seqs == expected, (len(seqs), len(expected))
        assert any(s > before for s in seqs) and any(s <= before for s in seqs)
        # the browser logs the refused connections of the restart; no script failed
        assert not [e for e in console.errors if e.startswith("pageerror")], console.errors
        browser.close()
