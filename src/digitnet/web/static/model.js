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

// How the model was trained, in one line: the command (its --out as the file's name, not
// the directory it was written to on the trainer's machine), the time, the calibration.
function trainingLine(info) {
  const parts = [];
  if (info.command) parts.push(`Trained with: ${info.command.replace(/(--out\s+)(\S+)/, (_, flag, path) => flag + path.split("/").pop())}`);
  const s = info.training_seconds;
  if (s) parts.push(`in ${s < 10 ? s.toFixed(1) : Math.round(s)} s`);  // a page's training: "0.4 s", not "0 s"
  if (info.temperature) parts.push(`confidence calibrated with temperature ${info.temperature.toFixed(2)}`);
  return parts.join("; ") || "No training record.";
}

function showTraining(info) {
  document.getElementById("training").textContent = trainingLine(info);
  const history = info.history || {};
  const lines = [["loss", false], ["val_loss", true], ["accuracy", false], ["val_accuracy", true]]
    .filter(([key]) => history[key] && history[key].length)
    .map(([key, dashed]) => ({ key, dashed, points: history[key].map((v, i) => [i + 1, v]) }));
  drawCurves(document.getElementById("curves"), lines, { from: 1, to: Math.max(1, ...lines.map((l) => l.points.length)) });
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
  showConfusion(document.getElementById("confusion"), test.confusion_matrix);
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
