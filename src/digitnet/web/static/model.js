// The model page: architecture, training curves, test accuracy and confusion matrix, first-layer
// weights, and a gallery of misclassified test digits — all from the API.
"use strict";

const picker = document.getElementById("model");

async function showModel(name) {
  const info = await api(`/api/models/${encodeURIComponent(name)}`);
  showArchitecture(info);
  showTraining(info);
  showWeights(info);
  document.getElementById("accuracy").textContent = "Scoring the 10,000 test digits…";
  document.getElementById("confusion").replaceChildren();
  document.getElementById("mistakes").replaceChildren();
  const test = await api(`/api/models/${encodeURIComponent(name)}/test`);
  if (picker.value !== name) return;
  showTest(test);
  document.body.dataset.ready = "true";
}

function showArchitecture(info) {
  document.getElementById("overview").textContent =
    `${info.name}: ${info.kind === "cnn" ? "a convolutional network" : "a multi-layer perceptron"}` +
    ` with ${info.parameters.toLocaleString("en")} parameters.`;
  document.querySelector("#layers tbody").replaceChildren(...info.layers.map((row) => {
    const tr = element("tr");
    const kind = row.type + (row.activation ? `, ${row.activation}` : "");
    tr.append(element("td", {}, kind), element("td", {}, row.output_shape.join("×")),
              element("td", {}, row.params.toLocaleString("en")));
    return tr;
  }));
}

function showTraining(info) {
  const parts = [];
  if (info.command) parts.push(`Trained with: ${info.command}`);
  if (info.training_seconds) parts.push(`in ${Math.round(info.training_seconds)} s`);
  if (info.temperature) parts.push(`confidence calibrated with temperature ${info.temperature.toFixed(2)}`);
  document.getElementById("training").textContent = parts.join("; ") || "No training record.";
  drawCurves(document.getElementById("curves"), info.history);
}

// Loss (left axis, from 0) and accuracy (right axis, up to 1) per epoch; validation dashed.
// Drawn at the width it is shown (at most 640 px), so its labels keep their size on a phone.
function drawCurves(canvas, history) {
  const panel = canvas.parentElement, padding = getComputedStyle(panel);
  const inside = panel.clientWidth - parseFloat(padding.paddingLeft) - parseFloat(padding.paddingRight);
  const width = Math.floor(Math.min(640, inside)), height = 300;
  const ratio = window.devicePixelRatio || 1;
  Object.assign(canvas, { width: width * ratio, height: height * ratio });
  canvas.style.width = `${width}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.font = "13px system-ui, sans-serif";
  const series = [["loss", "#dc2626", false], ["val_loss", "#dc2626", true],
                  ["accuracy", "#2563eb", false], ["val_accuracy", "#2563eb", true]]
    .filter(([key]) => history[key] && history[key].length);
  if (!series.length) { ctx.fillText("no training history in the model file", 20, 30); return; }
  const pad = { l: 50, r: 50, t: 12, b: 48 };
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  const epochs = Math.max(...series.map(([key]) => history[key].length));
  const lossTop = Math.max(...["loss", "val_loss"].flatMap((k) => history[k] || [0]));
  const accBottom = Math.min(...["accuracy", "val_accuracy"].flatMap((k) => history[k] || [1]));
  const x = (i) => pad.l + (epochs === 1 ? w / 2 : (i * w) / (epochs - 1));
  const scale = { loss: (v) => pad.t + h * (1 - v / (lossTop || 1)),
                  accuracy: (v) => pad.t + h * (1 - (v - accBottom) / (1 - accBottom || 1)) };
  ctx.strokeStyle = "#cbd5e1"; ctx.strokeRect(pad.l, pad.t, w, h);
  ctx.fillStyle = "#dc2626";
  ctx.fillText(lossTop.toFixed(2), 6, pad.t + 10); ctx.fillText("0", 6, pad.t + h);
  ctx.fillStyle = "#2563eb";
  ctx.fillText("1.00", width - pad.r + 6, pad.t + 10);
  ctx.fillText(accBottom.toFixed(2), width - pad.r + 6, pad.t + h);
  ctx.fillStyle = "#374151";
  for (let i = 0; i < epochs; i += Math.ceil(epochs / 10)) ctx.fillText(String(i + 1), x(i) - 4, pad.t + h + 16);
  for (const [key, colour, dashed] of series) {
    const y = scale[key.includes("accuracy") ? "accuracy" : "loss"];
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.beginPath();
    history[key].forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
  }
  ctx.setLineDash([]);
  const legend = "epoch — red: loss (left axis), blue: accuracy (right axis); dashed: validation";
  if (ctx.measureText(legend).width <= width - pad.l) ctx.fillText(legend, pad.l, height - 8);
  else {  // a phone: two lines
    ctx.fillText("epoch — red: loss (left axis),", 6, height - 22);
    ctx.fillText("blue: accuracy (right); dashed: validation", 6, height - 6);
  }
}

function showWeights(info) {
  const conv = info.kind === "cnn";
  document.getElementById("weights-hint").textContent = conv
    ? "Each of the first convolution's filters: blue weights respond to ink, red to its absence."
    : "What each first-layer neuron looks for in the 28×28 image: blue pixels excite it, red ones inhibit it.";
  document.getElementById("weights").replaceChildren(...info.first_layer.map((src, k) =>
    element("img", { src, alt: `${conv ? "filter" : "neuron"} ${k + 1}`, title: `${conv ? "filter" : "neuron"} ${k + 1}` })));
}

function showTest(test) {
  document.getElementById("accuracy").textContent =
    `Accuracy ${(100 * test.accuracy).toFixed(2)}% on ${test.samples.toLocaleString("en")} test digits.`;
  const matrix = test.confusion_matrix;
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
  document.getElementById("confusion").replaceChildren(head, ...rows);
  document.getElementById("mistakes").replaceChildren(...test.mistakes.map((m) => {
    const figure = element("figure");
    figure.append(element("img", { src: m.image, alt: `test digit ${m.index}` }),
                  element("figcaption", {}, `${m.label} → ${m.predicted} (${Math.round(100 * m.confidence)}%)`));
    return figure;
  }));
}

fillModelPicker(picker).then(() => showModel(picker.value))
  .catch((error) => { document.getElementById("overview").textContent = `Error: ${error.message}`; });
picker.addEventListener("change", () => showModel(picker.value).catch((error) => {
  document.getElementById("overview").textContent = `Error: ${error.message}`;
}));
