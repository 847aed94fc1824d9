// The API through the console's own origin: the session's token, exact JSON, one answer shape.
import { parseExact } from "./exact-json.js";

const SESSION_KEY = "banking-console-session";

export function session() {
  const stored = sessionStorage.getItem(SESSION_KEY);
  return stored ? JSON.parse(stored) : null;  // {token, role, customer_id, username, expires_at}: no money
}

export function saveSession(value) {
  if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// Resolves with `data` of a success; rejects with an ApiError carrying the API's code and message.
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const current = session();
  if (current) headers.Authorization = `Bearer ${current.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "NETWORK_ERROR", `the console cannot reach the services (${error.message})`);
  }
  const text = await response.text();
  let answer;
  try {
    answer = text ? parseExact(text) : {};
  } catch (error) {
    throw new ApiError(response.status, "BAD_ANSWER", `unreadable answer (HTTP ${response.status})`);
  }
  if (!response.ok || answer.success === false) {
    const error = answer.error || {};
    throw new ApiError(response.status, error.code || `HTTP_${response.status}`,
                       error.message || `HTTP ${response.status}`, error.details);
  }
  return answer.data;
}
