// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// The Node side of joy-bench's bridge benchmarks (b9.cpp runs it):
//   node b9.mjs BRIDGE_URL ECHO_URL JOYD_PID SAMPLES CALLS IDLE
// Prints one JSON object: raw WebSocket echo and push rates against the
// Beast baseline server, hypha-rpc calls through the bridge into a native
// plugin, 1 MiB arrays from a plugin, and the bridge's memory per idle
// client.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.JOY_NODE_MODULES, "x.js"));
const WebSocket = require("ws");
globalThis.WebSocket = WebSocket;
const { hyphaWebsocketClient } = require("hypha-rpc");

const [bridge, echo, pid, samplesArg, callsArg, idleArg] = process.argv.slice(2);
const samples = Number(samplesArg);
const calls = Number(callsArg);
const idleCount = Number(idleArg);

function quantiles(xs) {
  xs.sort((a, b) => a - b);
  const q = (p) => xs[Math.floor(p * (xs.length - 1))];
  return { p50: q(0.5), p99: q(0.99) };
}

const now = () => Number(process.hrtime.bigint()) / 1000; // µs

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.on("open", () => resolve(ws));
    ws.on("error", reject);
  });
}

function rss(p) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
  return Number(m[1]) * 1024;
}

const out = {};

// -- baseline: a raw Beast WebSocket echo -----------------------------------
{
  const ws = await open(echo);
  const ping = Buffer.alloc(8);
  const once = () => new Promise((r) => { ws.once("message", r); ws.send(ping); });
  for (let i = 0; i < samples / 10; ++i) await once();
  const lat = [];
  for (let i = 0; i < samples; ++i) {
    const t0 = now();
    await once();
    lat.push(now() - t0);
  }
  out.ws_echo = quantiles(lat);
  // 1 MiB frames pushed by the server.
  const frames = 64;
  const t0 = now();
  await new Promise((resolve) => {
    let got = 0;
    const on = () => { if (++got === frames) { ws.off("message", on); resolve(); } };
    ws.on("message", on);
    ws.send(`push ${frames} ${1 << 20}`);
  });
  out.ws_push_gbps = (frames * (1 << 20)) / ((now() - t0) * 1000);
  ws.close();
}

// -- hypha-rpc through the bridge into a native plugin ----------------------
{
  const api = await hyphaWebsocketClient.connectToServer({ server_url: bridge, client_id: "bench" });
  const hello = await api.getService("hello");
  // The manager's echo goes no further than the client's session: what the
  // hypha-rpc client and the bridge cost without a native plugin.
  for (let i = 0; i < samples / 10; ++i) await api.echo("x");
  const mgr = [];
  for (let i = 0; i < samples; ++i) {
    const t0 = now();
    await api.echo("x");
    mgr.push(now() - t0);
  }
  out.hypha_echo = quantiles(mgr);
  for (let i = 0; i < samples / 10; ++i) await hello.echo("x");
  const lat = [];
  for (let i = 0; i < samples; ++i) {
    const t0 = now();
    await hello.echo("x");
    lat.push(now() - t0);
  }
  out.hypha_call = quantiles(lat);
  let issued = 0;
  const lane = async () => { while (issued < calls) { issued += 1; await hello.add(issued, 1); } };
  const t0 = now();
  await Promise.all(Array.from({ length: 64 }, lane));
  out.hypha_calls_per_s = calls / ((now() - t0) / 1e6);
  // 1 MiB arrays from a plugin, 4 in flight.
  const arrays = await api.getService("arrays");
  const n = 64;
  let next = 0;
  let bytes = 0;
  const pull = async () => {
    while (next < n) {
      next += 1;
      const a = await arrays.make(1 << 20, next);
      bytes += a._rvalue.length;
    }
  };
  const t1 = now();
  await Promise.all(Array.from({ length: 4 }, pull));
  out.bridge_push_gbps = bytes / ((now() - t1) * 1000);
  await api.disconnect();
}

// -- idle clients -------------------------------------------------------------
{
  const before = rss(pid);
  const idle = [];
  const url = bridge.replace(/^http/, "ws") + "/ws";
  for (let i = 0; i < idleCount; i += 250) {
    const batch = [];
    for (let j = i; j < Math.min(idleCount, i + 250); ++j)
      batch.push(new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.on("open", () => ws.send(JSON.stringify({ client_id: `idle-${j}` })));
        ws.once("message", () => resolve(ws));
        ws.on("error", reject);
      }));
    idle.push(...(await Promise.all(batch)));
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = rss(pid);
  out.idle = { clients: idle.length, bytes_per_client: (after - before) / idle.length };
  for (const ws of idle) ws.terminate();
}

console.log(JSON.stringify(out));
process.exit(0);
