// The view: a job's images (kept current while it runs), with actions per image; for list_jobs a
// gallery. Images arrive as MCP resources read through the host (data: URLs), so the view needs
// no network. Everything from the server is put in the page as text (textContent), never as
// markup.

const POLL_MS = 2000;
// Images shown per job (each one is a preview read): as many as the server processes per result.
const SHOWN_IMAGES = 16;
const state = {
  input: {}, jobs: new Map(), order: [], gallery: null, recipe: null, estimate: null, balance: null,
  // The image shown full size: { id, index, src, mode } (mode: the display mode the host granted).
  full: null,
  host: { context: {}, capabilities: {} },
  // What the view told the model so far: each ui/update-model-context replaces the last one.
  told: [],
};
// To the cent, as the server's texts print money: never "$-0.00"; a price under a cent keeps four decimals.
const usd = (n) => {
  const size = Math.abs(n);
  if (size < 0.01 && size.toFixed(4) !== "0.0000") return `${n < 0 ? "-" : ""}$${size.toFixed(4)}`;
  const cents = size.toFixed(2);
  return cents === "0.00" ? "$0.00" : `${n < 0 ? "-" : ""}$${cents}`;
};
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "ratio") { if (v) node.style.setProperty("--ratio", String(v)); }
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
};
const cut = (text, most) => (text.length > most ? `${text.slice(0, most - 1)}…` : text);

async function callTool(name, args) {
  const result = await bridge.request("tools/call", { name, arguments: args });
  const text = (result.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  if (result.isError) throw new Error(text || `${name} failed`);
  return { data: result.structuredContent || {}, text };
}

// Tells the model what the person did here, so the conversation knows about new jobs and uploads.
// An update replaces the view's previous one (the spec's rule), so each carries everything said.
function tellModel(text) {
  state.told.push(text);
  if (!state.host.capabilities.updateModelContext) return;
  bridge.request("ui/update-model-context", { content: [{ type: "text", text: state.told.join("\n") }] }).catch(() => {});
}

// ---- Images, through resources/read, cached by URI. ----
const reads = new Map();
function readImage(uri, fallbackMime) {
  if (!reads.has(uri)) {
    const read = bridge.request("resources/read", { uri }).then((answer) => {
      const c = (answer.contents || [])[0];
      if (!c || !c.blob) throw new Error("no image in the resource");
      const mime = c.mimeType || fallbackMime;
      return { src: `data:${mime};base64,${c.blob}`, mime, blob: c.blob };
    });
    // A failed read is tried again next time (the job may not have its image yet).
    read.catch(() => reads.delete(uri));
    reads.set(uri, read);
  }
  return reads.get(uri);
}
const previewOf = (id, index) => readImage(`runcomfy://jobs/${id}/previews/${index}`, "image/jpeg").then((r) => r.src);
const originalOf = (id, index) => readImage(`runcomfy://jobs/${id}/images/${index}`, "image/png");

// What a reference entry of a recipe names that the view can show: an earlier job's image (its
// preview) or an upload. A URL, a file or a data URI is only named: the view loads nothing remote.
function referencePreview(entry) {
  const text = String(entry).trim();
  const job = /^([A-Za-z0-9_-]{1,128})(?:#(\d{1,4}))?$/.exec(text);
  if (job) return previewOf(job[1], Number(job[2] || 1));
  const upload = /^upload:([0-9a-f]{32})$/.exec(text);
  if (upload && uploadsMade.has(text)) return Promise.resolve(uploadsMade.get(text));
  if (upload) return readImage(`runcomfy://uploads/${upload[1]}`, "image/png").then((r) => r.src);
  return null;
}

// ---- The model of what is shown: jobs by request_id. ----
function job(id) {
  if (!state.jobs.has(id)) {
    state.jobs.set(id, { id, status: "in_queue", finished: false, queue_position: null, outputs: [], note: null, unlisted: 0, origin: null, references: [] });
    state.order.push(id);
  }
  return state.jobs.get(id);
}

function outputsOf(data, id) {
  return (data.outputs || []).filter((o) => o.kind === "image" && (o.reference || "").startsWith(`${id}#`));
}

function absorbResult(data) {
  // The view's heading is the call's own recipe; a later job (an edit) keeps its own on its card.
  if (data.made_with && !state.recipe) state.recipe = data.made_with;
  const estimate = data.estimated_cost_usd;
  if (estimate && typeof estimate.min_usd === "number") state.estimate = estimate;
  const ids = (data.request_ids && data.request_ids.length) ? data.request_ids : [data.request_id];
  const batch = new Map((data.jobs || []).map((j) => [j.request_id, j]));
  for (const id of ids.filter(Boolean)) {
    const j = job(id);
    const b = batch.get(id);
    j.status = b ? b.status : String(data.status);
    j.finished = b ? b.finished : Boolean(data.finished);
    j.queue_position = (b ? b.queue_position : data.queue_position) ?? null;
    if (b && b.error) j.note = b.error;
    if (b && typeof b.cost_usd === "number") j.cost = b.cost_usd;
    else if (!b && typeof data.cost_usd === "number") j.cost = data.cost_usd;
    const unlisted = b ? b.unlisted_outputs : data.unlisted_outputs;
    if (unlisted) j.unlisted = unlisted;
    const outs = outputsOf(data, id);
    if (outs.length) j.outputs = outs;
    if (data.made_with && Array.isArray(data.made_with.images) && data.made_with.images.length) j.references = data.made_with.images;
    if (data.made_with && data.made_with.prompt) j.prompt = data.made_with.prompt;
  }
}

// Keeps an unfinished job current: check_status every few seconds, get_result once it succeeded.
const following = new Set();
async function follow(id) {
  if (following.has(id)) return;
  following.add(id);
  try {
    for (;;) {
      const j = job(id);
      if (j.finished) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
      try {
        const { data } = await callTool("check_status", { request_id: id });
        j.status = String(data.status);
        j.queue_position = data.queue_position ?? null;
        j.finished = Boolean(data.finished);
        j.note = null;
        if (j.status === "succeeded") {
          const result = await callTool("get_result", { request_id: id });
          absorbResult(result.data);
          j.finished = true;
        }
        if (j.finished) refreshBalance();
      } catch (error) {
        j.note = `Could not check the job: ${error.message}`;
      }
      render();
    }
  } finally {
    following.delete(id);
  }
}

// The RunComfy balance for the header, from list_jobs (read-only, costs nothing).
async function refreshBalance() {
  try {
    const { data } = await callTool("list_jobs", { limit: 1 });
    if (typeof data.balance_usd === "number") {
      state.balance = data.balance_usd;
      render();
    }
  } catch (_) {
    // The header just leaves the balance out.
  }
}

// ---- Actions. Paid ones run only on a click, on buttons that say so. ----
async function act(button, work) {
  const place = button.closest(".tile, .job, .full, .upload") || document.body;
  const note = place.querySelector(".note.action") || place.appendChild(el("div", { class: "note action", role: "status" }));
  button.disabled = true;
  note.className = "note action";
  note.textContent = "Working…";
  try {
    note.textContent = await work();
  } catch (error) {
    note.className = "note action bad";
    note.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

function startedJob(data, what, references) {
  const id = data.request_id;
  const j = job(id);
  j.origin = what;
  if (references) j.references = references;
  state.gallery = null; // the new job is followed in the job view
  state.full = null;
  render();
  follow(id);
  tellModel(`From the image viewer, the user started a new paid job (${what}): request_id ${id}.`);
  return `Started job ${id}.`;
}

// An edit of `reference` (request_id#n or an upload's reference) with a typed prompt: one paid job.
function editBox(reference, label) {
  const input = el("input", { type: "text", placeholder: "What to change…", "aria-label": `What to change in ${label}` });
  const go = el("button", { class: "paid", "data-action": "edit-go", onclick: (e) => act(e.currentTarget, async () => {
    const prompt = input.value.trim();
    if (!prompt) throw new Error("Say what to change first.");
    const args = { prompt, images: [reference] };
    // An edit of a result keeps its size; an upload's keeps the upload's own shape.
    if (state.recipe && state.recipe.size && !reference.startsWith("upload:")) args.size = state.recipe.size;
    const { data } = await callTool("generate_image", args);
    const started = startedJob(data, `edit of ${reference}`, [reference]);
    job(data.request_id).prompt = prompt;
    return started;
  }) }, "Start the edit (paid job)");
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go.click(); });
  return el("div", { class: "edit", hidden: true }, input, go);
}

// Only an https: URL (or the simulator's, on this machine) is ever handed to the host to open: a
// javascript:, data: or vbscript: URL from a broken or hostile upstream could run script there.
// The server marks such outputs (not_a_link); this is the view's own check as well.
function linkable(url) {
  if (typeof url !== "string") return false;
  try {
    const u = new URL(url);
    if (u.protocol === "https:") return Boolean(u.hostname);
    return u.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
  } catch (_) {
    return false;
  }
}

// Download through the host (ui/download-file), for a host that offers it: the original image,
// read as a resource, handed over whole; the host asks the person where to keep it.
function downloadButton(id, index) {
  if (!state.host.capabilities.downloadFile) return null;
  return el("button", { "data-action": "download", "aria-label": `Download image ${index} of job ${id}`, onclick: (e) => act(e.currentTarget, async () => {
    const { mime, blob } = await originalOf(id, index);
    const name = `${id}-${index}.${{ "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" }[mime] || "img"}`;
    const answer = await bridge.request("ui/download-file", { contents: [{ type: "resource", resource: { uri: `file:///${name}`, mimeType: mime, blob } }] });
    if (answer && answer.isError) throw new Error("The host did not download it.");
    return `Downloaded ${name}.`;
  }) }, "Download");
}

function imageActions(id, index, url) {
  const what = `image ${index} of job ${id}`;
  const edit = editBox(`${id}#${index}`, what);
  return el("div", { class: "actions" },
    el("button", { "data-action": "full", "aria-label": `View ${what} full size`, onclick: () => openFull(id, index) }, "Full size"),
    downloadButton(id, index),
    el("button", { "data-action": "save", "aria-label": `Save ${what} to the server's output folder`, onclick: (e) => act(e.currentTarget, async () => {
      const { data } = await callTool("save_image", { request_id: id, index });
      return `Saved to ${data.saved_path}`;
    }) }, "Save"),
    linkable(url) ? el("button", { "data-action": "open", "aria-label": `Open ${what} at its link`, onclick: (e) => act(e.currentTarget, async () => {
      await bridge.request("ui/open-link", { url });
      return "Opened.";
    }) }, "Open link") : null,
    el("button", { "data-action": "edit", "aria-expanded": "false", "aria-label": `Use ${what} as an edit reference`, onclick: (e) => {
      edit.hidden = !edit.hidden;
      e.currentTarget.setAttribute("aria-expanded", String(!edit.hidden));
      if (!edit.hidden) edit.querySelector("input").focus();
    } }, "Use as edit reference…"),
    el("button", { class: "paid", "data-action": "vary", "aria-label": `Make a variation of job ${id} (starts a paid job)`, onclick: (e) => act(e.currentTarget, async () => {
      const { data } = await callTool("generate_variations", { request_id: id, count: 1 });
      return startedJob(data, `variation of ${id}`, job(id).references);
    }) }, "Make a variation (starts a paid job)"),
    edit);
}

function cancelButton(id) {
  return el("button", { "data-action": "cancel", "aria-label": `Cancel job ${id}`, onclick: (e) => act(e.currentTarget, async () => {
    const { data } = await callTool("cancel_request", { request_id: id });
    const j = job(id);
    if (data.outcome === "cancelled") { j.status = "cancelled"; j.finished = true; j.queue_position = null; }
    render();
    return data.message;
  }) }, "Cancel");
}

function imageTile(id, index, url, caption, ratio) {
  const what = `image ${index} of job ${id}`;
  const img = el("img", { alt: `Image ${index} of job ${id}`, "data-ref": `${id}#${index}` });
  const zoom = el("button", { class: "zoom", "data-action": "zoom", "data-ref": `${id}#${index}`, "aria-label": `View ${what} full size`, onclick: () => openFull(id, index) }, img);
  const tile = el("figure", { class: "tile", ratio }, zoom, caption ? el("figcaption", { class: "muted" }, caption) : null, imageActions(id, index, url));
  previewOf(id, index).then((src) => { img.src = src; }, (error) => {
    zoom.replaceWith(el("div", { class: "ph" }, `No preview: ${error.message}`));
  });
  return tile;
}

// A reference image of an edit, shown as "Before" beside its result.
function referenceTile(entry) {
  const name = cut(String(entry), 80);
  const preview = referencePreview(entry);
  if (!preview) return el("figure", { class: "tile before" }, el("div", { class: "ph" }, `Reference: ${name}`));
  const img = el("img", { alt: `Reference image ${name}`, "data-role": "before", "data-ref": String(entry) });
  preview.then((src) => { img.src = src; }, (error) => {
    img.replaceWith(el("div", { class: "ph" }, `No preview of ${name}: ${error.message}`));
  });
  return el("figure", { class: "tile before" }, img, el("figcaption", { class: "muted" }, name));
}

function statusLine(j) {
  const words = { in_queue: "Queued", in_progress: "Generating", succeeded: "Done", failed: "Failed", cancelled: "Cancelled" };
  let text = words[j.status] || j.status;
  if (j.status === "in_queue" && j.queue_position !== null) text += ` — queue position ${j.queue_position}`;
  return el("span", { class: `status ${j.status}`, "data-status": j.status }, text);
}

// A queued or running job's place holder: the shape of the image to come, and where it stands.
function skeleton(j, ratio) {
  const text = j.status === "in_queue"
    ? (j.queue_position !== null ? `Queued — position ${j.queue_position} in line` : "Queued")
    : j.status === "in_progress" ? "Generating…" : "Waiting for RunComfy…";
  return el("div", { class: "tile", ratio }, el("div", { class: "skeleton", role: "status", "aria-live": "polite", "data-field": "skeleton" }, text));
}

// Width over height of a size like "2560x1440(16:9)", for placeholders of the right shape.
function ratioOf(size) {
  const m = /^(\d+)x(\d+)/.exec(String(size || ""));
  return m ? Number(m[1]) / Number(m[2]) : null;
}

// ---- Rendering. ----
function render() {
  const root = document.getElementById("app");
  root.replaceChildren(state.full ? renderFull() : state.gallery ? renderGallery() : renderJobs());
  reportSize();
}

// The header: what the shown jobs cost (or are estimated to), and the balance when known.
function header(title) {
  const costs = state.order.map((id) => state.jobs.get(id).cost).filter((c) => typeof c === "number");
  const e = state.estimate;
  const cost = costs.length ? `Cost ${usd(costs.reduce((a, b) => a + b, 0))}`
    : e ? `Estimated ${usd(e.min_usd)}${e.max_usd > e.min_usd ? `–${usd(e.max_usd)}` : ""}` : null;
  return el("header", {},
    el("h1", {}, title),
    el("div", { class: "money" },
      cost ? el("span", { class: "chip", "data-field": "cost" }, cost) : null,
      state.balance !== null ? el("span", { class: "chip", "data-field": "balance" }, `Balance ${usd(state.balance)}`) : null));
}

function renderJobs() {
  const recipe = state.recipe || state.input || {};
  const facts = [recipe.size, recipe.images && recipe.images.length ? `${recipe.images.length} reference image(s)` : null].filter(Boolean).join(" · ");
  return el("div", {},
    header("Dreamina 4.0"),
    recipe.prompt ? el("p", { class: "prompt", "data-field": "prompt" }, recipe.prompt) : null,
    facts ? el("div", { class: "muted", "data-field": "facts" }, facts) : null,
    state.order.map((id) => {
      // A card is rebuilt only when its job changed: polling must not wipe a half-typed edit.
      const j = state.jobs.get(id);
      const signature = JSON.stringify(j);
      const kept = cards.get(id);
      if (kept && kept.signature === signature) return kept.node;
      const node = jobCard(j);
      cards.set(id, { signature, node });
      return node;
    }),
    uploadPanel());
}

const cards = new Map();
function jobCard(j) {
  const id = j.id;
  const ratio = ratioOf((state.recipe || state.input || {}).size);
  const shown = j.outputs.slice(0, SHOWN_IMAGES);
  const results = shown.length
    ? el("div", { class: "grid", "data-field": "results" }, shown.map((o) => imageTile(id, o.index, o.not_a_link ? null : o.url,
      [o.width && o.height ? `${o.width}×${o.height}` : null, o.saved_path ? `saved: ${o.saved_path}` : null].filter(Boolean).join(" · "),
      o.width && o.height ? o.width / o.height : ratio)))
    : !j.finished ? el("div", { class: "grid" }, skeleton(j, ratio)) : null;
  // An edit: its reference images ("Before") beside what came of them ("After").
  const body = j.references.length && results
    ? el("div", { class: "compare", "data-field": "compare" },
      el("section", { "aria-label": "Before" }, el("h2", {}, "Before"), el("div", { class: "grid" }, j.references.slice(0, 4).map(referenceTile))),
      el("section", { "aria-label": "After" }, el("h2", {}, "After"), results))
    : results;
  return el("article", { class: "job", "data-job": id, "aria-label": `Job ${id}` },
    el("div", {}, statusLine(j), el("span", { class: "muted" }, [j.origin, id, j.cost !== undefined ? `cost ${usd(j.cost)}` : null].filter(Boolean).join(" · "))),
    j.prompt && j.prompt !== (state.recipe || state.input || {}).prompt ? el("p", { class: "prompt", "data-field": "job-prompt" }, j.prompt) : null,
    j.status === "in_queue" && !j.finished ? el("div", { class: "actions" }, cancelButton(id)) : null,
    j.note ? el("div", { class: "note bad" }, j.note) : null,
    j.unlisted ? el("div", { class: "note" }, `and ${j.unlisted} more outputs RunComfy listed, not shown (a result is capped)`) : null,
    j.outputs.length > SHOWN_IMAGES ? el("div", { class: "note" }, `${j.outputs.length - SHOWN_IMAGES} more images are listed in the result, not shown here`) : null,
    body);
}

function renderGallery() {
  const jobs = state.gallery;
  return el("div", {},
    header("Recent jobs"),
    jobs.length ? null : el("p", { class: "muted" }, "No jobs recorded on this machine yet."),
    el("div", { class: "grid", "data-field": "gallery" }, jobs.map((entry) => {
      const id = entry.request_id;
      const caption = el("div", {}, el("div", { class: "prompt" }, entry.prompt),
        el("div", { class: "muted" }, [entry.size, entry.submitted_at.replace("T", " ").slice(0, 16),
          typeof entry.cost_usd === "number" ? `cost ${usd(entry.cost_usd)}` : typeof entry.estimate_usd === "number" ? `est. ${usd(entry.estimate_usd)}` : null].filter(Boolean).join(" · ")));
      if (id && entry.status === "succeeded" && entry.images.length) {
        const tile = imageTile(id, 1, entry.images[0], null, ratioOf(entry.size));
        tile.setAttribute("data-job", id);
        tile.insertBefore(caption, tile.children[1]);
        return tile;
      }
      return el("div", { class: "tile", "data-job": id || "" },
        el("div", { class: "skeleton" }, statusLine({ status: entry.status, queue_position: entry.queue_position ?? null })),
        caption,
        id && entry.status === "in_queue" ? el("div", { class: "actions" }, cancelButton(id)) : null,
        entry.error ? el("div", { class: "note bad" }, entry.error) : null);
    })),
    uploadPanel());
}

// ---- Full size: the host's fullscreen where it offers one, else the whole view. ----
let opener = null;
function openFull(id, index) {
  opener = `${id}#${index}`;
  state.full = { id, index, src: null, mode: state.host.context.displayMode || "inline" };
  render();
  document.querySelector("[data-action=close]").focus();
  if ((state.host.context.availableDisplayModes || []).includes("fullscreen")) {
    bridge.request("ui/request-display-mode", { mode: "fullscreen" }).then((answer) => {
      if (state.full) { state.full.mode = (answer && answer.mode) || state.full.mode; render(); }
    }, () => {});
  }
  originalOf(id, index).then((original) => {
    if (state.full && state.full.id === id && state.full.index === index) { state.full.src = original.src; render(); }
  }, () => {});
}

function closeFull() {
  const full = state.full;
  state.full = null;
  if (full && full.mode === "fullscreen") bridge.request("ui/request-display-mode", { mode: "inline" }).catch(() => {});
  render();
  const back = opener && document.querySelector(`[data-action=zoom][data-ref="${opener}"]`);
  if (back) back.focus();
}

function renderFull() {
  const { id, index, src, mode } = state.full;
  const img = el("img", { alt: `Image ${index} of job ${id}, full size`, "data-field": "full-image", "data-ref": `${id}#${index}`, "data-original": src ? "yes" : "no" });
  if (src) img.src = src;
  else previewOf(id, index).then((preview) => { if (!img.src) img.src = preview; }, () => {});
  return el("div", { class: `full ${mode === "fullscreen" ? "fullscreen" : "inline"}`, role: "dialog", "aria-modal": "true", "aria-label": `Image ${index} of job ${id}, full size`, "data-field": "full", "data-mode": mode },
    el("div", { class: "actions" },
      el("button", { "data-action": "close", "aria-label": "Close the full-size view (Escape)", onclick: closeFull }, "Close"),
      downloadButton(id, index),
      el("span", { class: "muted" }, src ? "Full size" : "Loading the full-size image…")),
    img);
}

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.full) closeFull();
});

let lastSize = "";
function reportSize() {
  const size = `${document.documentElement.scrollWidth}x${document.documentElement.scrollHeight}`;
  if (size === lastSize) return;
  lastSize = size;
  bridge.notify("ui/notifications/size-changed", { width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight });
}

function show(result) {
  if (result.isError) {
    const text = (result.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
    document.getElementById("app").replaceChildren(el("div", { class: "job" }, el("span", { class: "status error" }, "Error"), el("p", { class: "prompt" }, text)));
    return reportSize();
  }
  const data = result.structuredContent;
  if (!data) {
    document.getElementById("app").replaceChildren(el("p", { class: "muted" }, "This result carries no structured data to show."));
    return reportSize();
  }
  if (data.request_id === undefined && Array.isArray(data.jobs)) {
    state.gallery = data.jobs;
    if (typeof data.balance_usd === "number") state.balance = data.balance_usd;
  } else {
    absorbResult(data);
    refreshBalance();
  }
  render();
  for (const id of state.order) if (!state.jobs.get(id).finished) follow(id);
}

// The host's context (ui/initialize, then changes): theme, container size and display mode.
function applyContext(changed) {
  Object.assign(state.host.context, changed || {});
  const context = state.host.context;
  const root = document.documentElement;
  if (context.theme === "light" || context.theme === "dark") root.dataset.theme = context.theme;
  // As the spec has a view follow containerDimensions: fill a fixed width, keep within a maximum.
  const dims = context.containerDimensions || {};
  root.style.width = typeof dims.width === "number" ? "100%" : "";
  root.style.maxWidth = typeof dims.maxWidth === "number" ? `${dims.maxWidth}px` : "";
  root.dataset.display = context.displayMode || "inline";
  // An image no taller than the container lets the view be (with room for its header and buttons).
  const tallest = typeof dims.height === "number" ? dims.height : dims.maxHeight;
  root.style.setProperty("--most-height", typeof tallest === "number" ? `${Math.max(240, tallest - 160)}px` : "none");
  // The host left fullscreen (its own control, Escape): the full-size view goes with it.
  if (state.full && state.full.mode === "fullscreen" && context.displayMode && context.displayMode !== "fullscreen") {
    state.full = null;
    render();
  }
}

bridge.on("ui/notifications/tool-input", (params) => { state.input = params.arguments || {}; });
bridge.on("ui/notifications/tool-input-partial", () => {});
bridge.on("ui/notifications/tool-result", (params) => show(params));
bridge.on("ui/notifications/tool-cancelled", () => {
  document.getElementById("app").replaceChildren(el("p", { class: "muted" }, "The call was cancelled."));
});
bridge.on("ui/notifications/host-context-changed", (params) => applyContext(params));
bridge.on("ui/resource-teardown", () => ({}));
bridge.on("ping", () => ({}));

bridge.request("ui/initialize", {
  appInfo: { name: "runcomfy-mcp-viewer", version: "1.1.0" },
  appCapabilities: { availableDisplayModes: ["inline", "fullscreen"] },
  protocolVersion: "2026-01-26",
}).then((init) => {
  state.host.capabilities = (init && init.hostCapabilities) || {};
  applyContext(init && init.hostContext);
  bridge.notify("ui/notifications/initialized", {});
  new ResizeObserver(reportSize).observe(document.body);
});
