// The documentation page: lists every operation of this node's OpenAPI
// document (parameters, bodies, answers) and sends a publish or a query
// from the forms. Everything is built with textContent, never as HTML.
"use strict";

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

let doc = null;

// A description as a paragraph's children: `code` spans as <code>, the
// rest as text (never as HTML).
const prose = (text) =>
  String(text || "").split("`").map((part, i) => (i % 2 ? el("code", {}, part) : document.createTextNode(part)));

// A `$ref` resolved against the document's components.
const resolve = (schema) => {
  let s = schema || {};
  for (let i = 0; s.$ref && i < 8; i++) {
    s = s.$ref.split("/").slice(1).reduce((node, part) => (node || {})[part], doc) || {};
  }
  return s;
};

const refName = (schema) => (schema && schema.$ref ? schema.$ref.split("/").pop() : null);

// One line saying what a schema accepts.
const describe = (schema) => {
  if (!schema) return "";
  const name = refName(schema);
  const s = resolve(schema);
  if (s.anyOf) return (name ? name + ": " : "") + s.anyOf.map(describe).join(" or ");
  const type = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "";
  const facts = [];
  if (s.format) facts.push(s.format);
  if (s.enum) facts.push("one of " + s.enum.length + " values");
  for (const [key, word] of [["minLength", "min length"], ["maxLength", "max length"],
    ["minimum", "min"], ["maximum", "max"], ["maxProperties", "max keys"], ["pattern", "pattern"],
    ["default", "default"]]) {
    if (s[key] !== undefined) facts.push(word + " " + JSON.stringify(s[key]));
  }
  if (s.type === "array" && s.items) return "array of " + describe(s.items);
  return [name, type, facts.length ? "(" + facts.join(", ") + ")" : ""].filter(Boolean).join(" ");
};

// A table of an object schema's properties.
const propertiesTable = (schema) => {
  const s = resolve(schema);
  if (!s.properties) return el("p", {}, describe(schema));
  const required = new Set(s.required || []);
  const rows = Object.entries(s.properties).map(([name, prop]) =>
    el("tr", {}, el("td", {}, el("code", {}, name)), el("td", {}, required.has(name) ? "yes" : "no"),
      el("td", {}, describe(prop)), el("td", {}, ...prose(resolve(prop).description || prop.description))));
  return el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "required"),
    el("th", {}, "schema"), el("th", {}, "meaning")), ...rows);
};

const operationView = (path, method, op, websocket) => {
  const secured = Array.isArray(op.security) && op.security.length > 0;
  const summary = el("summary", {}, el("span", { class: "method " + method }, websocket ? "WS" : method.toUpperCase()),
    el("code", {}, path), " ", op.summary || "");
  if (secured) summary.append(el("span", { class: "key" }, "key"));
  const body = [summary];
  if (op.description) body.push(el("p", {}, ...prose(op.description)));
  if (op.parameters && op.parameters.length) {
    body.push(el("h4", {}, "Parameters"));
    body.push(el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"),
      el("th", {}, "required"), el("th", {}, "schema"), el("th", {}, "meaning")),
      ...op.parameters.map((p) => el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
        el("td", {}, p.required ? "yes" : "no"), el("td", {}, describe(p.schema)),
        el("td", {}, ...prose(p.description))))));
  }
  if (op.requestBody) {
    body.push(el("h4", {}, "Body"));
    for (const [type, content] of Object.entries(op.requestBody.content || {})) {
      body.push(el("p", {}, el("code", {}, type), " ", refName(content.schema) || ""));
      body.push(propertiesTable(content.schema));
    }
  }
  body.push(el("h4", {}, "Answers"));
  const answers = Object.entries(op.responses || {}).map(([status, r]) => {
    const content = Object.entries(r.content || {}).map(([type, c]) => type + " " + describe(c.schema));
    const headers = Object.keys(r.headers || {}).map((h) => "header " + h);
    return el("tr", {}, el("td", {}, status), el("td", {}, ...prose(r.description)),
      el("td", {}, [...content, ...headers].join("; ")));
  });
  body.push(el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "when"),
    el("th", {}, "body")), ...answers));
  return el("details", { class: "op" }, ...body);
};

const render = () => {
  const section = document.getElementById("operations");
  document.getElementById("loading").remove();
  const prefix = "/api/v1";
  const byTag = new Map();
  // WebSocket handshakes and streams are kept apart from the HTTP operations.
  const items = [...Object.entries(doc.paths).map(([p, i]) => [p, i, false]),
    ...Object.entries(doc["x-websockets"] || {}).map(([p, i]) => [p, i, true]),
    ...Object.entries(doc["x-streams"] || {}).map(([p, i]) => [p, i, false])];
  for (const [path, item, websocket] of items) {
    if (!path.startsWith(prefix + "/")) continue; // The root aliases repeat these.
    if (/\.(js|css|svg)$/.test(path)) continue; // The pages' own files are no operations.
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, op, websocket));
    }
  }
  // In the document's order of tags, then any other.
  const tags = new Map((doc.tags || []).map((t) => [t.name, t.description]));
  const order = [...tags.keys(), ...[...byTag.keys()].filter((t) => !tags.has(t))];
  for (const tag of order.filter((t) => byTag.has(t))) {
    section.append(el("h3", {}, tag), el("p", {}, tags.get(tag) || ""), ...byTag.get(tag));
  }
  const types = resolve({ $ref: "#/components/schemas/EventType" }).enum || [];
  for (const form of ["publish", "query"]) {
    const select = document.querySelector("#" + form + " select[name=event_type]");
    for (const t of types) select.append(el("option", { value: t }, t));
  }
  document.getElementById("intro").append(" Version " + doc.info.version + ".");
};

const show = async (response) => {
  const text = await response.text();
  let shown = text;
  try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
  document.getElementById("answer").textContent =
    response.status + " " + response.statusText + "\n\n" + shown;
};

const headers = () => {
  const key = document.getElementById("key").value;
  const token = document.getElementById("token").value.trim();
  const h = { "Content-Type": "application/json" };
  if (key) h["X-API-Key"] = key;
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
};

const send = async (url, init) => {
  try {
    await show(await fetch(url, init));
  } catch (e) {
    document.getElementById("answer").textContent = "The request failed: " + e;
  }
};

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("publish").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    let payload;
    try {
      payload = JSON.parse(f.get("payload") || "{}");
    } catch (e) {
      document.getElementById("answer").textContent = "The payload is not JSON: " + e;
      return;
    }
    const body = { event_type: f.get("event_type"), source: f.get("source"), payload };
    for (const name of ["session_id", "user_id"]) if (f.get(name)) body[name] = f.get(name);
    send("events", { method: "POST", headers: headers(), body: JSON.stringify(body) });
  });
  document.getElementById("query").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(ev.target)) if (value) params.append(name, value);
    send("events?" + params, { headers: headers() });
  });
  fetch("openapi.json")
    .then((r) => r.json())
    .then((d) => { doc = d; render(); })
    .catch((e) => { document.getElementById("loading").textContent = "Could not load openapi.json: " + e; });
});
