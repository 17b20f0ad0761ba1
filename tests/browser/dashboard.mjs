// Drives Debian's Chromium (playwright-core, no browser download) against a
// running event-pipeline: the dashboard loads with no console errors, shows
// events published meanwhile in the tail and the rate chart, a filter
// narrows the tail, a scoped token sees only its sessions, a screenshot is
// taken under load, and an EventSource resumes after the server restarts.
//
// Usage: node dashboard.mjs BASE KEY TEAM_TOKEN SCREENSHOT
//   KEY: a key with publish and read; TEAM_TOKEN: read, sessions s1 only.
// Protocol with the caller (tests/browser.rs): prints `RESTART` and waits
// for a line on stdin once the server is back; prints `OK` at the end.
// Any failed check throws: exit 1 with the reason on stderr.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [base, key, teamToken, screenshot] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));

function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function publish(events) {
  const r = await fetch(`${base}/api/v1/events/batch`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": key },
    body: JSON.stringify(events),
  });
  check(r.status === 200, `batch publish: ${r.status}`);
  const results = await r.json();
  for (const item of results) check(item.status === "ok", `publish: ${JSON.stringify(item)}`);
  return results.map((item) => item.event);
}

function event(type, session, n) {
  const payloads = {
    quiz_started: { quiz_id: `quiz-${n}` },
    answer_submitted: { question_id: `q-${n}`, correct: n % 2 === 0 },
    timer_tick: { remaining_seconds: n },
  };
  return { event_type: type, source: "browser-test", session_id: session, user_id: `stu-${n % 5}`, payload: payloads[type] };
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));

  async function connectWith(credential, filters = {}) {
    await page.fill("#credential", credential);
    await page.fill("#filter-type", filters.type || "");
    await page.fill("#filter-session", filters.session || "");
    await page.fill("#filter-user", "");
    await page.click("#apply");
    await page.waitForFunction(() => document.getElementById("stream-state").textContent === "live");
  }
  const rows = () => page.$$eval("#tail li", (lis) => lis.map((li) => ({ seq: Number(li.dataset.seq), type: li.dataset.type, session: li.dataset.session })));
  const waitRows = (n) => page.waitForFunction((n) => document.querySelectorAll("#tail li").length >= n, n);

  // 0. The documentation page renders every operation once, code as code.
  await page.goto(`${base}/docs`);
  await page.waitForFunction(() => !document.getElementById("loading"));
  const docs = await page.evaluate(() => ({
    text: document.body.innerText,
    code: document.querySelectorAll("p code, td code").length,
  }));
  check(docs.code > 10, `descriptions show code spans: ${docs.code}`);
  check(!docs.text.includes("/api/v1/docs.js") && !docs.text.includes("/api/v1/dashboard.css"), "the pages' files are no operations");
  check(docs.text.includes("/api/v1/stream"), "the stream is listed");
  check(errors.length === 0, `console errors on /docs: ${errors.join(" | ")}`);

  // 1. Loads; events published meanwhile reach the tail, newest on top, and the chart.
  await page.goto(`${base}/dashboard`);
  await connectWith(key);
  const first = await publish([event("quiz_started", "s1", 1), event("answer_submitted", "s2", 2), event("timer_tick", "s1", 3)]);
  await waitRows(3);
  let shown = await rows();
  check(shown[0].seq === first[2].seq && shown[2].seq === first[0].seq, `newest on top: ${JSON.stringify(shown)}`);
  await page.waitForFunction(() => document.querySelectorAll("#legend li").length === 3);
  const nodeText = await page.textContent("#node");
  check(/^.+:\d+: ready$/.test(nodeText), `the node that answered and its readiness: ${nodeText}`);
  // An event expands to its JSON.
  await page.click("#tail li:first-child summary");
  const json = JSON.parse(await page.textContent("#tail li:first-child pre"));
  check(json.id === first[2].id, "the expanded event is the stored one");

  // 2. A filter narrows the tail.
  await connectWith(key, { type: "answer_submitted" });
  await publish([event("quiz_started", "s1", 4), event("answer_submitted", "s1", 5), event("timer_tick", "s2", 6), event("answer_submitted", "s2", 7)]);
  await waitRows(2);
  shown = await rows();
  check(shown.length === 2 && shown.every((r) => r.type === "answer_submitted"), `filtered: ${JSON.stringify(shown)}`);

  // 3. A scoped token sees only its sessions.
  await connectWith(teamToken);
  await publish([event("quiz_started", "s2", 8), event("quiz_started", "s1", 9), event("timer_tick", "s3", 10), event("answer_submitted", "s1", 11)]);
  await waitRows(2);
  shown = await rows();
  check(shown.length === 2 && shown.every((r) => r.session === "s1"), `scoped: ${JSON.stringify(shown)}`);
  check(errors.length === 0, `console errors: ${errors.join(" | ")}`);

  // 4. Under load (about 1,000 events a second for 3 s): still rendering, then a screenshot.
  await connectWith(key);
  const types = ["answer_submitted", "timer_tick", "quiz_started"];
  for (let b = 0; b < 6; b++) {
    const batch = [];
    for (let i = 0; i < 500; i++) batch.push(event(types[i % 3], `s${i % 4}`, b * 500 + i));
    await publish(batch);
    await new Promise((r) => setTimeout(r, 500));
  }
  await page.waitForFunction(() => /^3\d{3} events$/.test(document.getElementById("count").textContent));
  check((await rows()).length === 200, "the tail keeps 200 rows");
  await page.screenshot({ path: screenshot, fullPage: true });
  check(errors.length === 0, `console errors under load: ${errors.join(" | ")}`);

  // 5. EventSource in the browser resumes after a restart, gap-free.
  // Open (subscribed) before anything is published: events before it are
  // not its to get.
  await page.evaluate(({ key }) => new Promise((resolve) => {
    window.got = [];
    const source = new EventSource(`/api/v1/stream?api_key=${encodeURIComponent(key)}&event_types=quiz_started`);
    source.addEventListener("quiz_started", (e) => window.got.push(Number(e.lastEventId)));
    source.addEventListener("open", () => resolve(), { once: true });
    window.resumed = source;
  }), { key });
  const before = await publish([event("quiz_started", "s1", 100), event("quiz_started", "s1", 101)]);
  await page.waitForFunction(() => window.got.length >= 2);
  console.log("RESTART");
  await nextLine();
  const after = await publish([event("quiz_started", "s1", 102), event("quiz_started", "s1", 103)]);
  await page.waitForFunction(() => window.got.length >= 4, null, { timeout: 30000 });
  const got = await page.evaluate(() => window.got);
  const want = [...before, ...after].map((e) => e.seq);
  check(JSON.stringify(got) === JSON.stringify(want), `resumed: ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
  console.log("OK");
} finally {
  await browser.close();
  lines.close();
}
