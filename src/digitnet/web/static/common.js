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
  rememberModel(select.value);
  select.addEventListener("change", () => rememberModel(select.value));
  return models;
}
