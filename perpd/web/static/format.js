// Display helpers. Money arrives as decimal strings and is shown as received (never
// recomputed in floating point); numbers here are for display and charts only.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = dv;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export const short = (id) => (id ? `${id.slice(0, 4)}…${id.slice(-4)}` : "—");

export function agentLink(id) {
  return id ? el("a", { href: `/agents/${encodeURIComponent(id)}`, title: id }, short(id)) : "—";
}

export function positionLink(id, text) {
  return el("a", { href: `/positions/${encodeURIComponent(id)}`, title: id }, text ?? short(id));
}

export function usd(text) {
  if (text === null || text === undefined) return "—";
  const [whole, frac = ""] = String(text).split(".");
  const sign = whole.startsWith("-") ? "-" : "";
  const digits = whole.replace("-", "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}${digits}.${(frac + "00").slice(0, 2)}`;
}

export function price(text) {
  if (text === null || text === undefined) return "—";
  const n = Number(text);
  return n.toLocaleString("en-US", { maximumFractionDigits: n < 10 ? 4 : 2, minimumFractionDigits: 2 });
}

export function rate(text) {
  if (text === null || text === undefined) return "—";
  return `${(Number(text) * 100).toFixed(3)}%`;
}

export function pct(text) {
  if (text === null || text === undefined) return "—";
  return `${(Number(text) * 100).toFixed(2)}%`;
}

export function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString("en-GB", { hour12: false });
}

export function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min`;
}

// Micro-units from a decimal string with at most `places` decimals, exactly (BigInt).
export function units(text, places) {
  const [whole, frac = ""] = String(text).split(".");
  const neg = whole.startsWith("-");
  const v = BigInt(whole.replace("-", "") || "0") * 10n ** BigInt(places) + BigInt((frac + "0".repeat(places)).slice(0, places) || "0");
  return neg ? -v : v;
}

// The price at which a side's equity falls to half its initial margin (SPEC §4:
// liquidatable when E < IM / 2), from the public position object; null if none.
// Requester: Cr + s*N*(P-P0)/P0 = IMr/2. Maker: Cm - s*N*(P-P0)/P0 = IMm/2.
export function liquidationPrices(p) {
  const s = p.side === "long" ? 1n : -1n;
  const n = units(p.size_usdc, 6);
  const p0 = units(p.entry_price, 8);
  if (n === 0n) return { requester: null, maker: null };
  const cr = units(p.requester_collateral_usdc, 6);
  const cm = units(p.maker_collateral_usdc, 6);
  const imr = units(p.requester_initial_margin_usdc, 6);
  const imm = units(p.maker_initial_margin_usdc, 6);
  const at = (delta) => {
    const q = p0 + (p0 * delta) / (s * n); // delta = s*N*(P-P0)/P0 solved for P
    return q > 0n ? Number(q) / 1e8 : null;
  };
  return { requester: at(imr / 2n - cr), maker: at(cm - imm / 2n) };
}

// A decimal string from micro-units (BigInt), the inverse of units(v, 6).
export function fromMicro(v) {
  const neg = v < 0n;
  const a = neg ? -v : v;
  return `${neg ? "-" : ""}${a / 1000000n}.${String(a % 1000000n).padStart(6, "0")}`;
}
