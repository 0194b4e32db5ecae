// The live view: one document, three pages by path (/, /agents/{id}, /positions/{id}).
// State comes from the public GETs, then moves with the public stream; prices, margin
// ratios and the chain's slot (which no event carries) are polled.

import { chart } from "./charts.js";
import { age, agentLink, clock, el, fromMicro, liquidationPrices, pct, positionLink, price, rate, short, units, usd } from "./format.js";
import { PublicStream } from "./stream.js";

const REPLAY = 2000; // events of history the tape replays on load
const POSITION_REPLAY = 5000; // events of history a position's page searches
const TAPE_MAX = 80;
const FEED_MAX = 40; // funding lines an agent's page keeps
const PRICE_POINTS = 300;

const state = {
  markets: new Map(), // name -> GET /markets object
  curves: new Map(), // name -> funding curve (the event's or GET /markets'), if any
  prices: new Map(), // name -> [[t, price]]
  fills: new Map(), // name -> Map(position_id -> [t, rate])
  requests: new Map(), // request_id -> {card, quotes: Map(quote_id -> row)}
  positions: new Map(), // position_id -> position object (the page's scope)
  snapshot: 0, // seq of the GET snapshot: events after it move state, earlier ones only the tape
  seqs: [],
  chain: null,
};
const view = route(location.pathname);
window.perpdWeb = { state, view, seqs: state.seqs, stream: null };

function route(path) {
  let m = path.match(/^\/agents\/([^/]+)$/);
  if (m) return { page: "agent", id: decodeURIComponent(m[1]) };
  m = path.match(/^\/positions\/([^/]+)$/);
  if (m) return { page: "position", id: decodeURIComponent(m[1]) };
  return { page: "venue" };
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// ---------------------------------------------------------------- theme

function setupTheme() {
  const btn = document.getElementById("theme");
  const saved = localStorage.getItem("perpd-theme");
  if (saved) document.documentElement.dataset.theme = saved;
  const current = () =>
    document.documentElement.dataset.theme ||
    (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  const label = () => (btn.textContent = current() === "dark" ? "☀ light" : "☾ dark");
  btn.addEventListener("click", () => {
    const next = current() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("perpd-theme", next);
    label();
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", label);
  label();
}

// ---------------------------------------------------------------- layout

const panels = {};

function panel(id, title, wide = false, before = null) {
  const body = el("div", { class: "body", id: `${id}-body` });
  const node = el("section", { class: wide ? "panel wide" : "panel", id }, el("h2", {}, title), body);
  document.getElementById("main").insertBefore(node, before);
  panels[id] = body;
  return body;
}

function crumbs(...parts) {
  document.getElementById("crumbs").replaceChildren(...parts.map((p) => el("span", {}, p)));
}

// ---------------------------------------------------------------- markets

function renderMarkets() {
  const body = panels.markets;
  if (!body) return;
  const rows = [...state.markets.values()].map((m) =>
    el(
      "tr",
      { data: { market: m.market } },
      el("th", {}, m.market),
      el("td", { class: "num" }, price(m.oracle_price)),
      el("td", { class: m.price_usable ? "num" : "num bad", title: m.price_usable ? "usable" : `not usable: ${m.price_unusable_reason ?? ""}` }, age(m.oracle_age_s)),
      el("td", {}, m.price_source === "sim" ? "simulated" : m.price_source ?? "—"),
    ),
  );
  body.replaceChildren(
    el(
      "div",
      { class: "scroll" },
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "market"), el("th", { class: "num" }, "oracle price"), el("th", { class: "num" }, "age"), el("th", {}, "source"))), el("tbody", {}, rows)),
    ),
  );
}

function renderMarketCards() {
  for (const name of state.markets.keys()) {
    let body = panels[`m-${name}`];
    if (!body) body = panel(`m-${name}`, name, false, document.getElementById("tape"));
    const prices = state.prices.get(name) ?? [];
    const fills = [...(state.fills.get(name) ?? new Map()).values()].sort((a, b) => a[0] - b[0]);
    body.replaceChildren(
      el("h3", {}, "oracle price"),
      chart(prices, { label: `${name} price`, fmt: (v) => price(v) }),
      el("h3", {}, "funding rates filled (per period)"),
      chart(fills, { dots: true, label: `${name} filled funding rates`, fmt: (v) => `${(v * 100).toFixed(2)}%` }),
      el("h3", {}, "funding curve"),
      curveTable(name),
    );
  }
}

function curveTable(name) {
  const curve = state.curves.get(name);
  if (curve === undefined)
    return el("p", { class: "empty", data: { curve: "absent" } }, "This daemon publishes no funding curve (GET /markets has no funding_curve).");
  if (curve.length === 0) return el("p", { class: "empty", data: { curve: "empty" } }, "No live quotes or fills yet.");
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      { data: { curve: name } },
      el("thead", {}, el("tr", {}, el("th", {}, "duration"), el("th", { class: "num" }, "best rate"), el("th", { class: "num" }, "live quotes"), el("th", { class: "num" }, "last filled"), el("th", { class: "num" }, "at"))),
      el(
        "tbody",
        {},
        curve.map((c) =>
          el("tr", {}, el("th", {}, c.duration), el("td", { class: "num" }, rate(c.best_rate)), el("td", { class: "num" }, c.live_quotes), el("td", { class: "num" }, rate(c.last_filled_rate)), el("td", { class: "num" }, c.last_filled_at ? clock(c.last_filled_at) : "—")),
        ),
      ),
    ),
  );
}

async function pollMarkets() {
  const { markets } = await getJSON("/markets");
  const now = Date.now() / 1000;
  for (const m of markets) {
    state.markets.set(m.market, m);
    if ("funding_curve" in m) state.curves.set(m.market, m.funding_curve);
    if (m.oracle_price !== null) {
      const series = state.prices.get(m.market) ?? [];
      series.push([now, Number(m.oracle_price)]);
      if (series.length > PRICE_POINTS) series.shift();
      state.prices.set(m.market, series);
    }
  }
  renderMarkets();
  if (view.page === "venue") renderMarketCards();
  if (state.positions.size) renderPositions();
}

// ---------------------------------------------------------------- the RFQ tape

const shownAt = () => String(Date.now());

function tapeInsert(card) {
  const body = panels.tape;
  body.querySelector(".empty")?.remove();
  body.prepend(card);
  while (body.children.length > TAPE_MAX) {
    const old = body.lastElementChild;
    if (old.dataset.requestId) state.requests.delete(old.dataset.requestId);
    old.remove();
  }
}

function requestCard(requestId, r, e) {
  let entry = state.requests.get(requestId);
  if (entry) return entry;
  const head = el("header", {});
  const quotes = el("ul", { class: "quotes" });
  const card = el("article", { class: "rfq", data: { kind: "request", requestId, shownAt: shownAt(), seq: String(e.seq) } }, head, quotes);
  entry = { card, head, quotes, rows: new Map(), status: "open" };
  state.requests.set(requestId, entry);
  fillHead(entry, r, e.ts);
  tapeInsert(card);
  return entry;
}

function fillHead(entry, r, ts) {
  const status = el("span", { class: `state ${entry.status}` }, entry.status);
  entry.head.replaceChildren(
    el("time", {}, clock(ts)),
    r ? el("strong", {}, r.market) : el("strong", {}, "request"),
    r ? `${r.side} ${usd(r.size_usdc)} × ${r.leverage}` : short(entry.card.dataset.requestId),
    r ? el("span", { class: "muted" }, `max ${rate(r.max_funding_rate)} · ${r.duration}`) : null,
    r ? el("span", { class: "muted" }, "by ", agentLink(r.agent_id)) : null,
    status,
  );
  entry.statusNode = status;
}

function setRequestStatus(entry, status) {
  entry.status = status;
  entry.card.dataset.status = status;
  entry.statusNode.className = `state ${status}`;
  entry.statusNode.textContent = status;
}

function quoteRow(entry, q, e) {
  let row = entry.rows.get(q.quote_id);
  if (row) return row;
  const status = el("span", { class: "state live" }, "live");
  row = el(
    "li",
    { data: { kind: "quote", quoteId: q.quote_id, requestId: q.request_id, shownAt: shownAt(), seq: String(e.seq) } },
    el("time", {}, clock(e.ts)),
    q.agent_id ? agentLink(q.agent_id) : short(q.quote_id),
    q.funding_rate !== undefined ? el("span", { class: "num" }, rate(q.funding_rate)) : null,
    q.collateral_usdc !== undefined ? el("span", { class: "num muted" }, `coll ${usd(q.collateral_usdc)}`) : null,
    status,
  );
  row.statusNode = status;
  entry.rows.set(q.quote_id, row);
  entry.quotes.append(row);
  return row;
}

function setQuoteStatus(e, status) {
  const entry = state.requests.get(e.data.request_id);
  const row = entry?.rows.get(e.data.quote_id);
  if (!row) return;
  row.dataset.status = status;
  row.statusNode.className = `state ${status}`;
  row.statusNode.textContent = status;
}

function fillLine(entry, p, e) {
  let line = entry.card.querySelector("[data-kind=fill]");
  if (!line) {
    line = el("div", { class: "fill", data: { kind: "fill", requestId: entry.card.dataset.requestId, shownAt: shownAt(), seq: String(e.seq) } });
    entry.card.append(line);
  }
  line.dataset.positionId = p.position_id;
  line.replaceChildren(
    "filled → ",
    positionLink(p.position_id),
    p.entry_price ? ` at ${price(p.entry_price)}` : "",
    p.funding_rate ? `, ${rate(p.funding_rate)} per period` : "",
    p.maker ? el("span", { class: "muted" }, " maker ", agentLink(p.maker)) : null,
  );
}

function eventCard(kind, p, e, ...text) {
  tapeInsert(el("article", { class: `rfq ${kind}`, data: { kind, positionId: p.position_id, shownAt: shownAt(), seq: String(e.seq) } }, el("header", {}, el("time", {}, clock(e.ts)), el("strong", {}, p.market ?? ""), ...text)));
}

function onTape(e) {
  const d = e.data;
  switch (e.type) {
    case "trade_request":
      requestCard(d.request_id, d, e);
      break;
    case "request_expired":
    case "request_cancelled": {
      const entry = state.requests.get(d.request_id);
      if (entry && entry.status === "open") setRequestStatus(entry, e.type === "request_expired" ? "expired" : "cancelled");
      break;
    }
    case "quote":
      quoteRow(requestCard(d.request_id, null, e), d, e);
      break;
    case "quote_accepted":
      setQuoteStatus(e, "accepted");
      if (state.requests.has(d.request_id)) {
        const entry = state.requests.get(d.request_id);
        setRequestStatus(entry, "filled");
        fillLine(entry, d, e);
      }
      break;
    case "quote_rejected":
      setQuoteStatus(e, "rejected");
      break;
    case "quote_expired":
      setQuoteStatus(e, "expired");
      break;
    case "quote_cancelled":
      setQuoteStatus(e, "cancelled");
      break;
    case "position_opened": {
      const entry = state.requests.get(d.request_id) ?? requestCard(d.request_id, null, e);
      setRequestStatus(entry, "filled");
      fillLine(entry, d, e);
      break;
    }
    case "position_failed": {
      const entry = state.requests.get(d.request_id);
      if (entry) setRequestStatus(entry, "open");
      break;
    }
    case "liquidation":
      eventCard("liquidation", d, e, el("span", { class: "state bad" }, "liquidated"), `${d.liquidated_side ?? ""} side of `, positionLink(d.position_id), ` at ${price(d.exit_price)}`, el("span", { class: "muted" }, " size ", usd(d.size_usdc)));
      break;
    case "position_closed":
      eventCard("close", d, e, el("span", { class: "state" }, "closed"), `${d.size_percent ?? ""}% of `, positionLink(d.position_id), ` at ${price(d.exit_price)}`);
      break;
  }
}

// ---------------------------------------------------------------- positions

function liqCell(p) {
  const m = state.markets.get(p.market);
  const mark = m && m.oracle_price !== null ? Number(m.oracle_price) : null;
  const liq = liquidationPrices(p);
  const near = [liq.requester, liq.maker].filter((x) => x !== null);
  if (!near.length || mark === null) return el("td", { class: "num" }, "—");
  const nearest = near.reduce((a, b) => (Math.abs(a - mark) < Math.abs(b - mark) ? a : b));
  const dist = ((nearest - mark) / mark) * 100;
  return el("td", { class: Math.abs(dist) < 2 ? "num bad" : "num", title: `requester at ${price(liq.requester)}, maker at ${price(liq.maker)}` }, `${price(nearest)} (${dist >= 0 ? "+" : ""}${dist.toFixed(2)}%)`);
}

// The agent's view of a position: its role, its side, the funding it received (+) or paid.
function mine(p) {
  const requester = p.requester === view.id;
  const paid = units(p.funding_paid_usdc ?? "0", 6); // requester -> maker
  const side = requester ? p.side : p.side === "long" ? "short" : "long";
  return { role: requester ? "requester" : "maker", side, funding: requester ? -paid : paid };
}

function positionRow(p) {
  const open = p.status === "open";
  const agent = view.page === "agent" ? mine(p) : null;
  return el(
    "tr",
    { data: { positionId: p.position_id, status: p.status } },
    el("td", {}, positionLink(p.position_id)),
    el("td", {}, p.market),
    agent ? el("td", {}, agent.role) : null,
    el("td", {}, agent ? agent.side : p.side),
    el("td", { class: "num" }, usd(p.size_usdc)),
    el("td", { class: "num" }, price(p.entry_price)),
    el("td", { class: "num" }, `${p.leverage}×`),
    el("td", { class: "num" }, rate(p.funding_rate)),
    el("td", {}, agentLink(p.requester)),
    el("td", {}, agentLink(p.maker)),
    el("td", { class: "num" }, usd(p.unrealized_pnl_usdc)),
    el("td", { class: "num" }, agent ? usd(fromMicro(agent.funding)) : usd(p.funding_paid_usdc)),
    el("td", { class: "num" }, open ? pct(p.margin_ratio_requester) : "—"),
    el("td", { class: "num" }, open ? pct(p.margin_ratio_maker) : "—"),
    open ? liqCell(p) : el("td", {}, p.status),
  );
}

function renderPositions() {
  const body = panels.positions;
  if (!body) return;
  const list = [...state.positions.values()].sort((a, b) => b.opened_at - a.opened_at);
  if (!list.length) return body.replaceChildren(el("p", { class: "empty" }, view.page === "venue" ? "No open positions." : "No positions."));
  const agent = view.page === "agent";
  const head = ["position", "market", agent ? "role" : null, agent ? "its side" : "side", "size", "entry", "lev", "rate", "requester", "maker", "uPnL (req.)", agent ? "funding (+ received)" : "funding paid (req.)", "margin R", "margin M", "liquidation (distance)"].filter(Boolean);
  const table = el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), el("tbody", {}, list.slice(0, 200).map(positionRow))));
  if (!agent) return body.replaceChildren(table);
  const rows = list.map(mine);
  const net = rows.reduce((a, r) => a + r.funding, 0n);
  const summary = el(
    "p",
    { class: "summary", data: { fills: String(list.length) } },
    `${list.length} fills (${rows.filter((r) => r.role === "requester").length} as requester, ${rows.filter((r) => r.role === "maker").length} as maker), `,
    `${list.filter((p) => p.status === "open").length} open; net funding ${usd(fromMicro(net))}`,
  );
  body.replaceChildren(summary, table);
}

function inScope(p) {
  if (view.page === "venue") return p.status === "open";
  if (view.page === "agent") return p.requester === view.id || p.maker === view.id;
  return p.position_id === view.id;
}

function onPosition(e) {
  const p = e.data;
  if (!["position_opened", "position_closed", "liquidation", "position_failed"].includes(e.type)) return;
  if (e.type === "position_opened" && p.market) {
    const m = state.fills.get(p.market) ?? new Map();
    m.set(p.position_id, [e.ts, Number(p.funding_rate)]);
    state.fills.set(p.market, m);
  }
  if (e.seq <= state.snapshot) return; // the GET snapshot already has it
  const known = state.positions.get(p.position_id);
  const next = e.type === "position_failed" ? { ...known, status: "failed" } : { ...known, ...p };
  if (next.position_id && inScope(next)) state.positions.set(p.position_id, next);
  else state.positions.delete(p.position_id);
  renderPositions();
}

async function pollPositions(query) {
  const { positions } = await getJSON(`/positions?${query}`);
  state.positions = new Map(positions.filter(inScope).map((p) => [p.position_id, p]));
  renderPositions();
}

// ---------------------------------------------------------------- chain

// what a transaction was for: a position (pos_...), an agent (base58), or a batch id
function txRef(t) {
  if (!t.ref) return "—";
  if (t.ref.startsWith("pos_")) return positionLink(t.ref);
  if (/^[1-9A-HJ-NP-Za-km-z]{32,44}$/.test(t.ref)) return agentLink(t.ref);
  return el("span", { title: t.ref }, short(t.ref));
}

async function pollChain() {
  const body = panels.chain;
  const info = await getJSON("/chain");
  if (info.mode === "none") {
    body.replaceChildren(el("p", { class: "empty", data: { chain: "none" } }, "--chain none: off-chain test mode, custodial; SQLite is the only ledger."));
    return;
  }
  const ref = view.page === "position" ? `&ref=${encodeURIComponent(view.id)}` : "";
  const { transactions } = await getJSON(`/chain/transactions?limit=8${ref}`);
  body.replaceChildren(
    el("p", { data: { chain: info.mode } }, el("strong", {}, info.mode), " slot ", el("span", { class: "num", id: "slot" }, info.slot ?? "—"), el("span", { class: "muted" }, ` program ${short(info.program_id)}`)),
    transactions.length
      ? el("div", { class: "scroll" }, el("table", {}, el("tbody", {}, transactions.map((t) => el("tr", { data: { signature: t.signature } }, el("td", {}, t.kind), el("td", {}, txRef(t)), el("td", { class: "num" }, t.slot), el("td", { class: "sig", title: t.signature }, short(t.signature)))))))
      : el("p", { class: "empty" }, "No transactions yet."),
  );
}

// ---------------------------------------------------------------- agent and position pages

function relevant(e) {
  const d = e.data;
  if (view.page === "venue") return true;
  if (view.page === "position") return d.position_id === view.id;
  const a = view.id;
  return d.agent_id === a || d.requester === a || d.maker === a || d.payer === a || d.receiver === a || d.liquidator === a || state.requests.has(d.request_id);
}

function onFunding(e) {
  if (e.type !== "funding_settled" || !panels.funding) return;
  const d = e.data;
  const sign = view.page === "agent" ? (d.receiver === view.id ? "+" : "−") : "";
  panels.funding.querySelector(".empty")?.remove();
  while (panels.funding.children.length >= FEED_MAX) panels.funding.lastElementChild.remove();
  panels.funding.prepend(el("p", { data: { kind: "funding", positionId: d.position_id, seq: String(e.seq) } }, el("time", {}, clock(e.ts)), ` ${sign}${usd(d.amount_usdc)} `, el("span", { class: "muted" }, "paid by "), agentLink(d.payer), el("span", { class: "muted" }, " to "), agentLink(d.receiver), el("span", { class: "muted" }, " on "), positionLink(d.position_id), ` at ${rate(d.funding_rate)}`));
}

function renderPositionDetail() {
  const p = state.positions.get(view.id);
  const body = panels.detail;
  if (!p) return;
  const liq = liquidationPrices(p);
  const fields = [
    ["status", p.status], ["market", p.market], ["side (requester)", p.side], ["size", usd(p.size_usdc)], ["entry price", price(p.entry_price)], ["mark price", price(p.mark_price)],
    ["leverage", `${p.leverage}×`], ["funding rate", rate(p.funding_rate)], ["funding paid (requester → maker)", usd(p.funding_paid_usdc)], ["realized PnL", usd(p.realized_pnl_usdc)], ["unrealized PnL", usd(p.unrealized_pnl_usdc)],
    ["requester", agentLink(p.requester)], ["maker", agentLink(p.maker)], ["requester collateral", usd(p.requester_collateral_usdc)], ["maker collateral", usd(p.maker_collateral_usdc)],
    ["margin ratio requester", pct(p.margin_ratio_requester)], ["margin ratio maker", pct(p.margin_ratio_maker)], ["liquidation price requester", price(liq.requester)], ["liquidation price maker", price(liq.maker)],
    ["opened", p.opened_at_iso], ["closed", p.closed_at ? clock(p.closed_at) : "—"], ["exit price", price(p.exit_price)], ["liquidator", agentLink(p.liquidator)], ["on-chain address", p.position_address ?? "—"],
    ["lock transaction", p.lock_signature ?? "—"], ["last settle transaction", p.settle_signature ?? "—"], ["last close transaction", p.close_signature ?? "—"],
  ];
  body.replaceChildren(el("dl", { class: "fields" }, fields.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
}

function onTimeline(e) {
  if (!panels.timeline) return;
  panels.timeline.querySelector(".empty")?.remove();
  const d = e.data;
  const what = { quote_accepted: "filled: its quote accepted", position_opened: `opened at ${price(d.entry_price)}`, funding_settled: `funding ${usd(d.amount_usdc)} to ${short(d.receiver)}`, position_closed: `closed ${d.size_percent ?? ""}% at ${price(d.exit_price)}`, liquidation: `liquidated (${d.liquidated_side ?? ""}) at ${price(d.exit_price)}`, position_failed: "failed on chain" }[e.type] ?? e.type;
  panels.timeline.append(el("p", { data: { kind: e.type, seq: String(e.seq) } }, el("time", {}, clock(e.ts)), ` ${what}`));
}

// ---------------------------------------------------------------- the stream

function onEvent(e) {
  state.seqs.push(e.seq);
  document.getElementById("seq").textContent = `seq ${e.seq}`;
  if (e.type === "funding_curve") {
    state.curves.set(e.data.market, e.data.funding_curve);
    if (view.page === "venue") renderMarketCards();
    return;
  }
  if (!relevant(e)) return;
  if (panels.tape) onTape(e);
  onPosition(e);
  onFunding(e);
  if (view.page === "position") {
    onTimeline(e);
    if (e.seq > state.snapshot) renderPositionDetail();
  }
}

function setStatus(s) {
  const node = document.getElementById("status");
  node.dataset.state = s;
  node.textContent = s === "live" ? "● live" : "○ reconnecting…";
}

function every(ms, fn) {
  const run = () => fn().catch((err) => console.warn(String(err)));
  setInterval(run, ms);
  return run();
}

async function start() {
  setupTheme();
  let markets = null;
  let positionsQuery = "status=open&limit=500";
  if (view.page === "venue") {
    crumbs("venue");
    panel("markets", "Markets");
    panel("tape", "RFQ tape: requests, quotes, fills", true).append(el("p", { class: "empty" }, "Waiting for requests…"));
    panel("positions", "Open positions", true);
    panel("chain", "Chain", true);
  } else if (view.page === "agent") {
    crumbs(el("a", { href: "/" }, "venue"), `agent ${short(view.id)}`);
    positionsQuery = `agent_id=${encodeURIComponent(view.id)}&limit=500`;
    panel("positions", `Positions and fills of ${short(view.id)}`, true);
    panel("funding", "Funding settled (recent events, newest first)", true).append(el("p", { class: "empty" }, "None in the recent events."));
    panel("tape", "Its requests, quotes and fills", true).append(el("p", { class: "empty" }, "Nothing yet."));
    panel("markets", "Markets");
  } else {
    crumbs(el("a", { href: "/" }, "venue"), `position ${short(view.id)}`);
    panel("detail", "Position", true);
    panel("timeline", "History").append(el("p", { class: "empty" }, `Nothing in the last ${POSITION_REPLAY} events.`));
    panel("chain", "Its chain transactions");
    panel("markets", "Markets");
  }
  state.stream = new PublicStream({
    markets,
    onState: setStatus,
    onHello: async (seq, n) => {
      if (n > 1) return null; // a reconnect: carry on from the last seq received
      state.snapshot = seq;
      window.perpdWeb.hello = seq;
      await every(1000, pollMarkets);
      if (view.page === "position") {
        const p = await getJSON(`/positions/${encodeURIComponent(view.id)}`);
        state.positions.set(p.position_id, p);
        renderPositionDetail();
        every(2000, async () => {
          state.positions.set(view.id, await getJSON(`/positions/${encodeURIComponent(view.id)}`));
          renderPositionDetail();
        });
        every(2000, pollChain);
        state.stream.markets = [p.market];
        window.perpdWeb.since = Math.max(0, seq - POSITION_REPLAY);
        return window.perpdWeb.since;
      }
      await every(3000, () => pollPositions(positionsQuery));
      if (panels.chain) every(2000, pollChain);
      window.perpdWeb.since = Math.max(0, seq - REPLAY);
      return window.perpdWeb.since;
    },
    onEvent,
  });
  window.perpdWeb.stream = state.stream;
}

start().catch((err) => {
  document.getElementById("main").prepend(el("p", { class: "bad" }, `The page could not start: ${err}`));
  throw err;
});
