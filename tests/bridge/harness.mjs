// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// Starts real Joy nodes for the bridge's Node suites and hands out real npm
// `hypha-rpc` clients. Environment (set by CTest): JOY_BIN (the programs),
// JOY_EXAMPLES (built example plugins), JOY_NODE_MODULES (npm packages).

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";

const modules = process.env.JOY_NODE_MODULES;
if (!modules) throw new Error("JOY_NODE_MODULES is not set (run through ctest)");
export const require = createRequire(path.join(modules, "joy-tests.js"));
export const WebSocket = require("ws");
// hypha-rpc reads the global WebSocket (Node 20 has none).
globalThis.WebSocket = WebSocket;
export const { hyphaWebsocketClient } = require("hypha-rpc");

const bin = process.env.JOY_BIN;
const examples = process.env.JOY_EXAMPLES;

/// Sweeps homes a crashed run left behind (their daemons die with `joy stop`).
function sweep() {
  for (const name of readdirSync("/tmp")) {
    if (!name.startsWith("joy-bridge-test-")) continue;
    const home = path.join("/tmp", name);
    try {
      const pid = Number(readFileSync(path.join(home, "joyd.lock"), "utf8"));
      if (pid > 0) process.kill(pid, 0);
      continue; // still running: another suite's
    } catch {
      rmSync(home, { recursive: true, force: true });
    }
  }
}

export function joy(home, ...args) {
  return execFileSync(path.join(bin, "joy"), args, {
    env: { ...process.env, JOY_HOME: home, JOY_LOG: "info" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export function status(home) {
  return JSON.parse(joy(home, "status", "--json"));
}

/// A port free now (for a bridge that must come back on the same one).
export function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/// A node: `opts.bridge` serves clients, `opts.join` joins a head.
export class node {
  constructor(opts = {}) {
    this.opts = opts;
    this.home = opts.home || mkdtempSync("/tmp/joy-bridge-test-");
  }

  start() {
    const args = ["start", "--listen", "127.0.0.1:0", "--tls", "off",
                  "--sandbox", "none"];
    if (this.opts.bridge) args.push("--bridge", this.opts.bridge);
    if (this.opts.join) {
      args.push("--address", this.opts.join.listen,
                "--token-file", path.join(this.opts.join.home, "cluster.token"));
    }
    joy(this.home, ...args);
    const s = status(this.home);
    this.id = s.node_id;
    this.listen = s.listen;
    this.url = s.bridge;
    return this;
  }

  install(example) {
    joy(this.home, "install", path.join(examples, example));
  }

  stop() {
    try { joy(this.home, "stop"); } catch { /* already gone */ }
  }

  remove() {
    this.stop();
    rmSync(this.home, { recursive: true, force: true });
  }
}

sweep();

/// Connects a hypha-rpc client; closes every client at the end.
const clients = [];
export async function connect(url, cfg = {}) {
  const api = await hyphaWebsocketClient.connectToServer({
    server_url: url, method_timeout: 10, ...cfg,
  });
  clients.push(api);
  return api;
}

export async function disconnectAll() {
  for (const api of clients.splice(0)) {
    try { await api.disconnect(); } catch { /* gone */ }
  }
}

/// A raw WebSocket to the endpoint, for what clients never send.
export function raw(url, path_ = "/ws") {
  const ws = new WebSocket(url.replace(/^http/, "ws") + path_);
  const frames = [];
  let waiter = null;
  ws.on("message", (data, binary) => {
    frames.push(binary ? data : data.toString());
    if (waiter) waiter();
  });
  const closed = new Promise((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  const opened = new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  return {
    ws, frames, closed, opened,
    async next(timeout = 5000) {
      const deadline = Date.now() + timeout;
      while (frames.length === 0) {
        if (Date.now() > deadline) throw new Error("no frame within " + timeout + " ms");
        await new Promise((r) => { waiter = r; setTimeout(r, 50); });
      }
      return frames.shift();
    },
  };
}

export function until(cond, timeout = 5000, what = "condition") {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeout;
    const tick = async () => {
      try {
        if (await cond()) return resolve();
      } catch { /* not yet */ }
      if (Date.now() > deadline) return reject(new Error("timed out waiting for " + what));
      setTimeout(tick, 25);
    };
    tick();
  });
}
