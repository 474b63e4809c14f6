// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// Clients from beyond loopback: a network namespace made here is another
// host (a veth pair, 10.231.7.0/24). Anonymous clients from there are
// refused; a token from `joy token` admits them. Needs root (CI is).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { joy, node } from "./harness.mjs";

const ns = `joyb${process.pid % 100000}`;
const hostIp = "10.231.7.1";
const ip = (...args) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] });

let head;
let dir;
let probe;

function sweep() {
  const listed = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const line of listed.split("\n")) {
    const name = line.split(" ")[0];
    if (name.startsWith("joyb")) {
      try { ip("netns", "del", name); } catch { /* gone */ }
    }
  }
}

before(() => {
  sweep();
  ip("netns", "add", ns);
  ip("link", "add", `${ns}h`, "type", "veth", "peer", "name", `${ns}n`);
  ip("link", "set", `${ns}n`, "netns", ns);
  ip("addr", "add", `${hostIp}/24`, "dev", `${ns}h`);
  ip("link", "set", `${ns}h`, "up");
  ip("netns", "exec", ns, "ip", "addr", "add", "10.231.7.2/24", "dev", `${ns}n`);
  ip("netns", "exec", ns, "ip", "link", "set", `${ns}n`, "up");
  ip("netns", "exec", ns, "ip", "link", "set", "lo", "up");
  head = new node({ bridge: `${hostIp}:0` }).start();
  head.install("hello");
  // A client run inside the namespace: connects, calls hello.add, prints
  // what happened as one JSON line.
  dir = mkdtempSync("/tmp/joy-remote-");
  probe = path.join(dir, "probe.mjs");
  writeFileSync(probe, `
import { createRequire } from "node:module";
const require = createRequire(${JSON.stringify(path.join(process.env.JOY_NODE_MODULES, "x.js"))});
globalThis.WebSocket = require("ws");
const { hyphaWebsocketClient } = require("hypha-rpc");
const [url, token, workspace] = process.argv.slice(2);
try {
  const api = await hyphaWebsocketClient.connectToServer({
    server_url: url, token: token || undefined, workspace: workspace || undefined });
  const hello = await api.getService("hello");
  console.log(JSON.stringify({ ok: true, workspace: api.config.workspace, sum: await hello.add(2, 3) }));
  await api.disconnect();
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err.message ?? err) }));
}
process.exit(0);
`);
});

after(() => {
  head?.remove();
  try { ip("netns", "del", ns); } catch { /* gone */ }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function fromOtherHost(...args) {
  const out = execFileSync("ip", ["netns", "exec", ns, process.execPath, probe, ...args],
                           { encoding: "utf8", timeout: 60000 });
  const line = out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  return JSON.parse(line);
}

test("an anonymous client from another host is refused", () => {
  assert.match(head.url, /^http:\/\/10\.231\.7\.1:\d+$/);
  const r = fromOtherHost(head.url);
  assert.equal(r.ok, false);
  assert.match(r.error, /need a token/);
});

test("a client from another host with a token from `joy token` gets in", () => {
  const token = joy(head.home, "token", "--workspace", "lab", "--user", "remote").trim();
  const r = fromOtherHost(head.url, token, "lab");
  assert.deepEqual(r, { ok: true, workspace: "lab", sum: 5 });
});
