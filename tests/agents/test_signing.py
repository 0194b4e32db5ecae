"""The SDK signs exactly what the daemon verifies (SPEC §6), with never-repeating stamps."""

from __future__ import annotations

from solders.keypair import Keypair

from agents import Signer, signing_message
from perpd import auth


def test_sdk_signatures_verify_with_the_daemons_checker() -> None:
    kp = Keypair()
    signer = Signer(kp, clock=lambda: 1_700_000_000.0)
    body = b'{"market":"BTC-PERP"}'
    h = signer.headers("POST", "/trade/request?x=1", body)
    v = auth.verify(
        h["X-Agent-Id"],
        h["X-Timestamp"],
        h["X-Signature"],
        "POST",
        "/trade/request?x=1",
        body,
        now_ms=1_700_000_000_000,
    )
    assert v.agent_id == str(kp.pubkey())


def test_the_message_is_the_specs() -> None:
    assert signing_message(5, "get", "/ws", b"") == auth.signing_message(5, "GET", "/ws", b"")
    assert signing_message(1, "POST", "/a", b"x") == (
        b"1\nPOST\n/a\n2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    )


def test_timestamps_are_unique_even_on_a_frozen_clock() -> None:
    signer = Signer(Keypair(), clock=lambda: 1_000.0)
    stamps = [signer.timestamp_ms() for _ in range(100)]
    assert stamps == list(range(1_000_000, 1_000_100))
    a = signer.headers("GET", "/accounts/x", b"")
    b = signer.headers("GET", "/accounts/x", b"")
    assert a["X-Signature"] != b["X-Signature"]  # no accidental replay


def test_ws_auth_signs_get_ws_with_an_empty_body() -> None:
    kp = Keypair()
    msg = Signer(kp, clock=lambda: 2_000.0).ws_auth()
    assert msg["type"] == "auth" and msg["agent_id"] == str(kp.pubkey())
    v = auth.verify(
        str(msg["agent_id"]),
        str(msg["timestamp"]),
        str(msg["signature"]),
        "GET",
        "/ws",
        b"",
        now_ms=2_000_000,
    )
    assert v.timestamp_ms == 2_000_000
