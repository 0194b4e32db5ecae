"""Consents on the wire (SPEC §6) through real HTTP and WebSocket on loopback.

The daemon runs with ``chain="local"``: every money-moving call needs its consent,
checked against the bytes the daemon rebuilds (no chain backend is needed for that).
Consents are signed here with `perpd.chain._consent`, the reference bytes; each refusal
is checked for its code and for leaving every row of venue state as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from perpd.chain import _consent as c
from perpd.chain._program import LOCAL_PROGRAM_ID
from perpd.units import format_rate, format_usdc
from tests.conftest import Agent, Server, base_config, start_server, usdc
from tests.wsclient import connect

M = 1_000_000
OTHER_PROGRAM = Keypair().pubkey()


@pytest.fixture
async def chain(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    s = await start_server(nursery, base_config(tmp_path, chain="local"))
    yield s
    await s.http.aclose()
    s.shutdown.set()


def sign(kp: Keypair, message: bytes) -> str:
    return str(kp.sign_message(message))


def pda(requester: Agent, nonce: int, program: Pubkey = LOCAL_PROGRAM_ID) -> Pubkey:
    seeds = [b"position", bytes(requester.keypair.pubkey()), nonce.to_bytes(8, "little")]
    return Pubkey.find_program_address(seeds, program)[0]


@dataclass
class RequestTerms:
    """A request's terms as the consent bytes name them; ``body`` is its wire form."""

    nonce: int
    expires_at: int
    market: int = 0
    side: int = 0
    size: int = 1000 * M
    leverage: int = 10
    max_rate: int = 1000
    duration: int = 0
    program: Pubkey = LOCAL_PROGRAM_ID
    signer: Keypair | None = None  # None: the requester

    def message(self, requester: Agent) -> bytes:
        return c.request_consent(
            self.program,
            requester.keypair.pubkey(),
            self.nonce,
            self.market,
            self.side,
            self.size,
            self.leverage,
            self.max_rate,
            self.duration,
            self.expires_at,
        )

    def body(self, requester: Agent, consent: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "market": ["BTC-PERP", "ETH-PERP", "SOL-PERP"][self.market],
            "side": ["long", "short"][self.side],
            "size_usdc": format_usdc(self.size),
            "leverage": self.leverage,
            "max_funding_rate": format_rate(self.max_rate),
            "duration": "perpetual" if self.duration == 0 else f"{self.duration // 3600}h",
            "nonce": self.nonce,
            "expires_at": self.expires_at,
        }
        if consent is not None:
            out["consent"] = consent
        return out


@dataclass
class Book:
    """Three funded agents on a chain daemon, and helpers that sign like an SDK would."""

    server: Server
    requester: Agent
    maker: Agent
    other: Agent
    nonces: list[int] = field(default_factory=lambda: [7, 1 << 63, 2**64 - 1, 42, 43, 44])

    @property
    def now(self) -> int:
        return int(self.server.clock())

    def terms(self, **changes: Any) -> RequestTerms:
        return RequestTerms(nonce=self.nonces.pop(0), expires_at=self.now + 30, **changes)

    async def request(self, terms: RequestTerms | None = None) -> dict[str, Any]:
        t = terms or self.terms()
        consent = sign(self.requester.keypair, t.message(self.requester))
        return await self.requester.ok("/trade/request", t.body(self.requester, consent), 201)

    def quote_body(self, req: dict[str, Any], **sign_as: Any) -> dict[str, Any]:
        """A quote of 500 ppm with 200 USDC on ``req`` by the maker; ``sign_as`` changes a
        term in the consent only."""
        rate, collateral = 500, 200 * M
        terms = {
            "program": LOCAL_PROGRAM_ID,
            "maker": self.maker.keypair.pubkey(),
            "request_hash": bytes.fromhex(req["request_hash"]),
            "rate": rate,
            "collateral": collateral,
            "valid_until": self.now + 20,
        }
        valid_until = terms["valid_until"]
        signer = sign_as.pop("signer", self.maker.keypair)
        terms.update(sign_as)
        return {
            "request_id": req["request_id"],
            "funding_rate": format_rate(rate),
            "collateral_usdc": format_usdc(collateral),
            "valid_until": valid_until,
            "consent": sign(signer, c.quote_consent(**terms)),
        }

    async def open(self) -> dict[str, Any]:
        req = await self.request()
        quote = await self.maker.ok("/trade/quote", self.quote_body(req), 201)
        accepted = await self.requester.ok(
            "/trade/accept", {"request_id": req["request_id"], "quote_id": quote["quote_id"]}
        )
        return accepted["position"]  # type: ignore[no-any-return]

    def close_body(self, pos: dict[str, Any], pct: int, **sign_as: Any) -> dict[str, Any]:
        terms = {
            "program": LOCAL_PROGRAM_ID,
            "position": Pubkey.from_string(pos["position_address"]),
            "size_percent": pct,
            "closes": pos["closes"],
            "expires_at": self.now + 30,
        }
        expires_at = terms["expires_at"]
        signer = sign_as.pop("signer", self.requester.keypair)
        terms.update(sign_as)
        return {
            "position_id": pos["position_id"],
            "size_percent": pct,
            "expires_at": expires_at,
            "consent": sign(signer, c.close_consent(**terms)),
        }

    def wallet(self, agent: Agent) -> Pubkey:
        """The agent's own USDC token account (withdrawals to it open it if needed)."""
        mint = self.server.venue.backend.client.usdc_mint
        return get_associated_token_address(agent.keypair.pubkey(), mint)

    def withdraw_body(
        self, agent: Agent, amount: int, withdrawals: int, destination: Pubkey, /, **sign_as: Any
    ) -> dict[str, Any]:
        terms = {
            "program": LOCAL_PROGRAM_ID,
            "agent": agent.keypair.pubkey(),
            "destination": destination,
            "amount": amount,
            "withdrawals": withdrawals,
            "expires_at": self.now + 30,
        }
        expires_at = terms["expires_at"]
        signer = sign_as.pop("signer", agent.keypair)
        terms.update(sign_as)
        return {
            "amount_usdc": format_usdc(amount),
            "destination": str(destination),
            "expires_at": expires_at,
            "consent": sign(signer, c.withdraw_consent(**terms)),
        }

    async def refused(
        self, agent: Agent, path: str, body: dict[str, Any], status: int, code: str
    ) -> dict[str, Any]:
        """``body`` is refused with ``status``/``code`` and no row of state changes."""
        before = await self.server.digest()
        r = await agent.post(path, body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert await self.server.digest() == before
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def book(chain: Server) -> Book:
    b = Book(chain, *(chain.agent(consents=False) for _ in range(3)))
    for a in (b.requester, b.maker, b.other):
        await a.fund("10000")
    await chain.pin("BTC-PERP", "50000")
    return b


async def test_signed_lifecycle_shows_consents_addresses_and_counters(book: Book) -> None:
    s, requester, maker = book.server, book.requester, book.maker
    chain_info = (await s.http.get("/chain")).json()
    assert (chain_info["mode"], chain_info["program_id"]) == ("local", str(LOCAL_PROGRAM_ID))
    terms = book.terms()
    req = await book.request(terms)
    message = terms.message(requester)
    assert req["nonce"] == terms.nonce and req["expires_at"] == terms.expires_at
    assert req["request_hash"] == hashlib.sha256(message).hexdigest()
    listed = (await s.http.get("/requests")).json()["requests"]
    assert [(r["request_id"], r["consent"]) for r in listed] == [
        (req["request_id"], req["consent"])
    ]
    events = (await maker.get("/events")).json()["events"]
    announced = next(e["data"] for e in events if e["type"] == "trade_request")
    assert {k: announced[k] for k in ("nonce", "consent", "request_hash")} == {
        k: req[k] for k in ("nonce", "consent", "request_hash")
    }

    quote = await maker.ok("/trade/quote", book.quote_body(req), 201)
    assert quote["expires_at"] == book.now + 20 and quote["consent"]
    opened = (
        await requester.ok(
            "/trade/accept", {"request_id": req["request_id"], "quote_id": quote["quote_id"]}
        )
    )["position"]
    assert opened["position_address"] == str(pda(requester, terms.nonce))
    assert (opened["nonce"], opened["closes"]) == (terms.nonce, 0)

    half = await requester.ok("/trade/close", book.close_body(opened, 50))
    assert half["position"]["closes"] == 1 and half["position"]["status"] == "open"
    full = await requester.ok("/trade/close", book.close_body(half["position"], 100))
    assert full["position"]["closes"] == 2 and full["position"]["status"] == "closed"

    # the requester's own USDC wallet: the router opens it with the first withdrawal
    dest = book.wallet(requester)
    for n in range(2):
        account = await requester.ok(
            f"/accounts/{requester.id}/withdraw", book.withdraw_body(requester, 5 * M, n, dest)
        )
        assert account["withdrawals"] == n + 1
    assert usdc(account["free_usdc"]) == (await requester.balances())[0]
    await s.assert_balanced()


async def test_nonces_span_u64_and_a_reused_nonce_is_409(book: Book) -> None:
    for _ in range(3):  # 7, 2^63 and 2^64 - 1: stored as i64, shown as u64
        t = book.terms()
        req = await book.request(t)
        got = (await book.server.http.get(f"/requests/{req['request_id']}")).json()
        assert got["nonce"] == t.nonce
    again = RequestTerms(nonce=1 << 63, expires_at=book.now + 60)
    consent = sign(book.requester.keypair, again.message(book.requester))
    body = again.body(book.requester, consent)
    await book.refused(book.requester, "/trade/request", body, 409, "nonce_used")
    # another requester may use the same nonce: nonces are per requester
    theirs = sign(book.other.keypair, again.message(book.other))
    await book.other.ok("/trade/request", again.body(book.other, theirs), 201)


@pytest.mark.parametrize(
    "term",
    [
        {"size": 1001 * M},
        {"max_rate": 1001},
        {"leverage": 9},
        {"expires_at": 1},  # relative to the body's: see below
        {"program": OTHER_PROGRAM},
        {"market": 1},
        {"side": 1},
        {"nonce": 8},
        {"duration": 3600},
        {"signer": Keypair()},
    ],
    ids=lambda t: next(iter(t)),
)
async def test_request_consent_for_other_terms_is_401(book: Book, term: dict[str, Any]) -> None:
    sent = book.terms()
    signed = RequestTerms(**{**sent.__dict__, **term})
    if "expires_at" in term:
        signed.expires_at = sent.expires_at + 1
    kp = signed.signer or book.requester.keypair
    body = sent.body(book.requester, sign(kp, signed.message(book.requester)))
    err = await book.refused(book.requester, "/trade/request", body, 401, "unauthorized")
    assert "request consent does not verify" in err["error"]["message"]


async def test_missing_or_malformed_consents_are_400(book: Book) -> None:
    t = book.terms()
    await book.refused(
        book.requester, "/trade/request", t.body(book.requester, None), 400, "invalid_request"
    )
    good = sign(book.requester.keypair, t.message(book.requester))
    for consent in ("not base58!", "1" * 10, 12):
        body = t.body(book.requester, consent)  # type: ignore[arg-type]
        await book.refused(book.requester, "/trade/request", body, 400, "invalid_request")
    for drop in ("nonce", "expires_at"):
        body = {k: v for k, v in t.body(book.requester, good).items() if k != drop}
        await book.refused(book.requester, "/trade/request", body, 400, "invalid_request")
    both = {**t.body(book.requester, good), "expires_in": 30}
    await book.refused(book.requester, "/trade/request", both, 400, "invalid_request")
    for bad_deadline in (book.now, book.now + 301, "soon"):
        body = {**t.body(book.requester, good), "expires_at": bad_deadline}
        await book.refused(book.requester, "/trade/request", body, 400, "invalid_request")

    req = await book.request()
    quote = book.quote_body(req)
    await book.refused(
        book.maker,
        "/trade/quote",
        {k: v for k, v in quote.items() if k != "consent"},
        400,
        "invalid_request",
    )
    await book.refused(
        book.maker, "/trade/quote", {**quote, "valid_until": book.now + 61}, 400, "invalid_request"
    )
    position = await book.open()
    close = book.close_body(position, 100)
    await book.refused(
        book.requester,
        "/trade/close",
        {k: v for k, v in close.items() if k != "consent"},
        400,
        "invalid_request",
    )
    path = f"/accounts/{book.maker.id}/withdraw"
    await book.refused(book.maker, path, {"amount_usdc": "1"}, 400, "invalid_request")
    w = book.withdraw_body(book.maker, M, 0, Keypair().pubkey())
    for drop in ("destination", "expires_at"):
        body = {k: v for k, v in w.items() if k != drop}
        await book.refused(book.maker, path, body, 400, "invalid_request")
    await book.refused(book.maker, path, {**w, "destination": "nope"}, 400, "invalid_request")


@pytest.mark.parametrize(
    "term",
    [
        {"rate": 501},
        {"collateral": 201 * M},
        {"valid_until": 0},  # shifted by one second below
        {"program": OTHER_PROGRAM},
        {"signer": Keypair()},
        {"maker": Keypair().pubkey()},
    ],
    ids=lambda t: next(iter(t)),
)
async def test_quote_consent_for_other_terms_is_401(book: Book, term: dict[str, Any]) -> None:
    req = await book.request()
    if "valid_until" in term:
        term = {"valid_until": book.now + 21}
    body = book.quote_body(req, **term)
    await book.refused(book.maker, "/trade/quote", body, 401, "unauthorized")


async def test_quote_consent_for_another_request_is_401(book: Book) -> None:
    first, second = await book.request(), await book.request()
    body = {**book.quote_body(first), "request_id": second["request_id"]}
    await book.refused(book.maker, "/trade/quote", body, 401, "unauthorized")
    # the same quote consent on its own request goes through
    await book.maker.ok("/trade/quote", book.quote_body(first), 201)


@pytest.mark.parametrize(
    "term",
    [
        {"size_percent": 100},
        {"closes": 1},
        {"program": OTHER_PROGRAM},
        {"position": Keypair().pubkey()},
        {"signer": Keypair()},
        {"expires_at": 0},
    ],
    ids=lambda t: next(iter(t)),
)
async def test_close_consent_for_other_terms_is_401(book: Book, term: dict[str, Any]) -> None:
    position = await book.open()
    if "expires_at" in term:
        term = {"expires_at": book.now + 31}
    body = book.close_body(position, 50, **term)
    await book.refused(book.requester, "/trade/close", body, 401, "unauthorized")


async def test_replayed_close_consent_after_closes_advanced_is_401(book: Book) -> None:
    position = await book.open()
    body = book.close_body(position, 50)
    await book.requester.ok("/trade/close", body)
    err = await book.refused(book.requester, "/trade/close", body, 401, "unauthorized")
    assert "close consent does not verify" in err["error"]["message"]
    # a maker cannot close, consent or not; a stranger's position id is 404
    await book.refused(book.maker, "/trade/close", body, 403, "forbidden")
    await book.refused(
        book.requester, "/trade/close", {**body, "position_id": "pos_nope"}, 404, "not_found"
    )


@pytest.mark.parametrize(
    "term",
    [
        {"amount": 2 * M},
        {"withdrawals": 1},
        {"destination": Keypair().pubkey()},
        {"program": OTHER_PROGRAM},
        {"signer": Keypair()},
        {"expires_at": 0},
    ],
    ids=lambda t: next(iter(t)),
)
async def test_withdraw_consent_for_other_terms_is_401(book: Book, term: dict[str, Any]) -> None:
    if "expires_at" in term:
        term = {"expires_at": book.now + 31}
    body = book.withdraw_body(book.maker, M, 0, Keypair().pubkey(), **term)
    path = f"/accounts/{book.maker.id}/withdraw"
    await book.refused(book.maker, path, body, 401, "unauthorized")


async def test_replayed_withdraw_consent_is_401(book: Book) -> None:
    path = f"/accounts/{book.maker.id}/withdraw"
    body = book.withdraw_body(book.maker, M, 0, book.wallet(book.maker))
    assert (await book.maker.ok(path, body))["withdrawals"] == 1
    await book.refused(book.maker, path, body, 401, "unauthorized")
    assert (await book.maker.balances())[0] == 9999 * M


async def test_socket_quote_needs_and_checks_its_consent(book: Book) -> None:
    req = await book.request()
    good = book.quote_body(req)  # signed for a rate of 500 ppm
    cases = [
        ({k: v for k, v in good.items() if k != "consent"}, "error", "invalid_request"),
        ({**good, "funding_rate": "0.000499"}, "error", "unauthorized"),
        (good, "quote_ack", None),
    ]
    async with connect(book.server.url, book.maker) as (ws, _):
        for n, (body, answer, code) in enumerate(cases):
            await ws.send({"type": "quote", "client_id": n, **body})
            reply = await ws.until(answer)
            assert reply["client_id"] == n
            assert reply.get("error", {}).get("code") == code
    live = (await book.server.http.get(f"/quotes?request_id={req['request_id']}")).json()
    assert [q["consent"] for q in live["quotes"]] == [good["consent"]]


async def test_without_a_chain_consents_are_optional_and_checked_when_present(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start_server(nursery, base_config(tmp_path, chain="none"))  # off-chain
    b = Book(server, *(server.agent(consents=False) for _ in range(3)))
    for a in (b.requester, b.maker):
        await a.fund("10000")
    await server.pin("BTC-PERP", "50000")
    assert (await server.http.get("/chain")).json() == {"mode": "none"}
    t = b.terms()
    bad = t.body(b.requester, sign(Keypair(), t.message(b.requester)))
    await b.refused(b.requester, "/trade/request", bad, 401, "unauthorized")
    # a nonce alone is kept unique; a quote consent needs a request consent to name
    plain = await b.requester.ok("/trade/request", t.body(b.requester, None), 201)
    assert (plain["nonce"], plain["consent"], plain["request_hash"]) == (t.nonce, None, None)
    await b.refused(b.requester, "/trade/request", t.body(b.requester, None), 409, "nonce_used")
    fake = {**b.quote_body({**plain, "request_hash": "00" * 32})}
    await b.refused(b.maker, "/trade/quote", fake, 400, "invalid_request")
    # a signed lifecycle works the same without a chain
    position = await b.open()
    closed = await b.requester.ok("/trade/close", b.close_body(position, 100))
    assert closed["position"]["closes"] == 1
    await server.http.aclose()
    server.shutdown.set()
