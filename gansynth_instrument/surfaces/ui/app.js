// The browser control surface of gansynth-instrument (served by `play --ui`).
// Every control sends what a MIDI controller would (notes, CCs, program changes) over the
// WebSocket; the server pushes the instrument's state back, so a knob turned on a MIDI keyboard
// moves here too. Elements that change record Date.now() in data-updated-at / data-pressed-at.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const VELOCITY = 100;
const PIANO_LOW = 48;
const PIANO_HIGH = 84;
const LATENT_RANGE = 4;
let ws = null;
let config = null;
let state = null;
let latent = [];
let selected = null;
let keyboardBase = 60;
const typed = new Map(); // computer key → pitch it started

// -- connection -----------------------------------------------------------------------------
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws.onopen = () => setConnection(true);
  ws.onclose = () => { setConnection(false); setTimeout(connect, 1000); };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const handler = handlers[message.type];
    if (handler) handler(message);
  };
}

function setConnection(up) {
  const el = $("connection");
  el.textContent = up ? "connected" : "disconnected";
  el.className = up ? "on" : "off";
}

function send(action) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(action));
}

const channel = () => (state ? state.channel : 0);
const controlChange = (cc, value) => send({ midi: [0xb0 | channel(), cc, value] });
const noteOn = (pitch) => send({ midi: [0x90 | channel(), pitch, VELOCITY] });
const noteOff = (pitch) => send({ midi: [0x80 | channel(), pitch, 0] });

function say(text, error = false) {
  const el = $("message");
  el.textContent = text;
  el.className = error ? "error" : "";
}

// -- messages from the instrument -----------------------------------------------------------
const handlers = {
  config(message) {
    config = message;
    buildKnobs();
    buildPad();
    $("morph-row").hidden = config.morph_cc === null;
    $("expected-norm").textContent = config.expected_norm.toFixed(2);
    buildPiano();
  },
  presets(message) { showPresets(message.list); },
  latent(message) {
    latent = message.values.slice();
    drawLatent();
  },
  state(message) { showState(message); },
  spectrogram(message) { drawSpectrogram(message); },
  error(message) { say(message.message, true); },
};

// -- controls -------------------------------------------------------------------------------
function slider(id, label, cc) {
  const row = document.createElement("label");
  row.className = "row";
  row.textContent = label;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: 0, max: 127, value: 64, id });
  const out = document.createElement("output");
  out.id = `${id}-value`;
  out.textContent = "64";
  input.addEventListener("pointerdown", () => { input.dataset.busy = "1"; });
  input.addEventListener("pointerup", () => { delete input.dataset.busy; });
  input.addEventListener("input", () => {
    out.textContent = input.value;
    controlChange(cc, Number(input.value));
  });
  row.append(input, out);
  return row;
}

function buildKnobs() {
  const box = $("knobs");
  box.replaceChildren();
  config.knobs.forEach((cc, k) => {
    const does = config.knob_labels[k];  // what + does, measured on the model ("" if nothing single)
    box.append(slider(`knob-${k}`, does ? `knob ${k + 1}: ${does}` : `knob ${k + 1}`, cc));
  });
  if (!config.knobs.length) box.textContent = "No timbre knobs (--no-knobs).";
}

$("morph").addEventListener("pointerdown", () => { $("morph").dataset.busy = "1"; });
$("morph").addEventListener("pointerup", () => { delete $("morph").dataset.busy; });
$("morph").addEventListener("input", () => {
  $("morph-value").textContent = $("morph").value;
  controlChange(config.morph_cc, Number($("morph").value));
});

function setControl(input, value) {
  if (value === null || input.dataset.busy || Number(input.value) === value) return;
  input.value = value;
  input.dataset.updatedAt = String(Date.now());
  const out = $(`${input.id}-value`);
  if (out) out.textContent = value;
}

$("random").addEventListener("click", () => {
  controlChange(config.buttons.random, 127);
  controlChange(config.buttons.random, 0);
});

// -- XY pad ---------------------------------------------------------------------------------
const pad = $("pad");
const padSent = [0, 0];

function buildPad() {
  const has = config.pad.cc.length === 2;
  pad.hidden = !has;
  $("pad-none").hidden = has;
  config.pad.corners.forEach((name, i) => { $(`corner-${i}`).textContent = name; });
}

function placeDot(x, y) {
  $("pad-dot").style.left = `${(100 * x) / 127}%`;
  $("pad-dot").style.top = `${100 - (100 * y) / 127}%`;
}

function padMove(event) {
  const box = pad.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  const x = Math.round(127 * clamp((event.clientX - box.left) / box.width));
  const y = Math.round(127 * clamp(1 - (event.clientY - box.top) / box.height));
  placeDot(x, y);
  [x, y].forEach((value, axis) => {
    if (value !== padSent[axis]) {
      padSent[axis] = value;
      controlChange(config.pad.cc[axis], value);
    }
  });
}

pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  pad.dataset.busy = "1";
  padMove(event);
});
pad.addEventListener("pointermove", (event) => { if (pad.dataset.busy) padMove(event); });
pad.addEventListener("pointerup", () => { delete pad.dataset.busy; });

// -- presets --------------------------------------------------------------------------------
function showPresets(list) {
  const ul = $("presets");
  ul.replaceChildren();
  for (const preset of list) {
    const li = document.createElement("li");
    li.dataset.name = preset.name;
    li.title = preset.description || preset.name;
    li.textContent = preset.name + " ";
    if (preset.program !== null) {
      const program = document.createElement("span");
      program.className = "program";
      program.textContent = preset.bank ? `${preset.bank}:${preset.program}` : `${preset.program}`;
      li.append(program);
    }
    if (preset.yours) li.classList.add("yours");
    if (preset.name === selected) li.classList.add("selected");
    li.addEventListener("click", () => {
      selected = preset.name;
      for (const other of ul.children) other.classList.toggle("selected", other === li);
      $("preset-name").value = preset.name;
      send({ preset: preset.name });
    });
    ul.append(li);
  }
  markPlaying();
}

function markPlaying() {
  for (const li of $("presets").children) {
    li.classList.toggle("playing", state !== null && li.dataset.name === state.timbre);
  }
}

async function presetChange(path, body) {
  const response = await fetch(`${path}?token=${encodeURIComponent(token)}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({ error: response.statusText }));
  if (answer.error) say(answer.error, true);
  else say(`saved ${answer.saved}`);
  if (!answer.error) selected = answer.saved;
}

$("save").addEventListener("click", () => presetChange("presets/save", { name: $("preset-name").value }));
$("rename").addEventListener("click", () => {
  if (selected === null) return say("click one of your presets first", true);
  presetChange("presets/rename", { name: selected, new: $("preset-name").value });
});

// -- the latent -----------------------------------------------------------------------------
const latentCanvas = $("latent");
let lastDrawn = null;

function drawLatent() {
  const ctx = latentCanvas.getContext("2d");
  const { width, height } = latentCanvas;
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = "#333";
  ctx.fillRect(0, height / 2, width, 1);
  const bar = width / Math.max(1, latent.length);
  ctx.fillStyle = "#f0a030";
  latent.forEach((value, i) => {
    const v = Math.max(-LATENT_RANGE, Math.min(LATENT_RANGE, value));
    const h = (v / LATENT_RANGE) * (height / 2);
    ctx.fillRect(i * bar, height / 2 - Math.max(h, 0), Math.max(1, bar - 1), Math.abs(h));
  });
  const norm = Math.sqrt(latent.reduce((sum, v) => sum + v * v, 0));
  $("norm").textContent = norm.toFixed(2);
}

function drawAt(event) {
  const box = latentCanvas.getBoundingClientRect();
  const i = Math.floor(((event.clientX - box.left) / box.width) * latent.length);
  const value = LATENT_RANGE * (1 - (2 * (event.clientY - box.top)) / box.height);
  const index = Math.min(latent.length - 1, Math.max(0, i));
  const from = lastDrawn === null ? index : lastDrawn;
  const step = index >= from ? 1 : -1;
  for (let j = from; j !== index + step; j += step) latent[j] = value;
  lastDrawn = index;
  drawLatent();
}

latentCanvas.addEventListener("pointerdown", (event) => {
  latentCanvas.setPointerCapture(event.pointerId);
  lastDrawn = null;
  drawAt(event);
});
latentCanvas.addEventListener("pointermove", (event) => { if (lastDrawn !== null) drawAt(event); });
latentCanvas.addEventListener("pointerup", () => {
  lastDrawn = null;
  send({ latent });
});
$("rescale").addEventListener("click", () => send({ latent, rescale: true }));

// -- meters and state -----------------------------------------------------------------------
function showState(message) {
  state = message;
  $("channel").textContent = state.channel + 1;
  $("timbre").textContent = state.timbre;
  state.knobs.forEach((value, k) => setControl($(`knob-${k}`), value));
  if (state.morph !== null) setControl($("morph"), state.morph);
  if (state.pad.length === 2 && !pad.dataset.busy) {
    const [x, y] = state.pad;
    if (pad.dataset.x !== String(x) || pad.dataset.y !== String(y)) {
      Object.assign(pad.dataset, { x, y, updatedAt: String(Date.now()) });
      placeDot(x, y);
    }
  }
  $("voices").textContent = `${state.voices} / ${state.polyphony}`;
  $("xruns").textContent = state.xruns;
  const ms = (value) => (value === null ? "-" : `${value.toFixed(1)} ms`); // as the status line
  $("note-to-sound").textContent = ms(state.note_to_sound_ms);
  $("output-latency").textContent = ms(state.output_latency_ms);
  $("callback").textContent = `${state.callback_median} % (max ${state.callback_max} %)`;
  $("cpu").textContent = `${state.cpu} %`;
  showCache(state.cache, state.timbre);
  showMpe(state.mpe);
  markPlaying();
}

// The MPE zones (channels counted 1-16) and each sounding member note's slide and pressure.
function showMpe(mpe) {
  const zones = Object.entries(mpe.zones).map(
    ([name, z]) => `${name}: manager ${z.manager}, members ${z.members[0]}–${z.members.at(-1)}`,
  );
  $("mpe-zone").textContent = zones.length
    ? `${zones.join("; ")} · slide → ${mpe.slide}, pressure → ${mpe.pressure}`
    : "no zone";
  const ul = $("mpe-notes");
  ul.replaceChildren();
  for (const n of mpe.notes) {
    const li = document.createElement("li");
    Object.assign(li.dataset, { channel: n.channel, pitch: n.pitch, slide: n.slide, pressure: n.pressure });
    const label = document.createElement("span");
    label.textContent = `ch ${n.channel} · ${n.pitch}${n.bend ? ` ${n.bend > 0 ? "+" : ""}${n.bend}` : ""}`;
    const bars = [["slide", n.slide], ["pressure", n.pressure]].map(([what, value]) => {
      const meter = document.createElement("meter");
      Object.assign(meter, { min: 0, max: 127, value, title: `${what} ${value}` });
      return meter;
    });
    li.append(label, ...bars);
    ul.append(li);
  }
}

function showCache(fill, current) {
  const names = Object.keys(fill).sort((a, b) => (b === current) - (a === current) || a.localeCompare(b));
  const ul = $("cache");
  ul.replaceChildren();
  for (const name of names.slice(0, 12)) {
    const [ready, requested] = fill[name];
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = name;
    const meter = document.createElement("meter");
    Object.assign(meter, { min: 0, max: requested, value: ready });
    const count = document.createElement("span");
    count.textContent = `${ready}/${requested}`;
    li.append(label, meter, count);
    ul.append(li);
  }
}

function drawSpectrogram(message) {
  const bytes = Uint8Array.from(atob(message.data), (c) => c.charCodeAt(0));
  const image = new ImageData(message.cols, message.rows);
  for (let i = 0; i < bytes.length; i += 1) {
    const t = bytes[i] / 255;
    image.data[4 * i] = 255 * Math.min(1, 1.6 * t);
    image.data[4 * i + 1] = 255 * t * t;
    image.data[4 * i + 2] = 255 * (0.35 * Math.sin(Math.PI * t) + 0.6 * t ** 4);
    image.data[4 * i + 3] = 255;
  }
  const off = document.createElement("canvas");
  off.width = message.cols;
  off.height = message.rows;
  off.getContext("2d").putImageData(image, 0, 0);
  const canvas = $("spectrogram");
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  canvas.dataset.updatedAt = String(Date.now());
  const seconds = message.seconds.toFixed(1);
  $("spectrogram-label").textContent = `${message.timbre}, MIDI ${message.pitch}, 0–${seconds} s, 0–${message.top_hz / 1000} kHz`;
}

// -- piano ----------------------------------------------------------------------------------
const BLACK = new Set([1, 3, 6, 8, 10]);

function buildPiano() {
  const piano = $("piano");
  piano.replaceChildren();
  const whites = [];
  for (let p = PIANO_LOW; p <= PIANO_HIGH; p += 1) if (!BLACK.has(p % 12)) whites.push(p);
  const width = 100 / whites.length;
  for (let p = PIANO_LOW; p <= PIANO_HIGH; p += 1) {
    const key = document.createElement("div");
    const black = BLACK.has(p % 12);
    key.className = `key ${black ? "black" : "white"}`;
    key.id = `key-${p}`;
    key.dataset.pitch = p;
    const left = whites.indexOf(black ? p - 1 : p) * width + (black ? width * 0.68 : 0);
    Object.assign(key.style, { left: `${left}%`, width: `${black ? width * 0.64 : width}%` });
    if (p % 12 === 0) {
      const label = document.createElement("span");
      label.textContent = `C${p / 12 - 1}`;
      key.append(label);
    }
    key.addEventListener("pointerdown", (event) => {
      key.setPointerCapture(event.pointerId);
      press(key, p);
    });
    key.addEventListener("pointerup", () => release(key, p));
    key.addEventListener("pointercancel", () => release(key, p));
    piano.append(key);
  }
}

function press(key, pitch) {
  key.dataset.pressedAt = String(Date.now());
  noteOn(pitch);
  if (key) key.classList.add("down");
}

function release(key, pitch) {
  if (key && !key.classList.contains("down")) return;
  noteOff(pitch);
  if (key) key.classList.remove("down");
}

document.addEventListener("keydown", (event) => {
  if (!config || event.repeat || event.target.tagName === "INPUT") return;
  const char = event.key.toLowerCase();
  if (char === "z" || char === "x") {
    keyboardBase = Math.min(96, Math.max(24, keyboardBase + (char === "x" ? 12 : -12)));
    return;
  }
  if (char in config.key_buttons) {
    controlChange(config.key_buttons[char], 127);
    controlChange(config.key_buttons[char], 0);
    return;
  }
  if (!(char in config.keys) || typed.has(char)) return;
  const pitch = keyboardBase + config.keys[char];
  typed.set(char, pitch);
  const key = $(`key-${pitch}`) || document.createElement("div");
  press(key, pitch);
});

document.addEventListener("keyup", (event) => {
  const char = event.key.toLowerCase();
  if (!typed.has(char)) return;
  const pitch = typed.get(char);
  typed.delete(char);
  release($(`key-${pitch}`) || null, pitch);
});

connect();
