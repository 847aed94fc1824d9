// JSON with exact numbers: every number is kept as the text the API wrote ("1000.0000" stays
// "1000.0000"), because JSON.parse would turn money into a binary float before any reviver saw it.
// Strict like the API's own parser: no NaN, no trailing commas, nothing after the value.

const WHITESPACE = new Set([" ", "\t", "\n", "\r"]);
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const MAX_DEPTH = 64;

export function parseExact(text) {
  const state = { text, at: 0 };
  const value = parseValue(state, 0);
  skipSpace(state);
  if (state.at !== text.length) fail(state, "text after the JSON value");
  return value;
}

function fail(state, what) {
  throw new SyntaxError(`malformed JSON at ${state.at}: ${what}`);
}

function skipSpace(state) {
  while (state.at < state.text.length && WHITESPACE.has(state.text[state.at])) state.at += 1;
}

function parseValue(state, depth) {
  if (depth > MAX_DEPTH) fail(state, "nested too deeply");
  skipSpace(state);
  const char = state.text[state.at];
  if (char === "{") return parseObject(state, depth);
  if (char === "[") return parseArray(state, depth);
  if (char === '"') return parseString(state);
  for (const [word, value] of [["true", true], ["false", false], ["null", null]]) {
    if (state.text.startsWith(word, state.at)) {
      state.at += word.length;
      return value;
    }
  }
  NUMBER.lastIndex = state.at;
  const match = NUMBER.exec(state.text);
  if (!match) fail(state, "expected a value");
  state.at += match[0].length;
  return match[0];  // a number, exactly as written
}

function expect(state, char) {
  skipSpace(state);
  if (state.text[state.at] !== char) fail(state, `expected ${char}`);
  state.at += 1;
}

function parseObject(state, depth) {
  const result = {};
  expect(state, "{");
  skipSpace(state);
  if (state.text[state.at] === "}") { state.at += 1; return result; }
  for (;;) {
    skipSpace(state);
    const key = parseString(state);
    expect(state, ":");
    result[key] = parseValue(state, depth + 1);
    skipSpace(state);
    if (state.text[state.at] === "}") { state.at += 1; return result; }
    expect(state, ",");
  }
}

function parseArray(state, depth) {
  const result = [];
  expect(state, "[");
  skipSpace(state);
  if (state.text[state.at] === "]") { state.at += 1; return result; }
  for (;;) {
    result.push(parseValue(state, depth + 1));
    skipSpace(state);
    if (state.text[state.at] === "]") { state.at += 1; return result; }
    expect(state, ",");
  }
}

function parseString(state) {
  if (state.text[state.at] !== '"') fail(state, "expected a string");
  // Find the closing quote, skipping escapes, then let JSON.parse decode the string alone: strings
  // hold no numbers, so the built-in parser is exact for them.
  let end = state.at + 1;
  while (end < state.text.length && state.text[end] !== '"') end += state.text[end] === "\\" ? 2 : 1;
  if (end >= state.text.length) fail(state, "unterminated string");
  const value = JSON.parse(state.text.slice(state.at, end + 1));
  state.at = end + 1;
  return value;
}
