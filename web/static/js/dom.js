// Building the page from data without innerHTML: text is always text, never markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function shortId(id) {
  return id ? `…${String(id).slice(-4)}` : "";
}

export function when(timestamp) {
  return timestamp ? new Date(timestamp).toLocaleString() : "";
}

// Money is the API's text, unchanged: no float ever touches it.
export function money(text) {
  return h("span", { class: "money" }, text);
}
