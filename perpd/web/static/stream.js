// The public stream (GET /ws/public): hello, subscribe with since, events in seq order.
// On any close it reconnects (backing off up to 2 s) and resubscribes with since = the
// last seq it received, so a restart of the daemon loses no event and repeats none.

export class PublicStream {
  constructor({ markets = null, since = null, onHello, onEvent, onState }) {
    this.markets = markets;
    this.cursor = since; // null: from the first hello's seq
    this.onHello = onHello;
    this.onEvent = onEvent;
    this.onState = onState;
    this.reconnects = 0;
    this.delay = 250;
    this.hellos = 0;
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/public`);
    this.ws = ws;
    ws.onmessage = (msg) => this.receive(JSON.parse(msg.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.onState("reconnecting");
      setTimeout(() => {
        this.reconnects += 1;
        this.open();
      }, this.delay);
      this.delay = Math.min(this.delay * 2, 2000);
    };
    ws.onerror = () => {}; // onclose follows and reconnects
  }

  async receive(m) {
    if (m.type === "hello") {
      this.hellos += 1;
      if (this.cursor === null) this.cursor = (await this.onHello(m.seq, this.hellos)) ?? m.seq;
      else await this.onHello(m.seq, this.hellos);
      const sub = { type: "subscribe", since: this.cursor };
      if (this.markets) sub.markets = this.markets;
      this.ws.send(JSON.stringify(sub));
      this.delay = 250;
      this.onState("live");
    } else if (m.type === "error") {
      console.warn("public stream:", m.error.code, m.error.message);
    } else if (typeof m.seq === "number") {
      if (m.seq <= this.cursor) return; // never twice
      this.cursor = m.seq;
      this.onEvent(m);
    }
  }
}
