// samedenhancer annotate: the page. Plain JavaScript on a canvas, no library, no network but this server.
//
// Every change to a mask (click, undo, reset, box, accept, skip) goes through one queue, sent one at a
// time with the mask version last seen and an operation id: a slow model only makes the queue longer
// (queued clicks are drawn as rings), a failed request is retried with the same id (the server answers a
// replay without applying it twice), and a change made meanwhile in another tab comes back as 409 with
// the current state, on which the remaining clicks are re-based.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");

const page = {
  images: [],          // [{id, name, coarse, state}]
  current: null,       // id shown
  views: new Map(),    // id -> view from the server (version, clicks, mask polygons, ...)
  paths: new Map(),    // id -> {coarse, refined, mask, maskVersion} Path2D caches
  bitmaps: new Map(),  // id -> HTMLImageElement
  opening: new Map(),  // id -> Promise of the view
  queue: [],           // operations waiting to be sent
  sending: false,
  view: { scale: 1, tx: 0, ty: 0 },
  boxMode: false,
  drag: null,          // {x, y, button, shift, moved, box}
  retryTimer: null,
};

// Measurements for people and for the browser test: ms from opening an image to its refined outline on
// screen, and from a click (mouse down) to its updated outline on screen.
const metrics = { open: [], click: [] };

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, url, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, { error: `the server cannot be reached (${error.message})` });
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const imageUrl = (id, what) => `/api/images/${encodeURIComponent(id)}/${what}`;
const newOpId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

// ---- messages and status ----------------------------------------------------------------------------
function say(text, isError = false) {
  const el = $("message");
  el.textContent = text;
  el.className = isError ? "error" : "";
  el.dataset.error = isError ? "1" : "0";
}

function updateFooter() {
  const view = page.views.get(page.current);
  const queued = page.queue.filter((op) => op.image === page.current).length;
  $("title").textContent = page.current ?? "";
  if (view && view.width) {
    $("info").textContent = `${view.width} x ${view.height} px · start: ${view.start ?? "none"} · ` +
      `${view.clicks.length} clicks · ${view.area} px in mask · ${view.state}`;
  } else {
    $("info").textContent = "";
  }
  $("queue").textContent = page.queue.length ? `${page.queue.length} queued (${queued} here)` : "";
  canvas.dataset.image = page.current ?? "";
  canvas.dataset.version = view ? String(view.version) : "";
  canvas.dataset.clicks = view ? String(view.clicks.length) : "";
  canvas.dataset.area = view ? String(view.area) : "";
  canvas.dataset.pending = String(page.queue.length + (page.sending ? 1 : 0));
  canvas.dataset.state = view ? view.state : "";
  const has = (name) => Boolean(view && view[name]);
  $("reset-refined").disabled = !has("refined");
  $("reset-coarse").disabled = !has("coarse");
  $("undo").disabled = !view || view.clicks.length === 0;
}

function renderList() {
  const list = $("images");
  list.replaceChildren();
  page.images.forEach((item, index) => {
    const li = document.createElement("li");
    li.className = `${item.state}${item.id === page.current ? " current" : ""}`;
    li.dataset.id = item.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${index + 1}. ${item.name}`;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = item.state === "todo" ? "to do" : item.state;
    li.append(name, state);
    li.addEventListener("click", () => openImage(item.id));
    list.append(li);
  });
  const done = page.images.filter((item) => item.state !== "todo").length;
  $("progress-text").textContent = `${done} of ${page.images.length} done`;
  $("progress").max = Math.max(page.images.length, 1);
  $("progress").value = done;
  const current = list.querySelector("li.current");
  if (current) current.scrollIntoView({ block: "nearest" });
}

// ---- drawing ----------------------------------------------------------------------------------------
function polygonsToPath(polygons) {
  const path = new Path2D();
  for (const flat of polygons || []) {
    if (flat.length < 2) continue;
    path.moveTo(flat[0] + 0.5, flat[1] + 0.5);
    for (let i = 2; i < flat.length; i += 2) path.lineTo(flat[i] + 0.5, flat[i + 1] + 0.5);
    if (flat.length === 2) path.lineTo(flat[0] + 0.5001, flat[1] + 0.5);  // one pixel: a dot
    path.closePath();
  }
  return path;
}

function pathsOf(id) {
  const view = page.views.get(id);
  let cache = page.paths.get(id);
  if (!cache) {
    cache = {
      coarse: view.coarse ? polygonsToPath(view.coarse) : null,
      refined: view.refined ? polygonsToPath(view.refined) : null,
      mask: null,
      maskVersion: -1,
    };
    page.paths.set(id, cache);
  }
  if (cache.maskVersion !== view.version || !cache.mask) {
    cache.mask = polygonsToPath(view.mask);
    cache.maskVersion = view.version;
  }
  return cache;
}

function resizeCanvas() {
  const dpr = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  const w = Math.round(rect.width * dpr), h = Math.round(rect.height * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
}

function fit() {
  const view = page.views.get(page.current);
  if (!view || !view.width) return;
  const rect = canvas.getBoundingClientRect();
  const scale = Math.min(rect.width / view.width, rect.height / view.height) * 0.96;
  page.view = { scale, tx: (rect.width - view.width * scale) / 2, ty: (rect.height - view.height * scale) / 2 };
  draw();
}

function marker(x, y, positive, pending, scale) {
  const r = 5 / scale;
  ctx.beginPath();
  ctx.arc(x + 0.5, y + 0.5, r, 0, 2 * Math.PI);
  ctx.lineWidth = 2 / scale;
  ctx.strokeStyle = "#000";
  ctx.fillStyle = positive ? "#3cff6e" : "#ff4d4d";
  if (pending) {
    ctx.strokeStyle = ctx.fillStyle;
    ctx.stroke();
  } else {
    ctx.fill();
    ctx.stroke();
  }
}

function draw() {
  resizeCanvas();
  const dpr = window.devicePixelRatio || 1;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const id = page.current;
  const view = page.views.get(id);
  const bitmap = page.bitmaps.get(id);
  const { scale, tx, ty } = page.view;
  ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * tx, dpr * ty);
  ctx.imageSmoothingEnabled = scale < 2;
  if (bitmap && bitmap.complete && bitmap.naturalWidth) ctx.drawImage(bitmap, 0, 0);
  if (!view || !view.width) return;
  const paths = pathsOf(id);
  const opacity = Number($("opacity").value);
  const line = 1.6 / scale;
  if ($("show-fill").checked) {
    ctx.globalAlpha = opacity;
    ctx.fillStyle = "#3cff6e";
    ctx.fill(paths.mask, "evenodd");
    ctx.globalAlpha = 1;
  }
  ctx.lineWidth = line;
  if (paths.coarse && $("show-coarse").checked) {
    ctx.setLineDash([6 / scale, 4 / scale]);
    ctx.strokeStyle = "#ffb020";
    ctx.stroke(paths.coarse);
    ctx.setLineDash([]);
  }
  if (paths.refined && $("show-refined").checked) {
    ctx.strokeStyle = "#28d7ff";
    ctx.stroke(paths.refined);
  }
  ctx.globalAlpha = Math.max(opacity, 0.6);
  ctx.strokeStyle = "#3cff6e";
  ctx.stroke(paths.mask);
  ctx.globalAlpha = 1;
  for (const [x, y, positive] of view.clicks) marker(x, y, positive, false, scale);
  for (const op of page.queue) {
    if (op.image === id && op.action === "click") marker(Math.floor(op.args.x), Math.floor(op.args.y), op.args.positive, true, scale);
  }
  if (page.drag && page.drag.box) {
    const b = page.drag.box;
    ctx.setLineDash([4 / scale, 3 / scale]);
    ctx.strokeStyle = "#ffffff";
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    ctx.setLineDash([]);
  }
  canvas.dataset.refinedDrawn = paths.refined || !view.refined ? "1" : "0";
}

// Calls after the frame that shows the current drawing has been painted.
function afterPaint(callback) {
  requestAnimationFrame(() => requestAnimationFrame(callback));
}

// ---- coordinates ------------------------------------------------------------------------------------
function clientToImage(clientX, clientY) {
  const rect = canvas.getBoundingClientRect();
  const { scale, tx, ty } = page.view;
  return [(clientX - rect.left - tx) / scale, (clientY - rect.top - ty) / scale];
}

function imageToClient(x, y) {
  const rect = canvas.getBoundingClientRect();
  const { scale, tx, ty } = page.view;
  return [rect.left + tx + x * scale, rect.top + ty + y * scale];
}

// ---- opening ----------------------------------------------------------------------------------------
function loadBitmap(id) {
  if (page.bitmaps.has(id)) return Promise.resolve(page.bitmaps.get(id));
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => { page.bitmaps.set(id, img); resolve(img); };
    img.onerror = () => reject(new ApiError(0, { error: `the image ${id} cannot be loaded` }));
    img.src = imageUrl(id, "image");
  });
}

// The view of image `id`, opening it on the server when needed (refines there: the spinner shows).
function ensureOpen(id, force = false) {
  if (!force && page.views.has(id)) return Promise.resolve(page.views.get(id));
  if (page.opening.has(id)) return page.opening.get(id);
  const promise = api("POST", imageUrl(id, "open"), {})
    .then((view) => {
      page.views.set(id, view);
      page.paths.delete(id);
      return view;
    })
    .finally(() => page.opening.delete(id));
  page.opening.set(id, promise);
  return promise;
}

async function openImage(id) {
  if (id == null) return;
  const started = performance.now();
  page.current = id;
  page.boxMode = false;
  $("box").classList.remove("active");
  renderList();
  updateFooter();
  const known = page.views.has(id);
  $("spinner").hidden = known;
  canvas.dataset.refinedDrawn = "0";
  try {
    const [view] = await Promise.all([ensureOpen(id), loadBitmap(id)]);
    if (page.current !== id) return;
    $("spinner").hidden = true;
    fit();
    updateFooter();
    afterPaint(() => {
      if (page.current !== id) return;
      const ms = performance.now() - started;
      metrics.open.push(ms);  // every open, a prefetched one too (then it is the time to show it)
      if (view.notice) {
        say(view.notice, true);
      } else if (!known) {
        const server = view.timings_ms || {};
        say(`opened in ${ms.toFixed(0)} ms` + (server.encode !== undefined ?
          ` (encoder ${server.encode.toFixed(0)} ms, refinement ${server.refine.toFixed(0)} ms)` : ""));
      }
    });
  } catch (error) {
    if (page.current !== id) return;
    $("spinner").hidden = true;
    say(`cannot open ${id}: ${error.message}`, true);
    draw();
  }
}

function step(delta, todoOnly = false) {
  if (!page.images.length) return;
  let index = page.images.findIndex((item) => item.id === page.current);
  for (let n = 0; n < page.images.length; n++) {
    index = (index + delta + page.images.length) % page.images.length;
    if (!todoOnly || page.images[index].state === "todo") return openImage(page.images[index].id);
  }
  say("every image is done");
}

// ---- the operation queue ----------------------------------------------------------------------------
function enqueue(action, args = {}, extra = {}) {
  if (!page.current) return;
  page.queue.push({ image: page.current, action, args, op: newOpId(), t0: performance.now(), ...extra });
  updateFooter();
  draw();
  pump();
}

function applyView(id, view) {
  const old = page.views.get(id) || {};
  page.views.set(id, { ...old, ...view });
  const item = page.images.find((entry) => entry.id === id);
  if (item && view.state && item.state !== view.state) {
    item.state = view.state;
    renderList();
  }
}

async function pump() {
  if (page.sending || !page.queue.length || page.retryTimer) return;
  page.sending = true;
  const op = page.queue[0];
  try {
    const known = await ensureOpen(op.image);
    const view = await api("POST", imageUrl(op.image, op.action), { op: op.op, version: known.version, ...op.args });
    page.queue.shift();
    op.failures = 0;
    applyView(op.image, view);
    if (op.action === "accept" || op.action === "skip") {
      say(op.action === "accept" ? `accepted ${op.image}: mask written` : `skipped ${op.image}`);
      if (op.advance && page.current === op.image) step(1, true);
    } else if (page.current === op.image) {
      say("");
    }
    if (op.image === page.current) {
      draw();
      if (op.action === "click") afterPaint(() => metrics.click.push(performance.now() - op.t0));
    }
  } catch (error) {
    handleFailure(op, error);
  } finally {
    page.sending = false;
    updateFooter();
  }
  if (page.queue.length && !page.retryTimer) pump();
}

function handleFailure(op, error) {
  const status = error.status;
  const reason = error.body && error.body.reason;
  if (status === 409 && reason === "stale" && error.body.state) {
    applyView(op.image, error.body.state);  // another tab changed the mask: catch up
    if (op.action === "accept" || op.action === "skip") {
      page.queue.shift();
      say(`the mask of ${op.image} changed in another tab: look again, then ${op.action}`, true);
    } else {
      say(`the mask of ${op.image} changed in another tab; continuing from it`);
    }
    if (op.image === page.current) draw();
  } else if (status === 409 && reason === "closed") {
    page.views.delete(op.image);  // the server let it go: open again, then send the operation
  } else if (status >= 400 && status < 500) {
    page.queue.shift();  // the server refused this one (outside the image, nothing to undo, ...)
    say(`${op.action} refused: ${error.message}`, true);
  } else {
    // The server is down, or failed: keep the operation (same id) and try again.
    op.failures = (op.failures || 0) + 1;
    const wait = Math.min(1000 * 2 ** (op.failures - 1), 10000);
    say(`${op.action} failed: ${error.message} — ${page.queue.length} kept, retrying in ${(wait / 1000).toFixed(0)} s`, true);
    page.retryTimer = setTimeout(() => { page.retryTimer = null; pump(); }, wait);
  }
}

// ---- mouse ------------------------------------------------------------------------------------------
canvas.addEventListener("contextmenu", (event) => event.preventDefault());

canvas.addEventListener("mousedown", (event) => {
  event.preventDefault();
  page.drag = { x: event.clientX, y: event.clientY, button: event.button, shift: event.shiftKey, moved: false,
                view: { ...page.view }, t0: performance.now(), box: null };
});

window.addEventListener("mousemove", (event) => {
  const drag = page.drag;
  if (!drag) return;
  const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
  if (!drag.moved && Math.hypot(dx, dy) < 4) return;
  drag.moved = true;
  const view = page.views.get(page.current);
  if (page.boxMode && drag.button === 0 && view && view.width) {
    const [ax, ay] = clientToImage(drag.x, drag.y);
    const [bx, by] = clientToImage(event.clientX, event.clientY);
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    drag.box = [clamp(Math.min(ax, bx), view.width), clamp(Math.min(ay, by), view.height),
                clamp(Math.max(ax, bx), view.width), clamp(Math.max(ay, by), view.height)];
  } else {
    canvas.classList.add("panning");
    page.view = { ...drag.view, tx: drag.view.tx + dx, ty: drag.view.ty + dy };
  }
  draw();
});

window.addEventListener("mouseup", (event) => {
  const drag = page.drag;
  if (!drag) return;
  page.drag = null;
  canvas.classList.remove("panning");
  const view = page.views.get(page.current);
  if (drag.box) {
    const b = drag.box;
    page.boxMode = false;
    $("box").classList.remove("active");
    if (b[2] - b[0] >= 2 && b[3] - b[1] >= 2) enqueue("box", { box: b });
    draw();
    return;
  }
  if (drag.moved || !page.current) return;
  const [x, y] = clientToImage(event.clientX, event.clientY);
  const width = view ? view.width : Infinity, height = view ? view.height : Infinity;
  if (!(x >= 0 && y >= 0 && x < width && y < height)) {
    say("click inside the image", true);
    return;
  }
  const positive = drag.button === 0 && !drag.shift;
  if (drag.button !== 0 && drag.button !== 2) return;
  page.queue.push({ image: page.current, action: "click", args: { x, y, positive }, op: newOpId(), t0: drag.t0 });
  updateFooter();
  draw();
  pump();
});

canvas.addEventListener("wheel", (event) => {
  event.preventDefault();
  zoomAt(event.clientX, event.clientY, Math.exp(-event.deltaY * 0.0015));
}, { passive: false });

function zoomAt(clientX, clientY, factor) {
  const rect = canvas.getBoundingClientRect();
  const px = clientX - rect.left, py = clientY - rect.top;
  const { scale, tx, ty } = page.view;
  const next = Math.min(Math.max(scale * factor, 0.05), 64);
  page.view = { scale: next, tx: px - (px - tx) * (next / scale), ty: py - (py - ty) * (next / scale) };
  draw();
}

function zoomCentre(factor) {
  const rect = canvas.getBoundingClientRect();
  zoomAt(rect.left + rect.width / 2, rect.top + rect.height / 2, factor);
}

// ---- buttons and keys -------------------------------------------------------------------------------
const commands = {
  prev: () => step(-1),
  next: () => step(1),
  undo: () => enqueue("undo"),
  resetRefined: () => enqueue("reset", { to: "refined" }),
  resetCoarse: () => enqueue("reset", { to: "coarse" }),
  box: () => {
    page.boxMode = !page.boxMode;
    $("box").classList.toggle("active", page.boxMode);
    say(page.boxMode ? "drag a box on the image" : "");
  },
  accept: () => enqueue("accept", {}, { advance: true }),
  skip: () => enqueue("skip", {}, { advance: true }),
  fit: () => fit(),
  toggle: (id) => { $(id).checked = !$(id).checked; draw(); },
  opacity: (delta) => {
    const el = $("opacity");
    el.value = String(Math.min(Math.max(Number(el.value) + delta, 0), 1));
    draw();
  },
};

$("prev").onclick = commands.prev;
$("next").onclick = commands.next;
$("undo").onclick = commands.undo;
$("reset-refined").onclick = commands.resetRefined;
$("reset-coarse").onclick = commands.resetCoarse;
$("box").onclick = commands.box;
$("accept").onclick = commands.accept;
$("skip").onclick = commands.skip;
$("fit").onclick = commands.fit;
for (const id of ["show-coarse", "show-refined", "show-fill", "opacity"]) $(id).addEventListener("input", draw);
// A button keeps no focus, so Enter after clicking one accepts once (the key), not twice (key and button).
for (const button of document.querySelectorAll("#toolbar button")) button.addEventListener("mouseup", () => button.blur());

const keys = {
  "z": commands.undo, "Backspace": commands.undo,
  "r": commands.resetRefined, "c": commands.resetCoarse, "b": commands.box,
  "Enter": commands.accept, "a": commands.accept, "s": commands.skip,
  "n": commands.next, "ArrowRight": commands.next, "p": commands.prev, "ArrowLeft": commands.prev,
  "1": () => commands.toggle("show-coarse"), "2": () => commands.toggle("show-refined"),
  "3": () => commands.toggle("show-fill"),
  "[": () => commands.opacity(-0.1), "]": () => commands.opacity(0.1),
  "f": commands.fit, "+": () => zoomCentre(1.25), "=": () => zoomCentre(1.25), "-": () => zoomCentre(0.8),
};

window.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.type !== "checkbox" && event.target.type !== "range") return;
  if (event.altKey || event.metaKey) return;
  if (event.ctrlKey && event.key.toLowerCase() !== "z") return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const command = keys[key];
  if (command) {
    event.preventDefault();
    command();
  }
});

window.addEventListener("resize", () => { fit(); });
window.addEventListener("beforeunload", (event) => {
  if (page.queue.length || page.sending) event.preventDefault();  // queued changes not yet sent
});

// ---- the background pass: "embeddings 12 of 40 ready" while it runs --------------------------------
async function showEmbeddings() {
  let progress = null;
  try { progress = await api("GET", "/api/embeddings"); } catch (_) { progress = null; }
  const text = $("embeddings-text");
  if (!progress) { text.textContent = ""; return; }
  text.textContent = `embeddings ${progress.ready} of ${progress.total} ready` +
    (progress.failed ? `, ${progress.failed} failed` : "") + (progress.running ? " (encoding…)" : "");
  if (progress.running || progress.ready + progress.failed < progress.total) setTimeout(showEmbeddings, 2000);
}

// ---- start ------------------------------------------------------------------------------------------
async function start() {
  try {
    const listing = await api("GET", "/api/images");
    page.images = listing.images;
    renderList();
    const first = page.images.find((item) => item.state === "todo") || page.images[0];
    if (first) openImage(first.id);
    showEmbeddings();
  } catch (error) {
    say(`cannot list the images: ${error.message}`, true);
  }
}

window.annotate = { metrics, imageToClient, clientToImage, page };
start();
