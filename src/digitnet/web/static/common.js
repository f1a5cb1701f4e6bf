// Helpers shared by the two pages: API calls and drawing small pictures on canvases.
"use strict";

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// A 28x28 array of 0..1 values onto a 28x28 canvas, ink white on black as the network sees it.
function paintGray(canvas, rows) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  rows.forEach((row, r) => row.forEach((v, c) => {
    const k = 4 * (r * 28 + c), g = Math.round(255 * v);
    image.data.set([g, g, g, 255], k);
  }));
  ctx.putImageData(image, 0, 0);
}

// Signed values in [-1, 1]: blue positive, red negative, fading to `zero` (RGBA) at 0.
function signedColour(v, zero) {
  const [r, g, b] = v >= 0 ? [37, 99, 235] : [220, 38, 38];
  const a = Math.min(1, Math.abs(v));
  return [zero[0] + (r - zero[0]) * a, zero[1] + (g - zero[1]) * a, zero[2] + (b - zero[2]) * a,
          zero[3] + (255 - zero[3]) * a];
}

function paintSigned(canvas, rows, zero = [255, 255, 255, 255]) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(rows[0].length, rows.length);
  rows.forEach((row, r) => row.forEach((v, c) => {
    image.data.set(signedColour(v, zero).map(Math.round), 4 * (r * row.length + c));
  }));
  ctx.putImageData(image, 0, 0);
}

// Signed values in [-1, 1] as pure blue / red whose opacity grows with the magnitude: a layer
// to lay over a drawing.
function paintHeat(canvas, rows) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(rows[0].length, rows.length);
  rows.forEach((row, r) => row.forEach((v, c) => {
    const colour = v >= 0 ? [37, 99, 235] : [220, 38, 38];
    image.data.set([...colour, Math.round(255 * Math.min(1, 1.5 * Math.abs(v)))],
                   4 * (r * row.length + c));
  }));
  ctx.putImageData(image, 0, 0);
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  Object.entries(attributes).forEach(([k, v]) => node.setAttribute(k, v));
  if (text) node.textContent = text;
  return node;
}

// The model a person chose stays chosen across both pages and reloads: the address names it
// (?model=), else the last choice made in this browser.
const MODEL_KEY = "digitnet.model";

function chosenModel() {
  const query = new URLSearchParams(location.search);
  const named = query.get("model") || query.get("name");  // name=: older links to /model
  try { return named || localStorage.getItem(MODEL_KEY); } catch { return named; }
}

function rememberModel(name) {
  try { localStorage.setItem(MODEL_KEY, name); } catch { /* private mode: the address still names it */ }
  document.querySelectorAll("a[data-keeps-model]").forEach((a) => {
    a.href = `${a.dataset.keepsModel}?model=${encodeURIComponent(name)}`;
  });
  history.replaceState(null, "", `${location.pathname}?model=${encodeURIComponent(name)}`);
}

// Fill a <select> with the served models, the chosen one selected (else the default).
async function fillModelPicker(select) {
  const models = await api("/api/models");
  const wanted = models.some((m) => m.name === chosenModel()) ? chosenModel() : null;
  select.replaceChildren(...models.map((m) => {
    const accuracy = m.test_accuracy ? ` — ${(100 * m.test_accuracy).toFixed(2)}%` : "";
    const option = element("option", { value: m.name }, `${m.name} (${m.kind}${accuracy})`);
    option.selected = wanted ? m.name === wanted : m.default;
    return option;
  }));
  const named = new URLSearchParams(location.search).get("model");
  if (named && !wanted) {  // a link to a model this server does not serve: say so, not silently
    select.after(element("span", { class: "notice", id: "model-notice", role: "status" },
      `no model named “${named}” here: showing ${select.value}`));
  }
  rememberModel(select.value);
  select.addEventListener("change", () => {
    document.getElementById("model-notice")?.remove();
    rememberModel(select.value);
  });
  return models;
}

// Training curves: loss (red, left axis, from 0) and accuracy (blue, right axis, up to 1)
// against epochs; `lines` are {key, dashed, points: [[epoch, value], ...]} (dashed: validation,
// keys "loss", "val_loss", "accuracy", "val_accuracy"); epochs run from `from` to `to`. Drawn
// at the width it is shown (at most 640 px), so its labels keep their size on a phone.
function drawCurves(canvas, lines, { from, to, empty = "no training history" }) {
  const panel = canvas.parentElement, padding = getComputedStyle(panel);
  const inside = panel.clientWidth - parseFloat(padding.paddingLeft) - parseFloat(padding.paddingRight);
  const width = Math.floor(Math.min(640, inside)), height = 300;
  const ratio = window.devicePixelRatio || 1;
  Object.assign(canvas, { width: width * ratio, height: height * ratio });
  canvas.style.width = `${width}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.font = "13px system-ui, sans-serif";
  if (!lines.length) { ctx.fillStyle = "#6b7280"; ctx.fillText(empty, 20, 30); return; }
  const pad = { l: 50, r: 50, t: 12, b: 48 };
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  const values = (accuracy) => lines.filter((l) => l.key.includes("accuracy") === accuracy)
    .flatMap((l) => l.points.map((p) => p[1]));
  const lossTop = Math.max(0, ...values(false));
  const accBottom = Math.min(1, ...values(true));
  const x = (epoch) => pad.l + (to === from ? w / 2 : ((epoch - from) * w) / (to - from));
  const scale = { loss: (v) => pad.t + h * (1 - v / (lossTop || 1)),
                  accuracy: (v) => pad.t + h * (1 - (v - accBottom) / (1 - accBottom || 1)) };
  ctx.strokeStyle = "#cbd5e1"; ctx.strokeRect(pad.l, pad.t, w, h);
  ctx.fillStyle = "#dc2626";
  ctx.fillText(lossTop.toFixed(2), 6, pad.t + 10); ctx.fillText("0", 6, pad.t + h);
  ctx.fillStyle = "#2563eb";
  ctx.fillText("1.00", width - pad.r + 6, pad.t + 10);
  ctx.fillText(accBottom.toFixed(2), width - pad.r + 6, pad.t + h);
  ctx.fillStyle = "#374151";
  const every = Math.ceil((to - from + 1) / 10);
  for (let e = Math.ceil(from); e <= to; e += every) ctx.fillText(String(e), x(e) - 4, pad.t + h + 16);
  for (const { key, dashed, points } of lines) {
    const y = scale[key.includes("accuracy") ? "accuracy" : "loss"];
    ctx.strokeStyle = key.includes("accuracy") ? "#2563eb" : "#dc2626";
    ctx.lineWidth = 2; ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.beginPath();
    points.forEach(([e, v], i) => (i ? ctx.lineTo(x(e), y(v)) : ctx.moveTo(x(e), y(v))));
    ctx.stroke();
    if (points.length === 1) { ctx.fillStyle = ctx.strokeStyle; ctx.fillRect(x(points[0][0]) - 3, y(points[0][1]) - 3, 6, 6); }
  }
  ctx.setLineDash([]);
  ctx.fillStyle = "#374151";
  const legend = "epoch — red: loss (left axis), blue: accuracy (right axis); dashed: validation";
  if (ctx.measureText(legend).width <= width - pad.l) ctx.fillText(legend, pad.l, height - 8);
  else {  // a phone: two lines
    ctx.fillText("epoch — red: loss (left axis),", 6, height - 22);
    ctx.fillText("blue: accuracy (right); dashed: validation", 6, height - 6);
  }
}

// A confusion matrix (rows: true digit, columns: the answer) as a table: the diagonal green,
// mistakes red by how many.
function showConfusion(table, matrix) {
  const top = Math.max(...matrix.flatMap((row, r) => row.filter((_, c) => c !== r)), 1);
  const head = element("tr");
  head.append(element("th", {}, ""), ...matrix.map((_, c) => element("th", {}, String(c))));
  const rows = matrix.map((row, r) => {
    const tr = element("tr");
    tr.append(element("th", {}, String(r)));
    row.forEach((count, c) => {
      const td = element("td", {}, String(count));
      const share = r === c ? 0.25 : count / top;
      td.style.background = r === c ? "rgba(22,163,74,.25)" : `rgba(220,38,38,${(0.7 * share).toFixed(3)})`;
      tr.append(td);
    });
    return tr;
  });
  table.replaceChildren(head, ...rows);
}
