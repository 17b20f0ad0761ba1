// The live dashboard: a tail of the events the credential may see (over
// Server-Sent Events), their rate by type, and the node's health, from the
// service's own endpoints. No framework; renders at most once per frame.
"use strict";

const MAX_ROWS = 200;       // rows kept in the tail
const WINDOW = 60;          // seconds in the rate chart
const COLORS = ["#3b6fd6", "#17803d", "#c47f12", "#b3261e", "#7a3fc4", "#0b8a8a", "#8a6d0b", "#c43f8a"];

const $ = (id) => document.getElementById(id);
const state = {
  source: null,
  paused: false,
  held: [],          // events received while paused
  pending: [],       // events to render at the next frame
  frame: 0,
  total: 0,
  seconds: new Map(),  // second -> Map(type -> count)
  colors: new Map(),
};

function credential() {
  return $("credential").value.trim();
}

/// A JWT has three dot-separated parts; anything else is a key.
function credentialParams(params) {
  const c = credential();
  if (c) params.set(c.split(".").length === 3 ? "token" : "api_key", c);
}

function connect() {
  if (state.source) state.source.close();
  const params = new URLSearchParams();
  const types = $("filter-type").value.trim();
  const session = $("filter-session").value.trim();
  const user = $("filter-user").value.trim();
  if (types) params.set("event_types", types);
  if (session) params.set("session_id", session);
  if (user) params.set("user_id", user);
  credentialParams(params);
  sessionStorage.setItem("ep-credential", credential());
  $("tail").replaceChildren();
  state.total = 0;
  state.held = [];
  state.pending = [];
  state.seconds.clear();
  const source = new EventSource(`/api/v1/stream?${params}`);
  state.source = source;
  $("stream-state").textContent = "connecting…";
  source.onopen = () => setText("stream-state", "live", true);
  source.onmessage = (e) => receive(e);
  // Named events (`event: <type>`) do not reach onmessage: one listener
  // per registered type.
  const listen = source.addEventListener.bind(source);
  listen("error", (e) => {
    if (e.data) {
      const end = JSON.parse(e.data);
      setText("stream-state", `ended: ${end.error} (resumes after ${end.resume_from})`, false);
    } else if (source.readyState === EventSource.CONNECTING) {
      setText("stream-state", "reconnecting…", false);
    } else if (source.readyState === EventSource.CLOSED) {
      setText("stream-state", "refused (check the key or token and the filter)", false);
    }
  });
  for (const type of knownTypes) listen(type, receive);
}

let knownTypes = [];

async function loadTypes() {
  try {
    const r = await fetch("/api/v1/event-types?schemas=true");
    knownTypes = Object.keys(await r.json());
  } catch (e) {
    knownTypes = [];
  }
}

function receive(e) {
  let event;
  try {
    event = JSON.parse(e.data);
  } catch (err) {
    return;
  }
  count(event);
  if (state.paused) {
    state.held.push(event);
    $("held").textContent = String(state.held.length);
    return;
  }
  state.pending.push(event);
  schedule();
}

function count(event) {
  state.total += 1;
  const second = Math.floor(Date.now() / 1000);
  let bucket = state.seconds.get(second);
  if (!bucket) {
    bucket = new Map();
    state.seconds.set(second, bucket);
    for (const s of state.seconds.keys()) if (s < second - WINDOW) state.seconds.delete(s);
  }
  bucket.set(event.event_type, (bucket.get(event.event_type) || 0) + 1);
  if (!state.colors.has(event.event_type)) {
    state.colors.set(event.event_type, COLORS[state.colors.size % COLORS.length]);
  }
  schedule();
}

function schedule() {
  if (!state.frame) state.frame = requestAnimationFrame(render);
}

function render() {
  state.frame = 0;
  const batch = state.pending.splice(0);
  if (batch.length) {
    const fragment = document.createDocumentFragment();
    // Newest on top: the last received first.
    for (let i = batch.length - 1; i >= Math.max(0, batch.length - MAX_ROWS); i--) {
      fragment.append(row(batch[i]));
    }
    const tail = $("tail");
    tail.prepend(fragment);
    while (tail.children.length > MAX_ROWS) tail.lastElementChild.remove();
  }
  $("count").textContent = `${state.total} events`;
  drawChart();
}

function row(event) {
  const li = document.createElement("li");
  li.dataset.seq = event.seq;
  li.dataset.type = event.event_type;
  li.dataset.session = event.session_id || "";
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const cell = (text, cls) => {
    const span = document.createElement("span");
    span.textContent = text;
    if (cls) span.className = cls;
    summary.append(span);
  };
  cell(`#${event.seq}`);
  cell(event.event_type, "type");
  cell(event.session_id || "—");
  cell(event.user_id || "—");
  cell(new Date(event.timestamp).toLocaleTimeString());
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(event, null, 2);
  details.append(summary, pre);
  li.append(details);
  return li;
}

function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const now = Math.floor(Date.now() / 1000);
  const types = [...state.colors.keys()];
  let max = 1;
  for (let s = now - WINDOW + 1; s <= now; s++) {
    let sum = 0;
    const bucket = state.seconds.get(s);
    if (bucket) for (const n of bucket.values()) sum += n;
    max = Math.max(max, sum);
  }
  const barWidth = width / WINDOW;
  for (let i = 0; i < WINDOW; i++) {
    const bucket = state.seconds.get(now - WINDOW + 1 + i);
    if (!bucket) continue;
    let y = height;
    for (const type of types) {
      const n = bucket.get(type) || 0;
      if (!n) continue;
      const h = (n / max) * (height - 12);
      ctx.fillStyle = state.colors.get(type);
      ctx.fillRect(i * barWidth + 1, y - h, barWidth - 2, h);
      y -= h;
    }
  }
  ctx.fillStyle = "#1d2330";
  ctx.font = "11px system-ui";
  ctx.fillText(`max ${max}/s`, 4, 11);
  const last = state.seconds.get(now - 1);
  let rate = 0;
  if (last) for (const n of last.values()) rate += n;
  $("rate-now").textContent = `(now ${rate}/s)`;
  const legend = $("legend");
  if (legend.children.length !== types.length) {
    legend.replaceChildren(...types.map((t) => {
      const li = document.createElement("li");
      const swatch = document.createElement("i");
      swatch.style.background = state.colors.get(t);
      li.append(swatch, t);
      return li;
    }));
  }
}

function setText(id, text, ok) {
  const el = $(id);
  el.textContent = text;
  el.className = ok === undefined ? "" : ok ? "ok" : "bad";
}

async function poll() {
  try {
    const health = await (await fetch("/api/v1/health")).json();
    $("version").textContent = `v${health.version}`;
    const r = await fetch("/api/v1/readiness");
    const ready = await r.json();
    const node = r.headers.get("X-Event-Pipeline-Node");
    setText("node", `${node ? node + ": " : ""}${r.ok ? "ready" : "not ready"}`, r.ok);
    setText("database", ready.database || "?", ready.database === "connected");
    setText("broadcaster", ready.broadcaster || "local", !ready.broadcaster || ready.broadcaster === "connected");
    if (ready.router) {
      setText("subscribers", String(ready.router.active_subscribers));
      setText("queue", String(ready.router.queue_size));
    }
  } catch (e) {
    setText("node", "unreachable", false);
  }
}

$("connect").addEventListener("submit", (e) => {
  e.preventDefault();
  connect();
});
$("pause").addEventListener("click", () => {
  state.paused = !state.paused;
  $("pause").setAttribute("aria-pressed", String(state.paused));
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  $("paused-note").hidden = !state.paused;
  if (!state.paused) {
    state.pending.push(...state.held.splice(0));
    schedule();
  }
});

/// Whether this node asks for a key or token (its OpenAPI document says).
async function needsCredential() {
  try {
    const doc = await (await fetch("/openapi.json")).json();
    return Boolean(doc.paths["/api/v1/events"].get.security);
  } catch (e) {
    return true;
  }
}

(async () => {
  $("credential").value = sessionStorage.getItem("ep-credential") || "";
  await loadTypes();
  await poll();
  setInterval(poll, 2000);
  setInterval(schedule, 1000);
  if (credential() || !(await needsCredential())) {
    connect();
  } else {
    setText("stream-state", "enter a key or token, then Connect", false);
  }
})();
