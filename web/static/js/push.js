// The push channel: one socket per page, the token as a subprotocol (never in the URL), exact JSON,
// reconnecting with bounded backoff. Listeners get every message; `status` listeners the socket's state.
import { parseExact } from "./exact-json.js";

const PROTOCOL = "banking.v1";
const RECONNECT_FIRST_MS = 250;
const RECONNECT_MAX_MS = 8000;
const CLOSE_UNAUTHORIZED = 4401;

export class Push {
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.failures = 0;
    this.stopped = false;
    this.state = "connecting";
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new WebSocket(`${scheme}://${location.host}/ws`, [PROTOCOL, `bearer.${this.token}`]);
    this.socket.addEventListener("message", (event) => this.receive(event.data));
    this.socket.addEventListener("close", (event) => this.closed(event));
  }

  receive(text) {
    let message;
    try {
      message = parseExact(text);
    } catch {
      return;
    }
    if (message.type === "welcome") {
      this.failures = 0;
      this.setState("live");
    }
    for (const listener of this.listeners) listener(message);
  }

  closed(event) {
    if (this.stopped) return;
    if (event.code === CLOSE_UNAUTHORIZED) {
      this.setState(`closed: ${event.reason || "not authorized"}`);
      this.onUnauthorized(event.reason);
      return;
    }
    this.failures += 1;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** Math.min(this.failures - 1, 10));
    this.setState(`reconnecting (${event.code}${event.reason ? `: ${event.reason}` : ""})`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  setState(state) {
    this.state = state;
    for (const listener of this.statusListeners) listener(state);
  }

  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener) {
    this.statusListeners.add(listener);
    listener(this.state);
    return () => this.statusListeners.delete(listener);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket.close(1000, "logged out");
  }
}
