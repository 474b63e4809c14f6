// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// Reconnection (hypha-protocol.md §11 items 13 and 14): clients of a bridge
// that restarts come back on their own, with their reconnection tokens,
// register again and call each other again.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { connect, disconnectAll, freePort, node, until } from "./harness.mjs";

let head;
let port;

before(async () => {
  port = await freePort();
  head = new node({ bridge: `127.0.0.1:${port}` }).start();
});

after(async () => {
  await disconnectAll();
  head?.remove();
});

test("clients come back after the bridge restarts and call each other again", async () => {
  const a = await connect(head.url, { client_id: "rs-a" });
  const token = await a.generateToken();
  const b = await connect(head.url, { client_id: "rs-b", token, workspace: a.config.workspace });
  await a.registerService({ id: "counter", config: { visibility: "public" }, inc: (x) => x + 1 });
  const before = await b.getService("rs-a:counter");
  assert.equal(await before.inc(1), 2);
  const manager = a.config.manager_id;

  head.stop();
  head.start();
  assert.equal(head.url, `http://127.0.0.1:${port}`);

  // The clients reconnect with their reconnection tokens (the bridge's
  // secret outlives it) and register their services again.
  await until(async () => {
    const svc = await b.getService("rs-a:counter");
    return (await svc.inc(41)) === 42;
  }, 20000, "the services to come back");
  assert.equal(a.config.workspace, b.config.workspace);
  assert.equal(a.config.manager_id, manager);
});
