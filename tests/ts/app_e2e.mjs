// The MCP Apps view end to end, in a real browser: Debian's headless Chromium (driven by
// puppeteer-core, which never downloads a browser) loads a small host page built on the official
// AppBridge (tests/ts/app_host/), which connects to `runcomfy-mcp serve --transport http
// --simulate`, calls the tools, reads the ui:// view, mounts it in a sandboxed iframe and passes
// it each result, in a container of a given width (hostContext.containerDimensions). It checks
// what a person would see and do:
//   1. generate_image_and_wait in a 1040 px container: the image renders as wide as the container
//      allows, with its prompt, its cost and the RunComfy balance in the header; every control
//      has an accessible name; Save writes the file to the output directory; Open link asks the
//      host to open the image's URL; Download hands the host the original through
//      ui/download-file; Enter on the image opens it full size in the host's fullscreen
//      (ui/request-display-mode) and Escape closes it; Make a variation and an edit with a typed
//      prompt each start exactly one new job, which the view follows to its image; the edit shows
//      its reference (before) beside its result (after), side by side at 1040 px and stacked at
//      420 px, each at least 320 px wide.
//   2. A job held in the simulator's queue: a placeholder with its queue position, kept current
//      through check_status, and its Cancel button cancels the job upstream.
//   3. list_jobs: the gallery lists the earlier jobs, with their thumbnails.
// Throughout, the view makes no network request at all and breaks no CSP rule, and the browser
// reaches nothing but the host page's origin on 127.0.0.1. Screenshots go to app-e2e/ in cargo's
// target directory (docs/app-viewer*.png are copies of viewer.png, edit.png and fullscreen.png).
//
// Usage: node tests/ts/app_e2e.mjs [path/to/runcomfy-mcp]   (default: see bin.mjs;
// the browser: $CHROMIUM or /usr/bin/chromium).
import { spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import puppeteer from "puppeteer-core";
import { binary, root, targetDir } from "./bin.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.argv[2] ?? binary();
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shots = path.join(targetDir(), "app-e2e");
fs.mkdirSync(shots, { recursive: true });
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "runcomfy-app-e2e-"));
const outputDir = path.join(scratch, "out");
fs.mkdirSync(outputDir);

// The two container widths the view is shown in: a desktop chat's and a phone's.
const WIDE = 1040;
const NARROW = 420;

let server;
let browser;
let hostServer;
const cleanups = [];
function step(what) {
  console.log(`app-e2e: ${what}`);
}
function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`  ok: ${what}`);
}

/** Polls `probe` (async, returns a truthy value when done) for up to `seconds`. */
async function until(what, probe, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The MCP server, with its built-in simulator; resolves to both base URLs. */
async function startServer() {
  server = spawn(bin, ["serve", "--transport", "http", "--port", "0", "--simulate"], {
    env: {
      ...process.env,
      RUNCOMFY_STATE_DIR: path.join(scratch, "state"),
      RUNCOMFY_OUTPUT_DIR: outputDir,
      RUST_LOG: process.env.RUST_LOG ?? "runcomfy_mcp=info,warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  server.stdout.on("data", (c) => (stdout += c));
  server.stderr.on("data", (c) => {
    stderr += c;
    process.stderr.write(c);
  });
  // The simulator's control API (to hold a job in the queue) is at the URL the server logs.
  const endpoint = await until("the server's MCP endpoint", () => stdout.split("\n").find((l) => l.startsWith("http")));
  const base = endpoint.replace(/\/mcp$/, "");
  const sim = await until("the simulator's URL", () => stderr.match(/built-in simulator.*?url=(http:\/\/127\.0\.0\.1:\d+)/)?.[1]);
  return { base: base.trim(), sim };
}

/** The host page and its bundled script on 127.0.0.1, with /mcp proxied to the server. */
async function startHost(mcpBase) {
  const bundle = await esbuild.build({
    entryPoints: [path.join(here, "app_host/host.js")],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "chrome120",
    write: false,
    logLevel: "warning",
  });
  const script = bundle.outputFiles[0].contents;
  const page = fs.readFileSync(path.join(here, "app_host/host.html"));
  const upstream = new URL(mcpBase);
  hostServer = http.createServer((req, res) => {
    if (req.url === "/" || req.url === "/host.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    } else if (req.url === "/host.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    } else if (req.url.startsWith("/mcp")) {
      const headers = { ...req.headers };
      delete headers.host;
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
        (answer) => {
          res.writeHead(answer.statusCode, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on("error", (e) => res.destroy(e));
      req.pipe(forward);
    } else {
      res.writeHead(404).end();
    }
  });
  hostServer.listen(0, "127.0.0.1");
  await once(hostServer, "listening");
  return `http://127.0.0.1:${hostServer.address().port}`;
}

async function simJob(sim, id) {
  const r = await fetch(`${sim}/__sim/jobs/${id}`);
  return r.json();
}
async function simJobs(sim) {
  return (await fetch(`${sim}/__sim/jobs`)).json();
}
async function simConfig(sim, patch) {
  const r = await fetch(`${sim}/__sim/config`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(patch) });
  if (!r.ok) throw new Error(`simulator config refused: ${r.status}`);
}

/** The view's frame of a turn. */
async function viewFrame(page, slot) {
  return until(`the view of turn ${slot}`, () => page.frames().find((f) => f.name() === `view-${slot}`));
}

/** The loaded images of a view, with their sizes. */
async function images(frame) {
  return frame.$$eval("img", (imgs) =>
    imgs.map((i) => ({ ref: i.dataset.ref, w: i.naturalWidth, complete: i.complete, shown: Math.round(i.getBoundingClientRect().width) })),
  );
}

/** An edit's card: its reference ("before") and its result ("after"), loaded, with their layout. */
async function beforeAfter(frame, id) {
  return frame.$eval(`[data-job="${id}"]`, (card) => {
    const before = card.querySelector("[data-field=compare] img[data-role=before]");
    const after = card.querySelector("[data-field=compare] [data-field=results] img");
    if (!before || !after || !before.naturalWidth || !after.naturalWidth) return null;
    const [b, a] = [before.getBoundingClientRect(), after.getBoundingClientRect()];
    const seen = (img, r) => ({ ref: img.dataset.ref, w: img.naturalWidth, shown: Math.round(r.width) });
    return { before: seen(before, b), after: seen(after, a), sideBySide: Math.abs(b.top - a.top) < 2 && b.right <= a.left };
  });
}

async function click(frame, selector) {
  await frame.waitForSelector(selector);
  await frame.$eval(selector, (b) => b.click());
}

async function main() {
  if (!fs.existsSync(chromium)) {
    throw new Error(`no browser at ${chromium}: install Debian's chromium (apt-get install chromium; .ci/run does) or set CHROMIUM`);
  }
  const { base, sim } = await startServer();
  const hostUrl = await startHost(base);
  step(`server ${base}, simulator ${sim}, host page ${hostUrl}`);

  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: path.join(scratch, "chromium-profile"),
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--no-default-browser-check",
    ],
  });
  // The loopback-only flags reached the browser intact (the Debian launcher is a shell script).
  const about = await browser.newPage();
  await about.goto("chrome://version");
  const commandLine = await about.$eval("#command_line", (e) => e.textContent);
  check(commandLine.includes("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"), "Chromium runs with the loopback-only resolver rules");
  await about.close();
  const page = await browser.newPage();
  await page.setViewport({ width: WIDE + 80, height: 900 });
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(m.text()));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(hostUrl);
  const tools = await page.evaluate(() => window.host.connect());
  check(tools.find((t) => t.name === "save_image")?.ui?.visibility?.join() === "app", "the app-only tools are listed for this host");

  // 1. A finished image, in a wide container (1040 px).
  step("generate_image_and_wait, shown in the view");
  await simConfig(sim, { balance_usd: 25 });
  const prompt = "a lighthouse on a cliff at dusk, watercolor";
  const first = await page.evaluate(
    (prompt, width) => window.host.run("a", "generate_image_and_wait", { prompt, size: "1024x1024", force_single: true }, width),
    prompt,
    WIDE,
  );
  check(first.result?.status === "succeeded", `the job succeeded (${first.result?.request_id})`);
  const firstId = first.result.request_id;
  const a = await viewFrame(page, "a");
  const rendered = await until("the image to render", async () => {
    const imgs = await images(a);
    return imgs.length === 1 && imgs[0].w > 0 && imgs;
  });
  check(rendered[0].ref === `${firstId}#1` && rendered[0].w > 0, `image ${firstId}#1 rendered, naturalWidth ${rendered[0].w}`);
  check(rendered[0].shown >= WIDE - 80, `a single image takes the container's width (${rendered[0].shown} px shown in ${WIDE} px)`);
  check((await a.$eval("[data-field=prompt]", (e) => e.textContent)) === prompt, "the view shows the prompt");
  const facts = await a.$eval("[data-field=facts]", (e) => e.textContent);
  check(facts.includes("1024x1024"), "the view shows the size");
  const cost = await a.$eval("[data-field=cost]", (e) => e.textContent);
  check(typeof first.result.cost_usd !== "number" || cost.includes(`$${first.result.cost_usd.toFixed(2)}`), `the header shows the cost (${cost})`);
  const balance = await until("the balance in the header", () => a.$eval("[data-field=balance]", (e) => e.textContent));
  check(/Balance \$\d+\.\d\d/.test(balance), `the header shows the RunComfy balance (${balance})`);
  check(
    (await a.$eval("[data-action=vary]", (e) => e.textContent)).includes("paid job"),
    "the variation button says it starts a paid job",
  );
  await (await page.$("#turn-a")).screenshot({ path: path.join(shots, "viewer.png") });
  const unnamed = await a.$$eval("button, input", (els) => els.filter((e) => !(e.getAttribute("aria-label") || e.textContent).trim()).length);
  check(unnamed === 0, "every button and input has an accessible name");

  await click(a, "[data-action=save]");
  const saved = await until("the saved file", () => fs.readdirSync(outputDir).find((f) => f.startsWith(firstId)));
  check(fs.statSync(path.join(outputDir, saved)).size > 0, `Save wrote ${saved} to the output directory`);
  await until("the save to be reported", async () => (await a.$eval(".note.action", (e) => e.textContent)).includes(saved));

  await click(a, "[data-action=open]");
  const opened = await until("the host to be asked to open a link", () => page.evaluate(() => window.host.state.opened[0]));
  check(opened.startsWith(sim) && opened.includes(firstId), `Open link asked the host to open ${opened}`);

  await click(a, "[data-action=download]");
  const download = await until("the host to be asked to download", () => page.evaluate(() => window.host.state.downloads[0]));
  const item = download.contents[0];
  const bytes = Buffer.from(item.resource.blob, "base64");
  check(
    item.type === "resource" && item.resource.uri === `file:///${firstId}-1.png` && bytes.subarray(1, 4).toString() === "PNG",
    `Download handed the host the original PNG through ui/download-file (${item.resource.uri}, ${bytes.length} bytes)`,
  );

  // Full size, by keyboard: Enter on the image opens it in the host's fullscreen, Escape closes it.
  await a.focus(`[data-action=zoom][data-ref="${firstId}#1"]`);
  await page.keyboard.press("Enter");
  await until("fullscreen to be asked for", () => page.evaluate(() => window.host.state.displayModes.some((m) => m.slot === "a" && m.mode === "fullscreen")));
  check(true, "the full-size view asked the host for fullscreen (ui/request-display-mode)");
  const full = await until("the full-size image", () =>
    a.$eval("[data-field=full]", (e) => {
      const img = e.querySelector("img");
      return e.dataset.mode === "fullscreen" && img.dataset.original === "yes" && img.complete && img.naturalWidth > 0 && { w: img.naturalWidth, shown: Math.round(img.getBoundingClientRect().width) };
    }),
  );
  check(full.w === 1024, `the full-size view shows the original (${full.w} px, ${full.shown} px on screen)`);
  await page.screenshot({ path: path.join(shots, "fullscreen.png") });
  await page.keyboard.press("Escape");
  await until("the view to leave fullscreen", () => page.evaluate(() => window.host.state.displayModes.some((m) => m.slot === "a" && m.mode === "inline")));
  const back = await until("the job view again", () => a.$eval("[data-action=zoom]", (e) => document.activeElement === e));
  check(back, "Escape closed it, asked the host for inline again, and gave the focus back to the image");

  check((await simJobs(sim)).length === 1, "no job was started without a click");
  await click(a, "[data-action=vary]");
  const varied = await until("the variation to appear", async () => {
    const jobs = await a.$$eval("[data-job]", (els) => els.map((e) => e.dataset.job));
    return jobs.length === 2 && jobs[1];
  });
  check((await simJobs(sim)).length === 2, `one click, one new job (${varied})`);
  check((await simJob(sim, varied)).request.prompt === prompt, "the variation has the same prompt");
  await until("the variation's image to render", async () => (await images(a)).filter((i) => i.w > 0).length === 2, 60);
  check(true, "the view followed the variation to its image");
  await click(a, `[data-job="${firstId}"] [data-action=edit]`);
  await a.type(`[data-job="${firstId}"] .edit input`, "make it winter");
  await click(a, `[data-job="${firstId}"] [data-action=edit-go]`);
  const edited = await until("the edit to appear", async () => {
    const jobs = await a.$$eval("[data-job]", (els) => els.map((e) => e.dataset.job));
    return jobs.length === 3 && jobs[2];
  });
  const editJob = await simJob(sim, edited);
  check((await simJobs(sim)).length === 3 && editJob.request.prompt === "make it winter", `the edit is one new job with the typed prompt (${edited})`);
  check(editJob.inputs?.length === 1, "the edit has the image as its reference");
  const compare = await until("the edit's before and after", () => beforeAfter(a, edited));
  check(compare.before.ref === `${firstId}#1` && compare.before.w > 0 && compare.after.w > 0, `the edit shows its reference (${compare.before.ref}) before its result`);
  check(compare.before.shown >= 320 && compare.after.shown >= 320 && compare.sideBySide,
    `before and after side by side in ${WIDE} px, each ${compare.before.shown}/${compare.after.shown} px wide`);
  const told = await page.evaluate(() => window.host.state.modelContext.length);
  check(told >= 2, "the view told the model about each new job (ui/update-model-context)");
  // The edit's own result, as get_result shows it in a turn of its own.
  await page.evaluate((id, width) => window.host.run("e", "get_result", { request_id: id }, width), edited, WIDE);
  await until("the edit's own view", async () => beforeAfter(await viewFrame(page, "e"), edited));
  await (await page.$("#turn-e")).screenshot({ path: path.join(shots, "edit.png") });

  // Upload from the view: the file picker sends the photo to upload_image, which answers a
  // reference; the model is told it; "Edit this" starts exactly one job that sends it.
  step("a photo uploaded from the view, then edited");
  const e = await viewFrame(page, "e");
  const photo = path.join(scratch, "photo.png");
  fs.copyFileSync(path.join(outputDir, saved), photo);
  const jobsBefore = (await simJobs(sim)).length;
  await (await e.$("[data-field=upload-input]")).uploadFile(photo);
  const reference = await until("the upload's card", () => e.$eval("[data-upload]", (card) => card.dataset.upload).catch(() => null));
  check(/^upload:[0-9a-f]{32}$/.test(reference), `the upload was kept as ${reference}`);
  const toldUpload = await page.evaluate(() => window.host.state.modelContext.at(-1).content[0].text);
  check(toldUpload.includes(reference), "the view told the model the upload's reference (ui/update-model-context)");
  check((await simJobs(sim)).length === jobsBefore, "an upload starts no job");
  await click(e, "[data-upload] [data-action=edit-upload]");
  await e.type("[data-upload] .edit input", "make it night");
  await click(e, "[data-upload] [data-action=edit-go]");
  const fromUpload = await until("the upload's edit", async () => {
    const jobs = await e.$$eval("[data-job]", (els) => els.map((el) => el.dataset.job));
    return jobs.length === 2 && jobs[1];
  });
  const uploadJobs = await simJobs(sim);
  const uploadEdit = await simJob(sim, fromUpload);
  check(uploadJobs.length === jobsBefore + 1 && uploadEdit.request.prompt === "make it night", `the edit is exactly one new job (${fromUpload})`);
  // The simulator keeps a large data URI only as its size.
  const sent = uploadEdit.request.image_urls ?? [];
  check(sent.length === 1 && /^(data:image\/png;base64,|\(not kept: \d+ bytes\))/.test(sent[0]), `it sends the uploaded photo as data, not a link (${sent[0].slice(0, 40)})`);
  const uploadCompare = await until("the upload's before and after", () => beforeAfter(e, fromUpload), 60);
  check(uploadCompare.before.ref === reference, "the edit shows the uploaded photo as its before");
  await (await page.$("#turn-e")).screenshot({ path: path.join(shots, "upload.png") });

  // The same edit in a narrow container (420 px): the grid reflows to one column.
  step("the edit's result in a narrow container");
  await page.evaluate((id, width) => window.host.run("n", "get_result", { request_id: id }, width), edited, NARROW);
  const n = await viewFrame(page, "n");
  const narrow = await until("the narrow view's before and after", () => beforeAfter(n, edited));
  check(narrow.before.shown >= 320 && narrow.after.shown >= 320 && !narrow.sideBySide,
    `in ${NARROW} px before and after stack, each ${narrow.before.shown}/${narrow.after.shown} px wide`);
  await (await page.$("#turn-n")).screenshot({ path: path.join(shots, "narrow.png") });

  // 2. A job held in the queue.
  step("a queued job: its position, kept current, and Cancel");
  await simConfig(sim, { initial_queue_position: 3, queue_step_ms: 3_600_000 });
  const queued = await page.evaluate(
    (width) => window.host.run("b", "generate_image_and_wait", { prompt: "a fox in the snow", size: "1024x1024", max_wait_seconds: 1 }, width),
    WIDE,
  );
  check(queued.result?.status === "in_queue" && queued.result?.queue_position === 3, "the wait ended with the job at queue position 3");
  const queuedId = queued.result.request_id;
  const b = await viewFrame(page, "b");
  await until("the queue position", async () => (await b.$eval("[data-status]", (e) => e.textContent)).includes("queue position 3"));
  const placeholder = await b.$eval("[data-field=skeleton]", (e) => e.textContent);
  check(placeholder.includes("position 3"), `a placeholder stands for the image to come, with the queue position (${placeholder})`);
  const callsAtStart = (await simJob(sim, queuedId)).status_calls;
  await until("the view to poll check_status", async () => (await simJob(sim, queuedId)).status_calls >= callsAtStart + 2);
  check(true, "the view keeps the status current through check_status");
  await (await page.$("#turn-b")).screenshot({ path: path.join(shots, "queued.png") });
  await click(b, "[data-action=cancel]");
  await until("the job to be cancelled upstream", async () => (await simJob(sim, queuedId)).status === "cancelled");
  check(true, `Cancel cancelled ${queuedId} at the simulator`);
  await until("the view to say so", async () => (await b.$eval("[data-status]", (e) => e.dataset.status)) === "cancelled");
  check(true, "the view shows it cancelled");
  await simConfig(sim, { initial_queue_position: 2, queue_step_ms: 300 });

  // 3. The gallery.
  step("list_jobs as a gallery");
  await page.evaluate((width) => window.host.run("c", "list_jobs", {}, width), WIDE);
  const c = await viewFrame(page, "c");
  const tiles = await until("the gallery's tiles", async () => {
    const t = await c.$$eval("[data-field=gallery] [data-job]", (els) => els.map((e) => e.dataset.job));
    return t.length >= 4 && t;
  });
  check([firstId, varied, edited, queuedId].every((id) => tiles.includes(id)), `the gallery lists the earlier jobs (${tiles.length} tiles)`);
  await until("the gallery's thumbnails", async () => (await images(c)).filter((i) => i.w > 0).length >= 2);
  check(true, "the gallery's thumbnails rendered");
  await (await page.$("#turn-c")).screenshot({ path: path.join(shots, "gallery.png") });
  await page.screenshot({ path: path.join(shots, "host.png"), fullPage: true });

  // Nothing but the host page's origin was reached; the views broke no CSP rule.
  const elsewhere = requests.filter((u) => !u.startsWith(`${hostUrl}/`) && !u.startsWith("data:") && u !== "about:srcdoc");
  check(elsewhere.length === 0, `every browser request went to ${hostUrl} (${requests.length} requests; elsewhere: ${elsewhere.join(", ")})`);
  const violations = consoleLines.filter((l) => /Content Security Policy|pageerror/i.test(l));
  check(violations.length === 0, `no CSP violation or page error (${violations.join(" | ")})`);
  step(`passed; screenshots in ${path.relative(root, shots)}/`);
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`app-e2e: FAILED: ${error.stack ?? error}`);
} finally {
  await browser?.close().catch(() => {});
  hostServer?.close();
  server?.kill("SIGTERM");
  if (server) await once(server, "exit").catch(() => {});
  for (const c of cleanups) c();
  fs.rmSync(scratch, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
