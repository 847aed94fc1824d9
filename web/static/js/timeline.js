// A transfer's protocol as a timeline: one lane per service (the coordinator, each participant), one
// row per logged event, messages drawn as arrows between lanes. The same reading as `banking-cli trace`.
import { h, money, shortId } from "./dom.js";

const COORDINATOR = "coordinator";
const RECOVERY = "recovery";  // the coordinator's recovery loop logs its decisions under this name

// event type -> [from lane, to lane or null, label]
function describe(event, lanes) {
  const who = event.participant && event.participant !== RECOVERY ? event.participant : lanes[1] || "accounts";
  const details = event.details || {};
  const recovery = event.participant === RECOVERY ? " (recovery)" : "";
  switch (event.event_type) {
    case "accepted": return [COORDINATOR, null, `accepted ${details.amount ?? ""}`];
    case "prepare_sent": return [COORDINATOR, who, "prepare"];
    case "vote": return [who, COORDINATOR,
      `vote ${details.vote}${details.reason ? `: ${details.reason}` : ""}${latency(details)}`];
    case "decision": return [COORDINATOR, null, `decision: ${details.status}${details.reason ? ` (${details.reason})` : ""}${recovery}`];
    case "decision_sent": return [COORDINATOR, who, details.status === "committed" ? "commit" : "abort"];
    case "acknowledged": return [who, COORDINATOR, `acknowledged${latency(details)}`];
    case "ack_failed": return [who, COORDINATOR, `no acknowledgement: ${details.error || "unreachable"}`];
    case "completed": return [COORDINATOR, null, "completed: every participant acknowledged"];
    default: return [COORDINATOR, null, event.event_type];
  }
}

function latency(details) {
  return details.latency_ms !== undefined && details.latency_ms !== null ? ` · ${details.latency_ms} ms` : "";
}

export function lanesOf(events) {
  const participants = [];
  for (const event of events) {
    if (event.participant && event.participant !== RECOVERY && !participants.includes(event.participant)) {
      participants.push(event.participant);
    }
  }
  return [COORDINATOR, ...(participants.length ? participants : ["accounts"])];
}

export function sortEvents(events) {
  return [...events].sort((a, b) => (a.occurred_at < b.occurred_at ? -1 : a.occurred_at > b.occurred_at ? 1
    : Number(a.event_id ?? 0) - Number(b.event_id ?? 0)));
}

export function timeline(transfer, events) {
  const sorted = sortEvents(events);
  const lanes = lanesOf(sorted);
  const first = sorted.length ? Date.parse(sorted[0].occurred_at) : 0;
  const header = h("tr", {}, h("th", { scope: "col" }, "+ms"),
    lanes.map((lane) => h("th", { scope: "col" }, lane === COORDINATOR ? "coordinator (transactions)" : `participant: ${lane}`)));
  let failed = false;  // after a lost acknowledgement, a decision sent again is recovery's re-send
  const rows = sorted.map((event) => {
    const drawn = row(event, lanes, Date.parse(event.occurred_at) - first, failed && event.event_type === "decision_sent");
    failed = failed || event.event_type === "ack_failed";
    return drawn;
  });
  return h("section", { class: "timeline", "aria-label": "protocol timeline" },
    h("p", { class: "timeline-summary" },
      h("strong", {}, `Transfer ${transfer.transaction_id}`), " ",
      h("span", { class: `status status-${transfer.status}` }, transfer.status), " ",
      transfer.reason ? `(${transfer.reason}) ` : "", transfer.amount ? money(transfer.amount) : "",
      transfer.source_account_id ? ` from ${shortId(transfer.source_account_id)} to ${shortId(transfer.destination_account_id)}` : ""),
    h("table", { class: "lanes", style: `--lanes: ${lanes.length}` }, h("thead", {}, header), h("tbody", {}, rows)));
}

function row(event, lanes, offsetMs, resent) {
  const [from, to, described] = describe(event, lanes);
  const label = resent ? `${described} (re-sent by recovery)` : described;
  const fromIndex = lanes.indexOf(from);
  const toIndex = to === null ? fromIndex : lanes.indexOf(to);
  const low = Math.min(fromIndex, toIndex);
  const high = Math.max(fromIndex, toIndex);
  const cells = lanes.map((lane, index) => {
    if (index < low || index > high) return h("td", { class: "lane" });
    const classes = ["lane", "active"];
    if (low !== high) classes.push(index === low ? "span-low" : index === high ? "span-high" : "span-mid",
                                   toIndex > fromIndex ? "rightward" : "leftward");
    const text = index === fromIndex ? label : "";
    return h("td", { class: classes.join(" ") }, text ? h("span", { class: "mark" }, text) : "");
  });
  return h("tr", { class: `event event-${event.event_type}`, "data-event-type": event.event_type },
    h("td", { class: "offset" }, offsetMs >= 0 ? String(offsetMs) : "0"), cells);
}
