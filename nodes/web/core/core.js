// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// The browser core: a hypha-rpc client of the bridge that shows the
// cluster's plugins, runs their functions, renders what they return, and
// is the UI of every plugin (alert, prompt, confirm, show_*, windows).

import { connectToServer } from "./hypha-rpc-websocket.min.mjs";
import { windowManager } from "./windows.js";

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const x = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") x.className = v;
    else if (k.startsWith("on")) x.addEventListener(k.slice(2), v);
    else x.setAttribute(k, v);
  }
  for (const c of children) x.append(c);
  return x;
}

// -- values -------------------------------------------------------------------

const typedArrays = {
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, float32: Float32Array,
  float64: Float64Array,
};

function isNdarray(x) {
  return x && typeof x === "object" && x._rtype === "ndarray" && x._rshape;
}

/// A 2-D (grey) or 3-D (RGB/RGBA) ndarray as a canvas; other shapes are
/// summarised.
function ndarrayCanvas(a) {
  const shape = a._rshape.map(Number);
  const channels = shape.length === 3 ? shape[2] : 1;
  if (shape.length < 2 || shape.length > 3 || ![1, 3, 4].includes(channels)) return null;
  const [h, w] = shape;
  const Kind = typedArrays[a._rdtype];
  if (!Kind) return null;
  const bytes = a._rvalue;
  const data = new Kind(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let lo = 0;
  let hi = 255;
  if (a._rdtype !== "uint8") {
    lo = Infinity; hi = -Infinity;
    for (const v of data) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!(hi > lo)) { hi = lo + 1; }
  }
  const canvas = el("canvas", { class: "ndarray", width: w, height: h,
                                "data-shape": shape.join("x"), "data-dtype": a._rdtype });
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; ++i) {
    for (let c = 0; c < 3; ++c) {
      const v = data[i * channels + (channels === 1 ? 0 : c)];
      img.data[i * 4 + c] = Math.round(((v - lo) / (hi - lo)) * 255);
    }
    img.data[i * 4 + 3] = channels === 4 ? data[i * 4 + 3] : 255;
  }
  ctx.putImageData(img, 0, 0);
  // Small images are scaled up to be seen.
  canvas.style.width = `${Math.max(w, Math.min(256, w * 8))}px`;
  return canvas;
}

function describe(x) {
  return JSON.stringify(x, (key, v) => {
    if (typeof v === "function") return `ƒ ${v.__name__ || v.name || "function"}`;
    if (isNdarray(v)) return `ndarray ${v._rdtype} [${v._rshape.join(", ")}]`;
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length}) [${Array.from(v.slice(0, 8)).join(", ")}${v.length > 8 ? ", …" : ""}]`;
    if (v instanceof ArrayBuffer) return `bytes(${v.byteLength})`;
    return v;
  }, 2);
}

function render(x) {
  const out = el("div", { class: "result" });
  const arrays = [];
  const walk = (v, depth) => {
    if (depth > 4 || !v || typeof v !== "object") return;
    if (isNdarray(v)) { arrays.push(v); return; }
    for (const k of Object.keys(v)) walk(v[k], depth + 1);
  };
  walk(x, 0);
  out.append(describe(x) ?? "null");
  for (const a of arrays) {
    const c = ndarrayCanvas(a);
    if (c) out.append(c);
  }
  return out;
}

// -- ImJoy's `ui` forms ---------------------------------------------------------

/// Parses one field of an ImJoy `ui` string, written as a JavaScript object
/// literal (`{id: 'sigma', type: 'number', min: 0, placeholder: 2}`), without
/// evaluating it: keys bare or quoted; values strings, numbers, booleans,
/// null, or lists of those.
function parseField(text) {
  let i = 0;
  const fail = (why) => { throw new Error(`ui: ${why} in ${text}`); };
  const space = () => { while (i < text.length && /\s/.test(text[i])) ++i; };
  const value = () => {
    space();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail("an unclosed string");
      const v = text.slice(i + 1, end);
      i = end + 1;
      return v;
    }
    if (c === "[") {
      ++i;
      const out = [];
      for (;;) {
        space();
        if (text[i] === "]") { ++i; return out; }
        out.push(value());
        space();
        if (text[i] === ",") ++i;
        else if (text[i] !== "]") fail("a list without ]");
      }
    }
    const m = /^[^,}\]\s]+/.exec(text.slice(i));
    if (!m) fail("a missing value");
    i += m[0].length;
    if (m[0] === "true") return true;
    if (m[0] === "false") return false;
    if (m[0] === "null") return null;
    const n = Number(m[0]);
    return Number.isNaN(n) ? m[0] : n;
  };
  const out = {};
  space();
  if (text[i] !== "{") fail("no {");
  ++i;
  for (;;) {
    space();
    if (text[i] === "}") return out;
    const key = /^(['"]?)([A-Za-z_$][\w$]*)\1/.exec(text.slice(i));
    if (!key) fail("a bad key");
    i += key[0].length;
    space();
    if (text[i] !== ":") fail("a key without :");
    ++i;
    out[key[2]] = value();
    space();
    if (text[i] === ",") ++i;
    else if (text[i] !== "}") fail("a missing , or }");
  }
}

/// The pieces of a `ui` string: text, and fields between braces.
function parseUi(ui) {
  const parts = [];
  const text = Array.isArray(ui) ? ui.join("\n") : String(ui);
  let at = 0;
  for (const m of text.matchAll(/\{[^{}]*\}/g)) {
    if (m.index > at) parts.push(text.slice(at, m.index));
    parts.push(parseField(m[0]));
    at = m.index + m[0].length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

/// ImJoy's run form: one input per `ui` field; `run({config, data})`.
function runCard(svc) {
  let parts;
  try {
    parts = parseUi(svc.ui);
  } catch (err) {
    return el("div", { class: "fn run-ui" }, el("h3", {}, "run"),
              el("p", { class: "result error" }, err.message));
  }
  const fields = [];
  const body = parts.map((p) => {
    if (typeof p === "string") return el("span", { class: "ui-text" }, p);
    const attrs = { name: p.id, "aria-label": p.id, "data-ui": p.id };
    let input;
    if (p.type === "choose" && Array.isArray(p.options)) {
      input = el("select", attrs, ...p.options.map((o) => el("option", { value: String(o) }, String(o))));
      if (p.placeholder !== undefined) input.value = String(p.placeholder);
    } else {
      const type = p.type === "number" ? "number" : p.type === "boolean" ? "checkbox" : "text";
      input = el("input", { ...attrs, type });
      for (const k of ["min", "max", "step"]) if (p[k] !== undefined) input.setAttribute(k, p[k]);
      if (p.placeholder !== undefined) {
        if (type === "checkbox") input.checked = Boolean(p.placeholder);
        else input.value = String(p.placeholder);
      }
    }
    fields.push({ field: p, input });
    return input;
  });
  const out = el("div", { class: "output" });
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const config = {};
      for (const { field, input } of fields) {
        if (input.type === "checkbox") config[field.id] = input.checked;
        else if (input.type === "number") config[field.id] = input.value === "" ? null : Number(input.value);
        else config[field.id] = input.value;
      }
      out.replaceChildren(el("div", { class: "result muted" }, "running…"));
      try {
        out.replaceChildren(render(await svc.run({ config, data: null })));
      } catch (err) {
        out.replaceChildren(el("div", { class: "result error" }, String(err.message ?? err)));
      }
    },
  }, ...body, el("button", { type: "submit" }, "Run"));
  return el("div", { class: "fn run-ui", "data-fn": "run" }, el("h3", {}, "run"), form, out);
}

// -- the UI of plugins --------------------------------------------------------

let dialogs = Promise.resolve();

/// One dialog at a time: alert, confirm or prompt.
function ask(kind, plugin, text, initial) {
  const run = () => new Promise((resolve) => {
    const dialog = $("#dialog");
    $("#dialog-plugin").textContent = plugin ? `${plugin} asks:` : "";
    $("#dialog-text").textContent = text ?? "";
    const input = $("#dialog-input");
    input.hidden = kind !== "prompt";
    input.value = initial ?? "";
    $("#dialog-cancel").hidden = kind === "alert";
    dialog.dataset.kind = kind;
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "ok";
      if (kind === "prompt") resolve(ok ? input.value : null);
      else if (kind === "confirm") resolve(ok);
      else resolve(null);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    if (kind === "prompt") input.focus();
  });
  const next = dialogs.then(run);
  dialogs = next.catch(() => {});
  return next;
}

function message(plugin, text, level = "info") {
  const item = el("li", { "data-level": level, "data-plugin": plugin || "joy" },
                  el("span", { class: "from" }, plugin || "joy"), String(text));
  $("#messages").prepend(item);
  // The list keeps the latest few hundred lines.
  while ($("#messages").children.length > 500) $("#messages").lastChild.remove();
}

function text(x) {
  if (x === undefined || x === null) return "";
  if (typeof x === "object") return x.content ?? x.text ?? describe(x);
  return String(x);
}

async function show(op, plugin, ...args) {
  switch (op) {
    case "alert":
      return ask("alert", plugin, text(args[0]));
    case "prompt":
      return ask("prompt", plugin, text(args[0]), args[1] === undefined ? "" : String(args[1]));
    case "confirm":
      return ask("confirm", plugin, text(args[0]));
    case "show_message":
      message(plugin, text(args[0]));
      return null;
    case "show_status":
      $("#status-line").textContent = `${plugin}: ${text(args[0])}`;
      return null;
    case "show_progress":
    case "progress": {
      // One bar per plugin; ImJoy takes 0..1 or 0..100.
      let p = Number(args[0]);
      if (p <= 1) p *= 100;
      const name = plugin || "joy";
      let bar = [...$("#progress").children].find((x) => x.dataset.plugin === name);
      if (!bar) {
        bar = el("div", { class: "bar", "data-plugin": name },
                 el("span", {}, name), el("progress", { max: "100", value: "0" }));
        $("#progress").append(bar);
      }
      const value = Math.max(0, Math.min(100, p || 0));
      bar.querySelector("progress").value = value;
      bar.dataset.value = String(Math.round(value));
      return null;
    }
    case "create_window":
      return windows.createWindow(args[0], plugin);
    default:
      message(plugin, `${op}: ${text(args[0])}`);
      return null;
  }
}

// -- plugins ------------------------------------------------------------------

let api = null;
let windows = null;
let selected = null;

/// The log of a plugin (`public/node-<id>:logs` of the node it runs on),
/// refreshed every two seconds while it is open.
function logPanel(plugin, node) {
  const pre = el("pre", { class: "log", "data-log": plugin });
  const panel = el("details", { class: "logs" }, el("summary", {}, "Log"), pre);
  let timer = null;
  const load = async () => {
    if (!panel.isConnected) { clearInterval(timer); return; }
    try {
      const logs = await api.getService(`public/node-${node}:logs`);
      const text = await logs.tail(plugin, 200);
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = text || "(nothing logged yet)";
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    } catch (err) {
      pre.textContent = `cannot read the log: ${err.message ?? err}`;
    }
  };
  panel.addEventListener("toggle", () => {
    clearInterval(timer);
    if (panel.open) { load(); timer = setInterval(load, 2000); }
  });
  return panel;
}

async function openService(id, title, node) {
  selected = id;
  for (const b of document.querySelectorAll("[data-service]"))
    b.setAttribute("aria-current", String(b.dataset.service === id));
  const pane = $("#plugin");
  pane.replaceChildren(el("h2", {}, title), el("p", { class: "muted" }, "Loading…"));
  let svc;
  try {
    svc = await api.getService(id);
  } catch (err) {
    pane.replaceChildren(el("h2", {}, title), el("p", { class: "result error" }, String(err)));
    return;
  }
  const withUi = (typeof svc.ui === "string" || Array.isArray(svc.ui)) && typeof svc.run === "function";
  const fns = Object.keys(svc).filter((k) => typeof svc[k] === "function" && !(withUi && k === "run"));
  const cards = fns.map((name) => {
    // With a schema (plugins name their parameters), one field per
    // parameter; without, the arguments as one JSON list.
    const schema = svc[name].__schema__?.function?.parameters?.properties;
    const params = schema ? Object.keys(schema) : [];
    const args = el("input", { name: "args", value: "[]", "aria-label": `arguments of ${name}`,
                               title: "Arguments as a JSON list" });
    const fields = params.map((p) => el("input", {
      name: p, placeholder: p, "aria-label": p, title: `${p} (JSON, or plain text)`,
    }));
    const out = el("div", { class: "output" });
    const form = el("form", {
      onsubmit: async (ev) => {
        ev.preventDefault();
        out.replaceChildren(el("div", { class: "result muted" }, "running…"));
        let parsed;
        try {
          if (fields.length) {
            // A field that is not JSON is taken as text.
            parsed = fields.map((f) => {
              if (f.value === "") return null;
              try { return JSON.parse(f.value); } catch { return f.value; }
            });
          } else {
            parsed = JSON.parse(args.value || "[]");
            if (!Array.isArray(parsed)) parsed = [parsed];
          }
        } catch (err) {
          out.replaceChildren(el("div", { class: "result error" }, `Arguments must be JSON: ${err.message}`));
          return;
        }
        try {
          const result = await svc[name](...parsed);
          out.replaceChildren(render(result));
        } catch (err) {
          out.replaceChildren(el("div", { class: "result error" }, String(err.message ?? err)));
        }
      },
    }, ...(fields.length ? fields : [args]), el("button", { type: "submit" }, "Run"));
    return el("div", { class: "fn", "data-fn": name }, el("h3", {}, name), form, out);
  });
  const [, rest] = id.split("/");
  const [client, sid] = rest.split(":");
  const log = id.startsWith("public/") && sid === "default" && node ? [logPanel(client, node)] : [];
  const about = typeof svc.description === "string" ? [el("p", {}, svc.description)] : [];
  const run = withUi ? [runCard(svc)] : [];
  pane.replaceChildren(el("h2", {}, title), el("p", { class: "muted" }, id), ...about, ...log, ...run, ...cards);
}

function nodeOf(info) {
  return info.config?.node || "this node";
}

async function refresh() {
  if (!api) return;
  let natives = [];
  let mine = [];
  try {
    natives = await api.listServices("public");
    mine = await api.listServices();
  } catch (err) {
    return;
  }
  const byNode = new Map();
  for (const s of natives) {
    if (s.type === "joy-node") continue; // the node's own services
    if (!byNode.has(nodeOf(s))) byNode.set(nodeOf(s), []);
    byNode.get(nodeOf(s)).push(s);
  }
  const nodes = [...byNode.keys()].sort().map((node) => {
    const items = byNode.get(node).sort((a, b) => a.id.localeCompare(b.id)).map((s) => {
      const [, rest] = s.id.split("/");
      const [plugin, sid] = rest.split(":");
      const label = sid === "default" ? plugin : `${plugin}:${sid}`;
      if (s.type === "window")
        return el("button", {
          "data-window-plugin": plugin, class: "window-plugin", title: "Open a window",
          onclick: () => windows.createWindow({ type: plugin }, "you")
            .catch((err) => message(plugin, err.message ?? err, "error")),
        }, `▢ ${label}`);
      return el("button", {
        "data-service": s.id, "data-plugin": sid === "default" ? plugin : "",
        "aria-current": String(s.id === selected),
        onclick: () => openService(s.id, label, s.config?.node),
      }, label);
    });
    return el("div", { class: "node", "data-node": node },
              el("div", { class: "node-id", title: node }, `node ${node.slice(0, 12)}`), ...items);
  });
  $("#nodes").replaceChildren(...(nodes.length ? nodes : [el("p", { class: "muted" }, "No plugins yet: `joy install` one.")]));
  const clients = mine.filter((s) => !s.id.endsWith(":built-in") && s.type !== "joy-ui")
    .map((s) => el("li", {}, el("button", { "data-service": s.id, onclick: () => openService(s.id, s.id) }, s.id)));
  $("#client-services").replaceChildren(...clients);
}

async function main() {
  const state = $("#connection");
  // A token from `joy token` arrives in the URL once; it is kept for this
  // tab only and taken out of the address bar and the history.
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem("joy-token", params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
  }
  const token = sessionStorage.getItem("joy-token") || undefined;
  try {
    api = await connectToServer({
      server_url: location.origin,
      client_id: `joy-core-${Math.random().toString(36).slice(2, 10)}`,
      token,
    });
  } catch (err) {
    state.dataset.state = "disconnected";
    state.textContent = `cannot connect: ${err.message ?? err}`;
    return;
  }
  state.dataset.state = "connected";
  state.textContent = "connected";
  $("#identity").textContent = `${api.config.workspace}`;
  windows = windowManager({ container: $("#windows"), hypha: api, show, log: message });
  try {
    await api.registerService({
      id: "joy-ui",
      type: "joy-ui",
      name: "Joy browser core",
      description: "Shows plugins' dialogs, messages and progress",
      // Plugins reach it as the cluster's UI (from workspace public); no
      // other workspace may call it.
      config: { visibility: "protected", authorized_workspaces: ["public"] },
      show,
    });
  } catch (err) {
    // Only an admin is the cluster's UI; this page still runs plugins.
    message("joy", `This page does not answer plugins' questions: ${err.message ?? err}`, "error");
    $("#identity").textContent += " (not the cluster's UI)";
  }
  document.body.dataset.ready = "true";
  await refresh();
  setInterval(refresh, 2000);
}

main();
