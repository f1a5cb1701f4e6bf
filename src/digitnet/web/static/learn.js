// The learn page: a training started with the form's settings (POST /api/train), followed live
// through its Server-Sent Events: curves, the first layer's weights, speed, then the result.
"use strict";

const form = document.getElementById("settings");
const stopButton = document.getElementById("stop");
const state = document.getElementById("state");
let training = null;  // the latest: {id, events: EventSource, lines, epochs, active}

form.optimizer.addEventListener("change", () => {
  document.getElementById("momentum-field").hidden = form.optimizer.value !== "momentum";
});

function settings() {
  const momentum = form.optimizer.value === "momentum";
  return {
    hidden: form.hidden.value.split(",").map((v) => Number(v.trim())),
    activation: form.activation.value,
    loss: form.loss.value,
    optimizer: momentum ? "sgd" : form.optimizer.value,
    lr: Number(form.lr.value),
    momentum: momentum ? Number(form.momentum.value) : 0,
    batch_size: Number(form.batch_size.value),
    epochs: Number(form.epochs.value),
    samples: Number(form.samples.value),
    seed: Number(form.seed.value),
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (training && training.active) return;
  const chosen = settings();
  try {
    const started = await api("/api/train", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(chosen) });
    follow(started, chosen);
  } catch (error) {
    state.textContent = `Not started: ${error.message}`;
  }
});

stopButton.addEventListener("click", async () => {
  if (!training || !training.active) return;
  stopButton.disabled = true;
  state.textContent = "Stopping after this step…";
  await api(`/api/train/${training.id}`, { method: "DELETE" }).catch((error) => {
    state.textContent = `Could not stop: ${error.message}`;
  });
});

function follow(started, chosen) {
  const lines = [["loss", false], ["accuracy", false], ["val_loss", true], ["val_accuracy", true]]
    .map(([key, dashed]) => ({ key, dashed, points: [] }));
  training = { id: started.id, lines, epochs: chosen.epochs, active: true,
               events: new EventSource(started.events) };
  form.querySelector("#train").disabled = true;
  stopButton.disabled = false;
  document.getElementById("outcome").hidden = true;
  document.getElementById("pictures").replaceChildren();
  redraw();
  state.textContent = `Starting ${started.model}…`;
  const on = (kind, handle) => training.events.addEventListener(kind, (e) => handle(JSON.parse(e.data)));
  on("queued", (d) => { state.textContent = `Waiting in line: ${d.position} of ${d.waiting}. It starts when the training before it ends.`; });
  on("started", (d) => {  // the first event after the line: a stream that reconnects replays all
    lines.forEach((line) => { line.points = []; });
    state.textContent = `Training ${d.model}…`;
  });
  on("progress", progress);
  on("epoch", (d) => {  // at the epochs reached: a training stopped mid-epoch is tested there
    const at = Math.min(d.epoch, training.reached ?? d.epoch);
    lines[2].points.push([at, d.val_loss]);
    lines[3].points.push([at, d.val_accuracy]);
    redraw();
  });
  on("done", finished);
  on("error", (d) => end(`Training failed: ${d.error}`));
  training.events.onerror = () => {  // the stream broke (not its end: that closes it first)
    if (training.active && training.events.readyState === EventSource.CLOSED) end("Lost the connection to the server.");
  };
}

let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const canvas = document.getElementById("curves");
    drawCurves(canvas, training.lines.filter((l) => l.points.length),
               { from: 0, to: training.epochs, empty: "The curves grow here as it trains." });
    canvas.dataset.points = String(training.lines.reduce((n, l) => n + l.points.length, 0));
  });
}

function progress(d) {
  const epochsDone = (d.step / d.steps) * d.epochs;
  training.lines[0].points.push([epochsDone, d.loss]);
  training.lines[1].points.push([epochsDone, d.accuracy]);
  training.reached = epochsDone;
  training.last = d;
  redraw();
  document.getElementById("speed").textContent = speed(d, "running");
  if (d.weights) paintWeights(d.weights);
}

// Where the training is (running), or where it ended (done, stopped): no time left then.
function speed(d, how) {
  const where = `epoch ${d.epoch} of ${d.epochs}, step ${d.step.toLocaleString("en")} of ` +
    `${d.steps.toLocaleString("en")}: loss ${d.loss.toFixed(3)}, accuracy ${(100 * d.accuracy).toFixed(1)}%`;
  const rate = `${Math.round(d.steps_per_second).toLocaleString("en")} steps a second`;
  if (how === "done") return `Ended at ${where} — ${rate}.`;
  if (how === "stopped") return `Stopped at ${where}.`;
  const left = d.seconds_left < 1 ? "under a second" : `${Math.round(d.seconds_left)} s`;
  return `${where[0].toUpperCase()}${where.slice(1)} — ${rate}, ${left} left.`;
}

// uint8 pictures, 128 for a zero weight: blue for positive, red for negative.
function paintWeights(weights) {
  const bytes = Uint8Array.from(atob(weights.pixels), (c) => c.charCodeAt(0));
  const holder = document.getElementById("pictures");
  while (holder.children.length < weights.neurons) {
    const n = holder.children.length + 1;
    holder.append(element("canvas", { width: 28, height: 28, class: "pixels", title: `neuron ${n}`,
                                      "aria-label": `neuron ${n}'s weights` }));
  }
  [...holder.children].forEach((canvas, k) => {
    const rows = Array.from({ length: 28 }, (_, r) =>
      Array.from({ length: 28 }, (_, c) => (bytes[k * 784 + r * 28 + c] - 128) / 127));
    paintSigned(canvas, rows);
  });
  holder.dataset.updates = String(Number(holder.dataset.updates || 0) + 1);
}

function finished(d) {
  if (training.last) document.getElementById("speed").textContent = speed(training.last, d.stopped ? "stopped" : "done");
  const why = d.why_stopped ? `: ${d.why_stopped}` : "";
  const stopped = d.stopped ? ` (stopped early${why}; it keeps the weights it had reached)` : "";
  end(`Done in ${d.seconds.toFixed(1)} s${stopped}.`);
  document.getElementById("verdict-line").textContent =
    `${d.model}: ${(100 * d.test_accuracy).toFixed(2)}% of the 10,000 test digits right.`;
  document.getElementById("try").href = `/?model=${encodeURIComponent(d.model)}`;
  document.getElementById("download").href = d.download;
  document.getElementById("download").setAttribute("download", `${d.model}.npz`);
  showConfusion(document.getElementById("confusion"), d.confusion);
  document.getElementById("outcome").hidden = false;
  document.body.dataset.trained = d.model;
}

function end(message) {
  const line = document.getElementById("speed");
  if (training.last && line.textContent.endsWith(" left.")) line.textContent = speed(training.last, "stopped");
  training.events.close();
  training.active = false;
  state.textContent = message;
  form.querySelector("#train").disabled = false;
  stopButton.disabled = true;
}

drawCurves(document.getElementById("curves"), [], { from: 0, to: 1, empty: "Press Train: the curves grow here." });
document.body.dataset.ready = "true";
