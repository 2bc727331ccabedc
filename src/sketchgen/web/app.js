// sketchgen's page: asks the local server for drawings and animates them stroke by stroke;
// what the user draws on the canvas goes to /api/complete for the model to finish; a model with a latent
// also redraws what is on the canvas (/api/reconstruct) and morphs one drawing into another (/api/interpolate).
"use strict";

const FRAME = 255; // the API's coordinates: QuickDraw's 0-255 frame, y down
const SPEED = 320; // frame units a second: about the pace of a person's pen
const PAUSE = 0.15; // seconds the pen is lifted between strokes
const LONGEST = 6; // seconds: a longer drawing is sped up to finish within this
const MARGIN = 0.08; // of the canvas, around a drawing fitted to it
const EXPORT_SIZE = 512; // pixels of a downloaded picture
const INK = "#1d1d1f";
const PEN = "#d62828";
const MAX_SEED = 2147483647;
const MORPH_STEPS = 9; // drawings from the kept one to the one on the canvas, both ends included
const MORPH_FRAME = 0.35; // seconds each drawing of a morph is shown

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ui = {
  cls: $("class"), temperature: $("temperature"), temperatureValue: $("temperature-value"), seed: $("seed"),
  status: $("status"), model: $("model"), buttons: [...document.querySelectorAll("button")],
};

// The classes offered: the select's value (its place) -> the model that draws it and the class's name in that model.
const entries = new Map();
const chosen = () => ui.cls.options[ui.cls.selectedIndex].textContent; // as the user sees it: "eye (a.pt)"
let models = new Map(); // model id -> its description from /api/classes

// What is on the canvas: strokes of [x, y] points in the 0-255 frame; the first `mine` are the user's.
let strokes = [];
let mine = 0;
let pen = null; // the stroke the user is drawing now
let busy = false;
let morphFrom = null; // the start of a morph: { strokes, key } (the select's value it was kept under)
// Frame -> canvas, as fractions of the canvas side: u = x * k + ox. The user draws in the identity view.
const IDENTITY = { k: 1 / FRAME, ox: 0, oy: 0 };
let view = IDENTITY;

// --- drawing on a canvas -------------------------------------------------------------------

function fitView(drawing) {
  const points = drawing.flat();
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const lo = [Math.min(...xs), Math.min(...ys)], hi = [Math.max(...xs), Math.max(...ys)];
  const extent = Math.max(hi[0] - lo[0], hi[1] - lo[1]);
  const k = extent > 0 ? (1 - 2 * MARGIN) / extent : IDENTITY.k;
  return { k, ox: 0.5 - ((lo[0] + hi[0]) / 2) * k, oy: 0.5 - ((lo[1] + hi[1]) / 2) * k };
}

function insideFrame(drawing) {
  return drawing.flat().every(([x, y]) => x >= 0 && x <= FRAME && y >= 0 && y <= FRAME);
}

function paint(ctx, size, drawing, penAt) {
  const px = ([x, y]) => [(x * view.k + view.ox) * size, (y * view.k + view.oy) * size];
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = Math.max(1.5, size / 150);
  ctx.strokeStyle = INK;
  for (const s of drawing) {
    ctx.beginPath();
    const [x0, y0] = px(s[0]);
    ctx.moveTo(x0, y0);
    if (s.length === 1) ctx.lineTo(x0 + 0.01, y0); // a lone point: the round cap makes it a dot
    for (const p of s.slice(1)) ctx.lineTo(...px(p));
    ctx.stroke();
  }
  if (penAt) {
    const [x, y] = px(penAt);
    ctx.fillStyle = PEN;
    ctx.beginPath();
    ctx.arc(x, y, ctx.lineWidth * 1.6, 0, 2 * Math.PI);
    ctx.fill();
  }
}

function show(drawing = strokes, penAt = null) {
  const size = Math.round(canvas.clientWidth * (window.devicePixelRatio || 1));
  if (canvas.width !== size) canvas.width = canvas.height = size;
  paint(canvas.getContext("2d"), size, drawing, penAt);
}

// --- animation -----------------------------------------------------------------------------

const distance = (a, b) => Math.hypot(b[0] - a[0], b[1] - a[1]);
const pathLength = (s) => s.slice(1).reduce((sum, p, i) => sum + distance(s[i], p), 0);

function partOf(s, length) {
  // The stroke as far as a pen gets along it in `length` frame units.
  const out = [s[0]];
  for (let i = 1; i < s.length; i++) {
    const step = distance(s[i - 1], s[i]);
    if (length < step) {
      const f = length / step;
      out.push([s[i - 1][0] + f * (s[i][0] - s[i - 1][0]), s[i - 1][1] + f * (s[i][1] - s[i - 1][1])]);
      return out;
    }
    length -= step;
    out.push(s[i]);
  }
  return out;
}

function animate(drawing, from) {
  // Strokes before `from` stay as they are; the rest are drawn at a pen's pace, never the pen-up moves.
  const lengths = drawing.map(pathLength);
  const natural = lengths.slice(from).reduce((a, b) => a + b, 0) / SPEED + PAUSE * (drawing.length - from);
  const rate = Math.max(1, natural / LONGEST);
  return new Promise((resolve) => {
    const start = performance.now();
    const frame = (now) => {
      let left = ((now - start) / 1000) * rate; // seconds of drawing time gone by
      const shown = drawing.slice(0, from);
      let penAt = null;
      for (let i = from; i < drawing.length && penAt === null; i++) {
        const takes = lengths[i] / SPEED;
        const part = left >= takes ? drawing[i] : partOf(drawing[i], left * SPEED);
        shown.push(part);
        if (left < takes + PAUSE) penAt = part[part.length - 1];
        left -= takes + PAUSE;
      }
      show(shown, penAt);
      if (penAt === null) resolve();
      else requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
}

// --- the server ----------------------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const reply = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(reply.error || `${res.status} ${res.statusText}`);
  return reply;
}

const toPoints = ([xs, ys]) => xs.map((x, i) => [x, ys[i]]);
const toField = (s) => [s.map((p) => Math.round(p[0] * 10) / 10), s.map((p) => Math.round(p[1] * 10) / 10)];

function request() {
  let seed = parseInt(ui.seed.value, 10);
  seed = Number.isFinite(seed) ? Math.min(Math.max(seed, 0), MAX_SEED) : 0;
  ui.seed.value = seed;
  const entry = entries.get(ui.cls.value);
  return { class: entry.name, model: entry.model, temperature: Number(ui.temperature.value), seed };
}

// --- what the buttons do -------------------------------------------------------------------

const a = (name) => `${/^[aeiou]/i.test(name) ? "an" : "a"} ${name}`;
const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;

function say(text, error = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", error);
}

function setBusy(value) {
  busy = value;
  for (const b of ui.buttons) b.disabled = value;
  document.body.dataset.state = value ? "busy" : "idle";
}

async function run(task) {
  if (busy) return;
  setBusy(true);
  try {
    await task();
  } catch (e) {
    say(e.message, true);
  } finally {
    setBusy(false);
  }
}

async function draw() {
  const req = request();
  say(`Drawing ${a(chosen())}…`);
  const reply = await api("/api/sample", req);
  strokes = reply.strokes.map(toPoints);
  mine = 0;
  view = strokes.length ? fitView(strokes) : IDENTITY;
  await animate(strokes, 0);
  const what = a(chosen());
  const temperature = ui.temperature.disabled ? "" : `, temperature ${req.temperature}`;
  say(`${what[0].toUpperCase()}${what.slice(1)}: seed ${req.seed}${temperature}, ${count(strokes.length, "stroke")}.`);
}

async function finish() {
  const req = request();
  if (!mine) {
    say(`Draw the start of ${a(req.class)} on the canvas first.`, true);
    return;
  }
  const own = strokes.slice(0, mine);
  say(`Finishing your ${req.class}…`);
  const reply = await api("/api/complete", { ...req, strokes: own.map(toField) });
  strokes = own.concat(reply.strokes.slice(reply.n_prefix).map(toPoints));
  view = insideFrame(strokes) ? IDENTITY : fitView(strokes); // zoom out if the model went past the edge
  await animate(strokes, mine);
  const added = strokes.length - mine;
  say(added ? `Your ${req.class}, finished with ${count(added, "more stroke")} (seed ${req.seed}).`
    : `The model thinks your ${req.class} is already finished (seed ${req.seed}); try another seed.`);
}

// --- a model with a latent: redraw, morph ------------------------------------------------------

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

function canvasHolds(what) {
  if (strokes.length) return true;
  say(`Nothing to ${what} yet: draw something, or press Draw.`, true);
  return false;
}

async function redraw() {
  const req = request();
  if (!canvasHolds("redraw")) return;
  say(`Redrawing this ${req.class}…`);
  const reply = await api("/api/reconstruct", { ...req, strokes: strokes.map(toField) });
  strokes = reply.strokes.map(toPoints);
  mine = 0;
  view = strokes.length ? fitView(strokes) : IDENTITY;
  await animate(strokes, 0);
  say(`The model's own version of that ${req.class}: seed ${req.seed}, ${count(strokes.length, "stroke")}.`);
}

function keepForMorph() {
  if (!canvasHolds("morph from")) return;
  morphFrom = { strokes: strokes.map((s) => s.slice()), key: ui.cls.value };
  say(`Kept this ${entries.get(ui.cls.value).name} as the start: now draw or generate another (any class of ` +
    "this model), then press “Morph into this”.");
}

async function morph() {
  const req = request();
  if (!morphFrom) {
    say("First press “Morph from this” with the drawing to start from on the canvas.", true);
    return;
  }
  if (!canvasHolds("morph into")) return;
  const from = entries.get(morphFrom.key);
  if (from.model !== req.model) {
    say(`The kept ${from.name} belongs to another model (${from.model}): a morph stays within one model.`, true);
    return;
  }
  say(`Morphing ${a(from.name)} into ${a(req.class)}…`);
  const reply = await api("/api/interpolate", {
    ...req, class: from.name, strokes: morphFrom.strokes.map(toField), to_class: req.class,
    to_strokes: strokes.map(toField), steps: MORPH_STEPS,
  });
  const frames = reply.drawings.map((d) => d.strokes.map(toPoints));
  for (const frame of frames) {
    view = frame.length ? fitView(frame) : IDENTITY;
    show(frame);
    await sleep(MORPH_FRAME);
  }
  strokes = frames[frames.length - 1];
  mine = 0;
  const what = `${a(from.name)} into ${a(req.class)}`;
  say(`${what[0].toUpperCase()}${what.slice(1)}: ${count(frames.length, "drawing")}, seed ${req.seed}.`);
}

function clear() {
  strokes = [];
  mine = 0;
  view = IDENTITY;
  show();
  say(`Draw the start of ${a(chosen())}, then press “Finish it”.`);
}

function save(ext) {
  if (!strokes.length) {
    say("Nothing to download yet: press Draw or draw something.", true);
    return;
  }
  const name = `sketchgen-${entries.get(ui.cls.value).name.replace(/\W+/g, "_")}-${ui.seed.value}.${ext}`;
  const deliver = (blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  if (ext === "png") {
    const off = document.createElement("canvas");
    off.width = off.height = EXPORT_SIZE;
    paint(off.getContext("2d"), EXPORT_SIZE, strokes, null);
    off.toBlob(deliver, "image/png");
  } else {
    deliver(new Blob([svg(EXPORT_SIZE)], { type: "image/svg+xml" }));
  }
}

function svg(size) {
  const px = ([x, y]) => `${((x * view.k + view.ox) * size).toFixed(2)} ${((y * view.k + view.oy) * size).toFixed(2)}`;
  const paths = strokes.map((s) => `    <path d="M${(s.length > 1 ? s : [s[0], s[0]]).map(px).join(" L")}"/>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">`,
    `  <rect width="${size}" height="${size}" fill="white"/>`,
    `  <g fill="none" stroke="black" stroke-width="${(size / 150).toFixed(2)}" stroke-linecap="round" stroke-linejoin="round">`,
    ...paths,
    "  </g>",
    "</svg>",
    "",
  ].join("\n");
}

// --- the user's pen ------------------------------------------------------------------------

function toFrame(e) {
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) / r.width) * FRAME, ((e.clientY - r.top) / r.height) * FRAME];
}

canvas.addEventListener("pointerdown", (e) => {
  if (busy || e.button > 0) return;
  e.preventDefault();
  canvas.setPointerCapture(e.pointerId);
  strokes = strokes.slice(0, mine); // the model's ink goes; the user's own strokes stay
  view = IDENTITY;
  pen = [toFrame(e)];
  strokes.push(pen);
  mine += 1;
  show();
});

canvas.addEventListener("pointermove", (e) => {
  if (!pen) return;
  const p = toFrame(e);
  if (distance(pen[pen.length - 1], p) < 0.5) return;
  pen.push(p);
  show();
});

for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    if (!pen) return;
    pen = null;
    say(`Keep drawing, or press “Finish it” and the model completes your ${chosen()}.`);
  });
}

// --- start ---------------------------------------------------------------------------------

$("draw").addEventListener("click", () => run(draw));
$("again").addEventListener("click", () => {
  ui.seed.value = (request().seed + 1) % (MAX_SEED + 1);
  run(draw);
});
$("finish").addEventListener("click", () => run(finish));
$("clear").addEventListener("click", () => run(async () => clear()));
$("redraw").addEventListener("click", () => run(redraw));
$("morph-from").addEventListener("click", keepForMorph);
$("morph-to").addEventListener("click", () => run(morph));
$("svg").addEventListener("click", () => save("svg"));
$("png").addEventListener("click", () => save("png"));
ui.temperature.addEventListener("input", () => {
  ui.temperatureValue.textContent = Number(ui.temperature.value).toFixed(2);
});
window.addEventListener("resize", () => {
  if (!busy) show();
});

function showModel() {
  // The temperature slider and the model line follow the model of the chosen class.
  const m = models.get(entries.get(ui.cls.value).model);
  if (m.temperature === null) {
    ui.temperature.disabled = true;
    ui.temperature.title = `The ${m.kind} model has no sampling temperature`;
    ui.temperatureValue.textContent = `(not used by the ${m.kind} model)`;
  } else {
    ui.temperature.disabled = false;
    ui.temperature.title = "";
    ui.temperatureValue.textContent = Number(ui.temperature.value).toFixed(2);
  }
  $("latent").hidden = !m.latent_dim;
  const size = `, ${(m.parameters / 1e6).toFixed(1)}M parameters`;
  const others = models.size > 1 ? ` (1 of ${models.size} models)` : "";
  ui.model.textContent = `${m.kind} model${size}, ${m.classes.length} classes` +
    (m.epoch ? `, epoch ${m.epoch}` : "") + ` · ${m.id}${others}`;
}

ui.cls.addEventListener("change", showModel);

run(async () => {
  const info = await api("/api/classes");
  models = new Map(info.models.map((m) => [m.id, m]));
  const owners = new Map(); // class name -> how many models draw it
  for (const m of info.models) for (const name of m.classes) owners.set(name, (owners.get(name) || 0) + 1);
  for (const m of info.models) {
    for (const name of m.classes) {
      const label = owners.get(name) > 1 ? `${name} (${m.id})` : name;
      // Keyed by place, not label: another model's class may be named "eye (a.pt)".
      const key = String(entries.size);
      entries.set(key, { name, model: m.id });
      ui.cls.add(new Option(label, key));
    }
  }
  const first = info.models.find((m) => m.temperature !== null);
  if (first) ui.temperature.value = first.temperature;
  // The slider spans what the page's own range offers (index.html); the server takes up to its limit.
  showModel();
  show();
  say("Pick a class and press Draw, or draw the start of one on the canvas.");
});
