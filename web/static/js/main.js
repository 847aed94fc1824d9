// The console: a hash router over a handful of pages, one push socket shared by all of them.
import { api, ApiError, saveSession, session } from "./api.js";
import { parseExact } from "./exact-json.js";
import { h, money, shortId, when } from "./dom.js";
import { Push } from "./push.js";
import { sortEvents, timeline } from "./timeline.js";

const STAFF = new Set(["teller", "admin"]);
const STAFF_REFRESH_MS = 2000;
const THROUGHPUT_WINDOW_MS = 10000;
const NOTICE_SHOWN_MS = 8000;
const NOTICES_MAX = 5;
const FEED_MAX = 30;
const DEMO_SOURCE = "660e8400-e29b-41d4-a716-446655440001";       // alice's main account
const DEMO_DESTINATION = "660e8400-e29b-41d4-a716-446655440003";  // bob's main account

const state = { push: null, config: { demo: false }, cleanup: [] };

const PAGES = {
  login: { title: "Log in", render: loginPage, public: true },
  accounts: { title: "My accounts", render: accountsPage, customer: true },
  transfer: { title: "Transfer", render: transferPage },
  history: { title: "History", render: historyPage },
  protocol: { title: "Live protocol", render: protocolPage },
  staff: { title: "Operations", render: staffPage, staff: true },
  demo: { title: "Break things", render: demoPage, demo: true },
};

async function start() {
  try {
    state.config = parseExact(await (await fetch("/console/config.json")).text());
  } catch {
    state.config = { demo: false };
  }
  window.addEventListener("hashchange", route);
  connectPush();
  route();
}

function connectPush() {
  const current = session();
  if (state.push) state.push.stop();
  state.push = current ? new Push(current.token, (reason) => logout(`signed out: ${reason || "token no longer valid"}`)) : null;
  const status = document.getElementById("push-status");
  status.textContent = "";
  if (state.push) {
    state.push.onStatus((value) => { status.textContent = `push: ${value}`; });
    state.push.on(announce);
  }
}

function logout(reason) {
  saveSession(null);
  connectPush();
  location.hash = "#/login";
  if (reason) notify(reason);
}

function visiblePages() {
  const current = session();
  return Object.entries(PAGES).filter(([, page]) => {
    if (page.public) return !current;
    if (!current) return false;
    if (page.customer && current.role !== "customer") return false;
    if (page.staff && !STAFF.has(current.role)) return false;
    if (page.demo && !state.config.demo) return false;
    return true;
  });
}

function route() {
  for (const undo of state.cleanup.splice(0)) undo();
  const [name = "", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const pages = visiblePages();
  const allowed = new Map(pages);
  const current = session();
  const fallback = current ? (STAFF.has(current.role) ? "staff" : "accounts") : "login";
  const pageName = allowed.has(name) ? name : fallback;
  if (pageName !== name) { location.hash = `#/${pageName}`; return; }
  drawNav(pages, pageName);
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", {}, PAGES[pageName].title));
  document.title = `${PAGES[pageName].title} · Banking console`;
  PAGES[pageName].render(main, rest);
  main.focus();
}

function drawNav(pages, active) {
  const items = pages.map(([name, page]) => h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === active ? "page" : null }, page.title)));
  const current = session();
  if (current) items.push(h("li", {}, h("button", { type: "button", onclick: () => logout() }, `Log out ${current.username}`)));
  document.getElementById("nav").replaceChildren(...items);
}

function listen(handler) {
  if (state.push) state.cleanup.push(state.push.on(handler));
}

function every(ms, task) {
  task();
  const timer = setInterval(task, ms);
  state.cleanup.push(() => clearInterval(timer));
}

function notify(text) {
  const box = document.getElementById("notices");
  const notice = h("p", { class: "notice" }, text);
  box.append(notice);
  while (box.children.length > NOTICES_MAX) box.firstChild.remove();
  setTimeout(() => notice.remove(), NOTICE_SHOWN_MS);
}

function announce(message) {
  if (message.type !== "transfer") return;
  const verb = message.status !== "committed" ? `failed (${message.reason})` : message.direction === "credit" ? "received" : "paid";
  notify(`${message.direction === "credit" ? "Credit" : "Debit"} ${message.amount} on ${shortId(message.account_id)}: ${verb}`);
}

function errorText(error) {
  return error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
}

// ----- pages -----

function loginPage(main) {
  const outcome = h("p", { role: "alert", class: "outcome bad", hidden: true });
  const form = h("form", { class: "stack card", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const answer = await api("POST", "/auth/login", { username: data.get("username"), password: data.get("password") });
      saveSession({ token: answer.token, role: answer.role, customer_id: answer.customer_id, username: data.get("username") });
      connectPush();
      location.hash = STAFF.has(answer.role) ? "#/staff" : "#/accounts";
    } catch (error) {
      outcome.hidden = false;
      outcome.textContent = errorText(error);
    }
  } },
  h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true })),
  h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
  h("button", { class: "primary", type: "submit" }, "Log in"), outcome);
  main.append(form, h("p", { class: "muted" }, "Demo logins: alice / alice123, bob / bob123, teller / teller123, admin / admin123."));
  form.querySelector("input").focus();
}

async function myAccounts() {
  return api("GET", `/accounts/customer/${session().customer_id}`);
}

function accountsPage(main) {
  const body = h("tbody");
  const table = h("table", { class: "card" }, h("caption", { class: "muted" }, "Balances update as transfers are decided."),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Account"), h("th", { scope: "col" }, "Balance"), h("th", { scope: "col" }, "Updated"))), body);
  const problem = h("p", { role: "alert" });
  main.append(table, problem);
  const shown = new Map();
  const refresh = async (changed) => {
    try {
      const accounts = await myAccounts();
      body.replaceChildren(...accounts.map((account) => {
        const row = h("tr", { "data-account-id": account.account_id },
          h("th", { scope: "row" }, account.account_id), h("td", { class: "balance" }, money(account.balance)), h("td", {}, when(account.updated_at)));
        if (changed && shown.get(account.account_id) !== account.balance) row.classList.add("changed");
        shown.set(account.account_id, account.balance);
        return row;
      }));
      problem.textContent = "";
    } catch (error) {
      problem.textContent = errorText(error);
    }
  };
  refresh(false);
  // A decision is pushed before the participant applies it: read balances again once it acknowledged.
  const applied = (message) => message.type === "protocol" && message.events.some((e) => e.event_type === "acknowledged" || e.event_type === "completed");
  listen((message) => { if (applied(message) || ["transfer", "resync", "welcome"].includes(message.type)) refresh(true); });
}

function transferPage(main) {
  const current = session();
  const outcome = h("div", { class: "outcome", role: "status", "aria-live": "polite", hidden: true });
  const source = current.role === "customer"
    ? h("select", { name: "source", required: true })
    : h("input", { name: "source", required: true, placeholder: "account id", spellcheck: "false" });
  const form = h("form", { class: "stack card", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    outcome.hidden = false;
    outcome.className = "outcome";
    outcome.textContent = "Sending: prepare, vote, decide…";
    try {
      // The amount goes as the text typed: the API reads a numeric string exactly.
      const transfer = await api("POST", "/transfers", { source_account_id: data.get("source"),
        destination_account_id: data.get("destination").trim(), amount: data.get("amount").trim() });
      outcome.className = "outcome ok";
      outcome.replaceChildren(`Committed: `, money(transfer.amount), ` from ${shortId(transfer.source_account_id)} to ${shortId(transfer.destination_account_id)}. `,
        h("a", { href: `#/protocol/${transfer.transaction_id}` }, "See its protocol"));
    } catch (error) {
      outcome.className = "outcome bad";
      const id = error.details && error.details.transaction_id;
      outcome.replaceChildren(`Failed: ${errorText(error)}`, id ? " " : "", id ? h("a", { href: `#/protocol/${id}` }, "See its protocol") : "");
    }
  } },
  h("label", {}, "From account", source),
  h("label", {}, "To account", h("input", { name: "destination", required: true, spellcheck: "false", placeholder: "account id" })),
  h("label", {}, "Amount", h("input", { name: "amount", required: true, inputmode: "decimal", autocomplete: "off", placeholder: "25.00" })),
  h("button", { class: "primary", type: "submit" }, "Send"), outcome);
  main.append(form);
  if (current.role === "customer") {
    myAccounts().then((accounts) => source.replaceChildren(...accounts.map((account) =>
      h("option", { value: account.account_id }, `${account.account_id} (${account.balance})`))));
  }
}

function historyPage(main) {
  const current = session();
  const body = h("tbody");
  const problem = h("p", { role: "alert" });
  const picker = current.role === "customer" ? h("select", { id: "history-account" }) : h("input", { id: "history-account", placeholder: "account id" });
  const load = async () => {
    if (!picker.value) return;
    try {
      const rows = (await api("GET", `/transfers/history/${picker.value.trim()}?limit=50`)).transactions;
      body.replaceChildren(...rows.map((row) => h("tr", {},
        h("td", {}, when(row.created_at)), h("td", {}, h("span", { class: `status status-${row.status}` }, row.status), row.reason ? ` ${row.reason}` : ""),
        h("td", {}, row.source_account_id === picker.value ? "debit" : "credit"), h("td", {}, money(row.amount)),
        h("td", {}, h("a", { href: `#/protocol/${row.transaction_id}` }, shortId(row.transaction_id))))));
      problem.textContent = rows.length ? "" : "No transfers yet.";
    } catch (error) {
      problem.textContent = errorText(error);
    }
  };
  picker.addEventListener("change", load);
  main.append(h("label", { class: "card" }, "Account", picker), problem,
    h("table", {}, h("thead", {}, h("tr", {}, ["When", "Outcome", "Direction", "Amount", "Protocol"].map((name) => h("th", { scope: "col" }, name)))), body));
  if (current.role === "customer") {
    myAccounts().then((accounts) => { picker.replaceChildren(...accounts.map((a) => h("option", { value: a.account_id }, a.account_id))); load(); });
  }
  listen((message) => { if (message.type === "transfer") load(); });
}

function protocolPage(main, [transactionId]) {
  const view = h("div", { class: "card" });
  const hint = h("p", { class: "muted" }, transactionId ? "Events appear as the coordinator logs them."
    : "Following the next transfer: send one (Transfer page, another tab, or the CLI) and watch it cross the services.");
  main.append(hint, view);
  let transfer = transactionId ? { transaction_id: transactionId, status: "…" } : null;
  const events = new Map();
  const draw = () => { if (transfer) view.replaceChildren(timeline(transfer, sortEvents([...events.values()]))); };
  const absorb = (message) => {
    if (message.type !== "protocol") return;
    if (!transfer || (!transactionId && message.events.some((e) => e.event_type === "accepted"))) {
      if (!transactionId && transfer && transfer.transaction_id !== message.transaction_id) events.clear();
      transfer = { ...message };
    }
    if (message.transaction_id !== transfer.transaction_id) return;
    transfer = { ...transfer, ...message };
    for (const event of message.events) events.set(String(event.event_id), event);
    draw();
  };
  listen(absorb);
  if (transactionId) {
    api("GET", `/transactions/${transactionId}`).then((data) => {
      transfer = { ...data, ...transfer, status: data.status, reason: data.reason };
      for (const event of data.events) events.set(String(event.event_id), event);
      draw();
    }, (error) => view.replaceChildren(h("p", { role: "alert" }, errorText(error))));
  }
}

function staffPage(main) {
  const current = session();
  const locks = h("tbody");
  const doubt = h("tbody");
  const feed = h("ol", { class: "feed" });
  const figure = h("p", { class: "figure" }, "0");
  const counts = h("p", { class: "muted" });
  const decisions = [];
  const failing = new Set();
  main.append(h("div", { class: "grid" },
    h("section", { class: "card", "aria-labelledby": "locks-title" }, h("h2", { id: "locks-title" }, "Accounts locked right now"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Account", "Transfer", "Change", "Since"].map((n) => h("th", { scope: "col" }, n)))), locks)),
    h("section", { class: "card", "aria-labelledby": "doubt-title" }, h("h2", { id: "doubt-title" }, "Transfers in doubt"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Transfer", "State", "Amount", "Since"].map((n) => h("th", { scope: "col" }, n)))), doubt)),
    h("section", { class: "card", "aria-labelledby": "throughput-title" }, h("h2", { id: "throughput-title" }, "Throughput"),
      figure, h("p", { class: "muted" }, "decisions per second, last 10 s (live)"), counts),
    h("section", { class: "card", "aria-labelledby": "recovery-title" }, h("h2", { id: "recovery-title" }, "Recovery activity"), feed)));
  every(STAFF_REFRESH_MS, async () => {
    try {
      const held = await api("GET", "/2pc/locks?limit=50");
      locks.replaceChildren(...held.map((lock) => h("tr", {}, h("td", {}, shortId(lock.account_id)),
        h("td", {}, h("a", { href: `#/protocol/${lock.transaction_lock}` }, shortId(lock.transaction_lock))), h("td", {}, money(lock.pending_change)), h("td", {}, when(lock.locked_at)))));
      const preparing = (await api("GET", "/transactions/status/pending?limit=50")).transactions;
      const unfinished = current.role === "admin" ? (await api("GET", "/transactions/monitoring/pending?olderThanMinutes=0")).pending_transactions : [];
      const seen = new Set();
      doubt.replaceChildren(...[...preparing, ...unfinished].filter((t) => !seen.has(t.transaction_id) && seen.add(t.transaction_id)).map((t) => h("tr", {},
        h("td", {}, h("a", { href: `#/protocol/${t.transaction_id}` }, shortId(t.transaction_id))),
        h("td", {}, t.status === "pending" ? "pending: no decision yet" : `${t.status}, not acknowledged by all`), h("td", {}, money(t.amount)), h("td", {}, when(t.created_at)))));
      if (current.role === "admin") {
        const stats = await api("GET", "/transactions/monitoring/stats");
        counts.textContent = `committed ${stats.by_status.committed}, aborted ${stats.by_status.aborted}, unfinished ${stats.unfinished}`;
      }
    } catch (error) {
      counts.textContent = errorText(error);
    }
    const now = Date.now();
    while (decisions.length && decisions[0] < now - THROUGHPUT_WINDOW_MS) decisions.shift();
    figure.textContent = (decisions.length / (THROUGHPUT_WINDOW_MS / 1000)).toFixed(1);
  });
  listen((message) => {
    if (message.type !== "protocol") return;
    for (const event of message.events) {
      if (event.event_type === "decision") decisions.push(Date.now());
      const recovering = event.participant === "recovery" || event.event_type === "ack_failed" || failing.has(message.transaction_id);
      if (event.event_type === "ack_failed") failing.add(message.transaction_id);
      if (event.event_type === "completed") failing.delete(message.transaction_id);
      if (!recovering) continue;
      feed.prepend(h("li", {}, `${new Date(event.occurred_at).toLocaleTimeString()} `, h("a", { href: `#/protocol/${message.transaction_id}` }, shortId(message.transaction_id)),
        ` ${event.event_type}${event.participant ? ` (${event.participant})` : ""}${event.details && event.details.error ? `: ${event.details.error}` : ""}`));
      while (feed.children.length > FEED_MAX) feed.lastChild.remove();
    }
  });
}

function demoPage(main) {
  const current = session();
  const outcome = h("p", { role: "status", "aria-live": "polite" });
  const view = h("div", { class: "card" });
  if (current.role !== "admin") {
    main.append(h("p", { class: "card demo" }, "Breaking things takes the admin login (admin / admin123)."));
    return;
  }
  let followed = null;
  const events = new Map();
  const form = h("form", { class: "stack card demo", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api("POST", "/demo/failpoints", { failpoint: data.get("failpoint"), action: data.get("action"), seconds: Number(data.get("seconds")) });
      outcome.textContent = `Armed: ${data.get("action")} at ${data.get("failpoint")}. Sending a transfer of 1 from alice to bob…`;
      events.clear();
      followed = null;
      api("POST", "/transfers", { source_account_id: DEMO_SOURCE, destination_account_id: DEMO_DESTINATION, amount: "1" })
        .then((t) => { outcome.textContent = `The transfer answered: ${t.status}. Watch recovery finish it below.`; },
              (error) => { outcome.textContent = `The transfer answered: ${errorText(error)}. Watch recovery finish it below.`; });
    } catch (error) {
      outcome.textContent = errorText(error);
    }
  } },
  h("p", {}, "Demo mode only: make the participant (accounts service) misbehave once, at the next transfer that reaches the point, then watch the coordinator's recovery finish that transfer."),
  h("label", {}, "Where", h("select", { name: "failpoint" },
    h("option", { value: "after_local_commit_before_answer" }, "after committing, before acknowledging (the acknowledgement is lost)"),
    h("option", { value: "after_prepare_before_answer" }, "after preparing, before voting (the vote is late)"))),
  h("label", {}, "What", h("select", { name: "action" }, h("option", { value: "stall" }, "stall"), h("option", { value: "crash" }, "crash the process"))),
  h("label", {}, "Stall seconds", h("input", { name: "seconds", type: "number", min: "0", max: "120", value: "8" })),
  h("button", { class: "primary", type: "submit" }, "Break the next transfer"), outcome);
  main.append(form, view);
  listen((message) => {
    if (message.type !== "protocol") return;
    if (!followed && message.source_account_id === DEMO_SOURCE && message.events.some((e) => e.event_type === "accepted")) followed = message.transaction_id;
    if (message.transaction_id !== followed) return;
    for (const event of message.events) events.set(String(event.event_id), event);
    view.replaceChildren(timeline(message, sortEvents([...events.values()])));
  });
}

start();
