// The drawing page: a canvas, live verdicts from /api/predict (or /api/read for a number),
// what the network sees, why it decided, and its layers at work.
"use strict";

const canvas = document.getElementById("canvas");
const overlay = document.getElementById("overlay");
const ink = canvas.getContext("2d");
const picker = document.getElementById("model");
const statusLine = document.getElementById("status");
const INK_WIDTH = canvas.width / 15;  // ~ an MNIST stroke once scaled to 20 px
const THROTTLE_MS = 90;

let strokes = [];          // each stroke: [[x, y], ...] in canvas pixels
let uploaded = null;       // {file, image, scale, x, y} when the board shows an uploaded image
let last = null;           // the last answer, to redraw overlays
const details = {};        // model name -> /api/models/{name}

function mode() { return document.querySelector("input[name=mode]:checked").value; }

// ---------------------------------------------------------------------------------- drawing

function clearBoard() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, canvas.width, canvas.height);
}

function redraw() {
  clearBoard();
  if (uploaded) ink.drawImage(uploaded.image, uploaded.x, uploaded.y,
                              uploaded.image.width * uploaded.scale,
                              uploaded.image.height * uploaded.scale);
  ink.strokeStyle = "#000";
  ink.lineWidth = INK_WIDTH;
  ink.lineCap = ink.lineJoin = "round";
  for (const stroke of strokes) {
    ink.beginPath();
    ink.moveTo(...stroke[0]);
    for (const point of stroke.slice(1)) ink.lineTo(...point);
    if (stroke.length === 1) ink.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
    ink.stroke();
  }
}

function boardPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  if (uploaded) uploaded.file = null;  // drawing on an upload: send what the board shows
  strokes.push([boardPoint(event)]);
  redraw();
});
canvas.addEventListener("pointermove", (event) => {
  if (!canvas.hasPointerCapture(event.pointerId) || !strokes.length) return;
  strokes[strokes.length - 1].push(boardPoint(event));
  redraw();
  schedule();
});
const endStroke = (event) => {
  if (!canvas.hasPointerCapture(event.pointerId)) return;
  canvas.releasePointerCapture(event.pointerId);
  ask();
};
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function boardIsEmpty() { return !strokes.length && !uploaded; }

document.getElementById("undo").addEventListener("click", () => {
  if (strokes.length) strokes.pop();
  else uploaded = null;
  redraw();
  ask();
});
document.getElementById("clear").addEventListener("click", () => {
  strokes = [];
  uploaded = null;
  redraw();
  ask();
});

document.getElementById("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  strokes = [];
  uploaded = { file, image: null, scale: 1, x: 0, y: 0 };
  try {
    const image = await createImageBitmap(file);
    const scale = Math.min(canvas.width / image.width, canvas.height / image.height);
    Object.assign(uploaded, { image, scale, x: (canvas.width - image.width * scale) / 2,
                              y: (canvas.height - image.height * scale) / 2 });
    redraw();
  } catch {
    uploaded.image = null;  // the browser cannot show it; the server still gets to say why
    clearBoard();
  }
  ask();
});

// --------------------------------------------------------------------------- asking the API

let timer = null, lastAsked = 0;
function schedule() {  // while drawing: at most one request per THROTTLE_MS
  if (timer) return;
  const wait = Math.max(0, THROTTLE_MS - (performance.now() - lastAsked));
  timer = setTimeout(() => { timer = null; ask(); }, wait);
}

// What the board shows, taken now. Not canvas.toBlob: Chromium encodes it in an idle moment,
// which can come a second late (a page without animation frames never has one), and it
// may then send strokes drawn after the ask. toDataURL takes the pixels at the call (~2 ms).
function body() {
  if (uploaded && uploaded.file) return uploaded.file;
  const bytes = atob(canvas.toDataURL("image/png").split(",")[1]);
  return new Blob([Uint8Array.from(bytes, (c) => c.charCodeAt(0))], { type: "image/png" });
}

// At most one request in flight per page: changes made meanwhile are sent when it returns,
// so a fast drawer never queues stale work on the server.
let inFlight = false, dirty = false;

async function ask() {
  lastAsked = performance.now();
  if (boardIsEmpty()) return showNothing();  // an empty board is the page's first state
  if (inFlight) { dirty = true; return; }
  inFlight = true;
  dirty = false;
  document.body.dataset.busy = "true";
  try {
    const blob = body();
    const endpoint = mode() === "number" ? "/api/read" : "/api/predict";
    const url = `${endpoint}?model=${encodeURIComponent(picker.value)}`;
    const answer = await api(url, { method: "POST", body: blob,
      headers: { "Content-Type": blob.type || "application/octet-stream" } });
    if (boardIsEmpty()) return showNothing();  // cleared while the answer was on its way
    last = { endpoint, answer };
    statusLine.textContent = mode() === "number" ? "Write numbers: digits side by side, a line for each."
      : answer.note ? "Several digits? Choose “a number” above to read them all."
      : "Draw with a mouse, a pen or a finger.";
    await show();
  } catch (error) {
    showNothing();
    statusLine.textContent = `Error: ${error.message}`;
    showVerdict(null, null, "no verdict: the error is under the drawing");  // said once
  } finally {
    inFlight = false;
    if (dirty) ask();
    else document.body.dataset.busy = "false";
  }
}

// -------------------------------------------------------------------------------- showing

async function show() {
  const { endpoint, answer } = last;
  const reading = endpoint === "/api/read";
  document.getElementById("reading").hidden = !reading;
  document.getElementById("bars").hidden = reading;
  showDigitPanel(!reading);
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  if (reading) {
    showDigitViews(null);  // they belong to one digit: never the last one's
    return showReading(answer);
  }
  showVerdict(answer.digit, answer.confidence, answer.reason);
  showBars(answer.probabilities);
  await showDigitViews(answer);
}

// Every view back to the page's first state: nothing drawn, nothing to show.
function showNothing() {
  last = null;
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  const verdict = document.getElementById("verdict");
  verdict.dataset.digit = "empty";
  verdict.replaceChildren(element("span", { class: "big" }, "?"),
                          element("span", { class: "note" }, "draw something"));
  document.getElementById("bars").replaceChildren();
  document.getElementById("reading").hidden = true;
  showDigitPanel(mode() !== "number");
  showDigitViews(null);
}

// One digit's input and explanation, or (a number being read) a word on where to find them.
function showDigitPanel(oneDigit) {
  document.querySelector("#sees .pair").hidden = !oneDigit;
  document.getElementById("sees-hint").hidden = oneDigit;
}

// What the network sees, why, and its layers at work, for one digit's answer (or none).
async function showDigitViews(answer) {
  showSeen(answer || {});
  if (!answer) return showNetwork({ digit: null });
  await showNetwork(answer);
}

function showVerdict(digit, confidence, reason) {
  const verdict = document.getElementById("verdict");
  const big = element("span", { class: "big" }, digit === null ? "–" : String(digit));
  const note = digit === null
    ? element("span", { class: "note" }, reason)
    : element("span", { class: "note" }, `${(100 * confidence).toFixed(1)}% sure`);
  verdict.dataset.digit = digit === null ? "none" : String(digit);
  verdict.replaceChildren(big, note);
}

function showBars(probabilities) {
  const bars = document.getElementById("bars");
  if (!probabilities) return bars.replaceChildren();
  const best = probabilities.indexOf(Math.max(...probabilities));
  bars.replaceChildren(...probabilities.map((p, d) => {
    const item = element("li", { class: d === best ? "best" : "" });
    const bar = element("span", { class: "bar" });
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    item.append(element("span", { class: "label" }, String(d)), bar,
                element("span", { class: "value" }, `${(100 * p).toFixed(1)}%`));
    return item;
  }));
}

function showSeen(answer) {
  const seen = document.getElementById("seen"), why = document.getElementById("why");
  if (answer.input) paintGray(seen, answer.input);
  else seen.getContext("2d").clearRect(0, 0, 28, 28);
  if (answer.explanation) paintSigned(why, answer.explanation);
  else why.getContext("2d").clearRect(0, 0, 28, 28);
  if (answer.explanation && answer.frame && document.getElementById("show-why").checked) {
    const heat = element("canvas", { width: 28, height: 28 });
    paintHeat(heat, answer.explanation);
    const [x, y, w, h] = toBoard(answer.frame);
    overlay.getContext("2d").drawImage(heat, x, y, w, h);
  }
}

// Image pixels (of what was sent) -> board pixels.
function toBoard([x, y, w, h]) {
  if (!uploaded || !uploaded.file) return [x, y, w, h];
  const s = uploaded.scale;
  return [uploaded.x + x * s, uploaded.y + y * s, w * s, h * s];
}

function showReading(answer) {
  document.getElementById("reading-text").textContent = answer.text || "nothing";  // the reason is beside the dash
  const written = document.getElementById("reading-written");
  written.hidden = !answer.written || answer.written === answer.text;  // marks or spaces kept
  document.getElementById("reading-as-written").textContent = answer.written || "";
  showVerdict(answer.text ? answer.text : null, null, answer.reason || "no digits found");
  const verdict = document.getElementById("verdict");
  const count = answer.digits.length;
  if (answer.text) verdict.querySelector(".note").textContent = `${count} digit${count === 1 ? "" : "s"}`;
  document.getElementById("reading-digits").replaceChildren(...answer.digits.map((d) =>
    element("li", {}, `${d.digit} (${(100 * d.confidence).toFixed(0)}%)`)));
  const ctx = overlay.getContext("2d");
  ctx.lineWidth = 3;
  ctx.font = `${Math.round(overlay.width / 18)}px sans-serif`;
  for (const d of answer.digits) {
    const [x, y, w, h] = toBoard(d.box);
    ctx.strokeStyle = ctx.fillStyle = "#2563eb";
    ctx.strokeRect(x, y, w, h);
    ctx.fillText(String(d.digit), x + 2, Math.max(y - 6, 24));
  }
  for (const m of answer.marks || []) {  // a separator, a dash, a sign: not a digit
    const [x, y, w, h] = toBoard(m.box);
    ctx.strokeStyle = ctx.fillStyle = "#9333ea";
    ctx.setLineDash([4, 3]);
    ctx.strokeRect(x, y, w, h);
    ctx.setLineDash([]);
    ctx.fillText(m.mark, x + 2, Math.max(y - 6, 24));
  }
}

// ------------------------------------------------------------------------ the network at work

async function showNetwork(answer) {
  const network = document.getElementById("network");
  const hint = document.getElementById("work-hint");
  if (answer.digit === null) {
    hint.textContent = mode() === "number"
      ? "Each layer works on one digit: choose “one digit” above to watch them respond."
      : "Draw a digit to see each layer respond.";
    return network.replaceChildren();
  }
  const info = details[answer.model] ||= await api(`/api/models/${encodeURIComponent(answer.model)}`);
  if (info.kind === "mlp") {
    hint.textContent = "Every neuron of every layer (brighter: more active) and the strongest " +
      "connections (blue: positive weight, red: negative; bolder where the input is active). " +
      "Click a neuron to open it below; the open one is ringed in amber.";
    const open = opened && opened.model === answer.model ? opened : null;
    const net = drawPerceptron(answer, info, open);
    const neuron = element("div", { id: "neuron", class: "neuron" });
    net.addEventListener("click", (event) => {
      const hit = neuronAt(net, event);
      if (!hit) return;
      opened = { model: answer.model, layer: hit.layer, unit: hit.unit };
      showNetwork(answer).catch((error) => { statusLine.textContent = `Error: ${error.message}`; });
    });
    network.replaceChildren(net, neuron);
    if (open) openNeuron(answer, open.layer, open.unit, neuron).catch((error) => {
      neuron.textContent = `Error: ${error.message}`;
    });
  } else {
    hint.textContent = "Each convolution's feature maps (white: strong response), then the " +
      "dense layers' units.";
    network.replaceChildren(...answer.layers.filter((s) => s.name !== "output").map(drawStage));
  }
}

// The perceptron drawn at the width it is shown (a phone's ~330 px or a desktop's 960), so
// its labels keep a readable size: the canvas is never scaled down by CSS. The neuron open
// below it ({layer, unit}, or null) is ringed.
function drawPerceptron(answer, info, open) {
  const width = Math.round(Math.min(960, Math.max(300, document.getElementById("network").clientWidth)));
  const height = 440, narrow = width < 640, ratio = window.devicePixelRatio || 1;
  const net = element("canvas", { width: width * ratio, height: height * ratio, class: "net",
                                   "aria-label": "the network's neurons and connections" });
  net.style.width = `${width}px`;
  const ctx = net.getContext("2d");
  ctx.scale(ratio, ratio);
  const dense = answer.layers;                          // dense stages, output last
  const cell = narrow ? 4 : 7, radius = narrow ? 6 : 9;
  const grid = { x: 4, y: (height - 28 * cell) / 2 };
  const first = grid.x + 28 * cell + (narrow ? 24 : 40), last = width - (narrow ? 24 : 40);
  const gap = dense.length > 1 ? (last - first) / (dense.length - 1) : 0;
  const positions = [Array.from({ length: 784 }, (_, k) =>
    [grid.x + (k % 28 + 0.5) * cell, grid.y + (Math.floor(k / 28) + 0.5) * cell])];
  const activity = [answer.input.flat()];
  dense.forEach((stage, i) => {
    const n = stage.values.length, x = first + i * gap;
    const step = Math.min(26, (height - 60) / n);
    const top = (height - step * (n - 1)) / 2;
    positions.push(stage.values.map((_, k) => [x, top + k * step]));
    activity.push(stage.values);
  });
  // connections first, so neurons sit on top of them
  info.connections.forEach((stage, i) => {
    const strongest = Math.max(...stage.map((c) => Math.abs(c[2])));
    const sourceTop = Math.max(1e-6, ...activity[i]);
    for (const [source, target, weight] of stage) {
      const [x0, y0] = positions[i][source], [x1, y1] = positions[i + 1][target];
      const active = Math.max(0, activity[i][source]) / sourceTop;
      const alpha = (0.08 + 0.8 * active * Math.abs(weight) / strongest).toFixed(3);
      ctx.strokeStyle = weight > 0 ? `rgba(37,99,235,${alpha})` : `rgba(220,38,38,${alpha})`;
      ctx.lineWidth = 0.5 + 2 * Math.abs(weight) / strongest;
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    }
  });
  const input = element("canvas", { width: 28, height: 28 });
  paintGray(input, answer.input);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(input, grid.x, grid.y, 28 * cell, 28 * cell);
  ctx.strokeStyle = "#888"; ctx.strokeRect(grid.x, grid.y, 28 * cell, 28 * cell);
  ctx.font = "13px system-ui, sans-serif";
  dense.forEach((stage, i) => {
    const top = Math.max(1e-6, ...stage.values);
    const output = i === dense.length - 1;
    stage.values.forEach((v, k) => {
      const [x, y] = positions[i + 1][k], g = Math.round(255 * Math.max(0, v) / top);
      ctx.fillStyle = `rgb(${g},${g},${g})`;
      ctx.strokeStyle = output && k === answer.digit ? "#16a34a" : "#666";
      ctx.lineWidth = output && k === answer.digit ? 3 : 1;
      ctx.beginPath(); ctx.arc(x, y, radius, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      if (output) { ctx.fillStyle = "#222"; ctx.textAlign = "left"; ctx.fillText(k, x + radius + 4, y + 5); }
      if (open && open.layer === i && open.unit === k) {
        ctx.strokeStyle = OPEN_RING; ctx.lineWidth = 3;
        ctx.beginPath(); ctx.arc(x, y, radius + 4, 0, 2 * Math.PI); ctx.stroke();
      }
    });
    ctx.fillStyle = "#222"; ctx.textAlign = "center";
    const label = narrow ? String(stage.values.length) : `${stage.name} (${stage.values.length})`;
    ctx.fillText(label, positions[i + 1][0][0], 16);
  });
  ctx.textAlign = "left";
  ctx.fillText(narrow ? "input 784" : "input 28×28 = 784", grid.x, grid.y - 8);
  net.neurons = positions.slice(1);  // for clicks: each dense layer's neurons, in CSS pixels
  net.radius = radius;
  return net;
}

// ------------------------------------------------------------------------------ one neuron

let opened = null;  // the neuron open: {model, layer, unit}; it stays open as the drawing changes
const OPEN_RING = "#f59e0b";  // around the open neuron in the diagram
const neuronCache = {};

async function neuronOf(model, layer, unit) {
  const key = `${model}/${layer}/${unit}`;
  return neuronCache[key] ||= await api(`/api/models/${encodeURIComponent(model)}/layers/${layer}/neurons/${unit}`);
}

function neuronAt(net, event) {
  const box = net.getBoundingClientRect();
  const x = event.clientX - box.left, y = event.clientY - box.top;
  let best = null;
  net.neurons.forEach((layer, i) => layer.forEach(([nx, ny], k) => {
    const d = Math.hypot(nx - x, ny - y);
    if (d <= net.radius + 4 && (!best || d < best.d)) best = { layer: i, unit: k, d };
  }));
  return best;
}

const ACTIVATIONS = {
  relu: (z) => Math.max(0, z), sigmoid: (z) => 1 / (1 + Math.exp(-z)), tanh: Math.tanh,
  linear: (z) => z, "": (z) => z,
};

// A neuron of the answer's network: its weights, its weighted sum for this drawing with the
// inputs that weigh most, and its activation with the point where this drawing puts it.
async function openNeuron(answer, layer, unit, holder) {
  opened = { model: answer.model, layer, unit };
  const key = `${answer.model}/${layer}/${unit}`;
  const n = await neuronOf(answer.model, layer, unit);
  const inputs = layer === 0 ? answer.input.flat() : answer.layers[layer - 1].values;
  const products = n.weights.map((w, i) => w * inputs[i]);
  const sum = products.reduce((a, b) => a + b, 0), z = sum + n.bias;
  const output = n.layer === "output";
  const name = (i) => layer === 0 ? `pixel (row ${Math.floor(i / 28) + 1}, column ${i % 28 + 1})` : `neuron ${i + 1} of ${n.inputs}`;
  const top = (sign) => products.map((p, i) => [p, i]).filter(([p]) => sign * p > 0)
    .sort((a, b) => sign * (b[0] - a[0])).slice(0, 4)
    .map(([p, i]) => element("li", {}, `${name(i)}: ${inputs[i].toFixed(2)} × ${n.weights[i].toFixed(3)} = ${p >= 0 ? "+" : ""}${p.toFixed(3)}`));
  const title = output ? `The output neuron for the digit ${unit}` : `${n.layer}, neuron ${unit + 1}`;
  const weights = layer === 0 ? weightPicture(n.weights) : weightBars(n.weights);
  const sumLine = element("p", { class: "sum" },
    `z = Σ wᵢxᵢ + b = ${sum.toFixed(3)} ${n.bias < 0 ? "−" : "+"} ${Math.abs(n.bias).toFixed(3)} = ${z.toFixed(3)}`);
  sumLine.dataset.z = String(z);
  const list = (sign) => { const ol = element("ol"); ol.append(...top(sign)); return ol; };
  const parts = [element("h3", {}, title),
    element("p", { class: "hint" }, `${n.weights.length} incoming weights from ${n.inputs} (${layer === 0 ? "blue: a pixel of ink excites it, red: inhibits it" : "one bar per neuron: blue positive, red negative"}), bias ${n.bias.toFixed(3)}.`),
    weights, sumLine,
    element("p", {}, "The inputs that push it up most:"), list(1),
    element("p", {}, "…and down most:"), list(-1)];
  if (output) {  // the softmax needs every output neuron's weighted sum
    const all = await Promise.all(answer.layers[layer].values.map((_, k) => neuronOf(answer.model, layer, k)));
    const sums = all.map((m) => m.weights.reduce((a, w, i) => a + w * inputs[i], m.bias));
    const highest = Math.max(...sums), exps = sums.map((s) => Math.exp(s - highest));  // no overflow
    const p = exps[unit] / exps.reduce((a, b) => a + b, 0);
    const line = element("p", { class: "sum" }, `softmax: p = e^z / Σⱼ e^zⱼ over the 10 outputs = ${p.toFixed(4)}`);
    line.dataset.activation = String(p);
    parts.push(line);
    const t = (details[answer.model] || {}).temperature;
    if (t) {  // the verdict's confidence is calibrated: the same softmax of z / T
      const calibrated = sums.map((s) => Math.exp((s - highest) / t));
      const q = calibrated[unit] / calibrated.reduce((a, b) => a + b, 0);
      const note = element("p", { class: "hint", id: "calibrated" },
        `The verdict's confidence is calibrated: the same softmax of z / T, T = ${t.toFixed(2)} ` +
        `(fitted so that of answers given at 90 %, about nine in ten are right) = ${q.toFixed(4)}.`);
      note.dataset.confidence = String(q);
      parts.push(note);
    }
  } else {
    const f = ACTIVATIONS[n.activation] || ACTIVATIONS.linear;
    const line = element("p", { class: "sum" }, `${n.activation || "linear"}(z) = ${f(z).toFixed(3)}: what it passes on`);
    line.dataset.activation = String(f(z));
    parts.push(line, activationPlot(f, z, n.activation));
  }
  holder.replaceChildren(...parts);
  holder.dataset.open = key;
}

function weightPicture(weights) {
  const canvas = element("canvas", { width: 28, height: 28, class: "pixels weight-picture", "aria-label": "its weights" });
  const scale = Math.max(1e-9, ...weights.map(Math.abs));
  paintSigned(canvas, Array.from({ length: 28 }, (_, r) => weights.slice(28 * r, 28 * r + 28).map((w) => w / scale)));
  return canvas;
}

function weightBars(weights) {
  const width = 16 * weights.length + 8, height = 90, canvas = element("canvas", { width, height, class: "bars-chart", "aria-label": "its weights" });
  const ctx = canvas.getContext("2d"), scale = Math.max(1e-9, ...weights.map(Math.abs));
  ctx.strokeStyle = "#94a3b8"; ctx.beginPath(); ctx.moveTo(0, height / 2); ctx.lineTo(width, height / 2); ctx.stroke();
  weights.forEach((w, i) => {
    ctx.fillStyle = w >= 0 ? "#2563eb" : "#dc2626";
    const h = (w / scale) * (height / 2 - 4);
    ctx.fillRect(4 + 16 * i, height / 2 - Math.max(h, 0), 12, Math.abs(h));
  });
  return canvas;
}

function activationPlot(f, z, name) {
  const width = 240, height = 120, canvas = element("canvas", { width, height, class: "activation", "aria-label": `${name} with this drawing's point` });
  const ctx = canvas.getContext("2d");
  const span = Math.max(4, 1.25 * Math.abs(z));
  const values = Array.from({ length: 101 }, (_, i) => f(-span + (2 * span * i) / 100));
  const low = Math.min(0, ...values), high = Math.max(1, ...values);
  const X = (v) => ((v + span) / (2 * span)) * (width - 10) + 5;
  const Y = (v) => height - 8 - ((v - low) / (high - low)) * (height - 16);
  ctx.strokeStyle = "#cbd5e1"; ctx.beginPath(); ctx.moveTo(X(0), 0); ctx.lineTo(X(0), height);
  ctx.moveTo(0, Y(0)); ctx.lineTo(width, Y(0)); ctx.stroke();
  ctx.strokeStyle = "#374151"; ctx.lineWidth = 2; ctx.beginPath();
  values.forEach((v, i) => { const x = X(-span + (2 * span * i) / 100); i ? ctx.lineTo(x, Y(v)) : ctx.moveTo(x, Y(v)); });
  ctx.stroke();
  ctx.fillStyle = "#16a34a"; ctx.beginPath(); ctx.arc(X(z), Y(f(z)), 5, 0, 2 * Math.PI); ctx.fill();
  // the label on the point's own side of the vertical axis, so it never crosses it
  ctx.fillStyle = "#374151"; ctx.font = "12px system-ui, sans-serif";
  const label = `z = ${z.toFixed(2)}`, wide = ctx.measureText(label).width;
  const x = z < 0 ? Math.max(2, X(z) - 8 - wide) : Math.min(X(z) + 8, width - 2 - wide);
  ctx.fillText(label, x, Math.max(Y(f(z)) - 6, 12));
  return canvas;
}

function drawStage(stage) {
  const figure = element("figure", { class: "stage" });
  if (stage.kind === "conv") {
    const [height, width] = stage.size, bytes = atob(stage.maps);
    const maps = element("canvas", { width, height, class: "pixels maps",
                                     "aria-label": `${stage.name} feature maps` });
    const ctx = maps.getContext("2d"), image = ctx.createImageData(width, height);
    for (let k = 0; k < bytes.length; k++) {
      const g = bytes.charCodeAt(k);
      image.data.set([g, g, g, 255], 4 * k);
    }
    ctx.putImageData(image, 0, 0);
    figure.append(maps);
  } else {
    const side = Math.ceil(Math.sqrt(stage.values.length));
    const cells = element("canvas", { width: side, height: Math.ceil(stage.values.length / side),
                                      class: "pixels units" });
    const top = Math.max(1e-6, ...stage.values);
    const rows = [];
    for (let r = 0; r < cells.height; r++) {
      rows.push(Array.from({ length: side }, (_, c) => Math.max(0, stage.values[r * side + c] || 0) / top));
    }
    const ctx = cells.getContext("2d"), image = ctx.createImageData(side, cells.height);
    rows.flat().forEach((v, k) => image.data.set([255 * v, 255 * v, 255 * v, 255], 4 * k));
    ctx.putImageData(image, 0, 0);
    figure.append(cells);
  }
  const [h, w, c] = stage.shape;
  const what = stage.kind === "conv" ? `${c} maps ${h}×${w}` : `${h} units`;
  figure.append(element("figcaption", {}, `${stage.name}: ${what}${stage.activation ? `, ${stage.activation}` : ""}`));
  return figure;
}

// ---------------------------------------------------------------------------------- start

// The page's words follow the mode: a number is written, a digit drawn; the layers and "show
// why" belong to one digit.
function applyMode() {
  const number = mode() === "number";
  document.querySelector("#drawing h2").textContent = number ? "Write a number" : "Draw a digit";
  const why = document.getElementById("show-why");
  why.disabled = number;
  why.parentElement.title = number ? "one digit only: choose “one digit” above" : "";
  if (!last) {
    statusLine.textContent = number ? "Write numbers: digits side by side, a line for each."
      : "Draw with a mouse, a pen or a finger.";
    document.getElementById("work-hint").textContent = number
      ? "Each layer works on one digit: choose “one digit” above to watch them respond."
      : "Draw a digit to see each layer respond.";
  }
}

picker.addEventListener("change", ask);
document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", () => {
  applyMode();
  ask();
}));
document.getElementById("show-why").addEventListener("change", () => last && show());

clearBoard();
applyMode();
fillModelPicker(picker).then(() => {
  document.body.dataset.ready = "true";
}).catch((error) => { statusLine.textContent = `Error: ${error.message}`; });
