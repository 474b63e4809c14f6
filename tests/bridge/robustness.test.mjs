// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// R5: hostile and broken clients of the bridge. Each gets a clear close;
// a well-behaved client on the same bridge keeps working throughout.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";

import { WebSocket, connect, disconnectAll, node, raw, require, until } from "./harness.mjs";

const { encode, decodeMulti } = require("@msgpack/msgpack");

let head;
let url;
let good;

before(async () => {
  head = new node({ bridge: "127.0.0.1:0" }).start();
  url = head.url;
  good = await connect(url, { client_id: "good" });
});

after(async () => {
  await disconnectAll();
  head?.remove();
});

/// The well-behaved client still gets answers.
async function stillFine() {
  assert.deepEqual(await good.echo({ ok: [1, 2] }), { ok: [1, 2] });
}

/// A raw client past the handshake.
async function admitted(id) {
  const c = raw(url);
  await c.opened;
  c.ws.send(JSON.stringify({ client_id: id }));
  const info = JSON.parse(await c.next());
  assert.equal(info.type, "connection_info");
  return c;
}

test("an oversized frame closes that client with 1009", async () => {
  const c = await admitted("big-frame");
  c.ws.send(Buffer.alloc(2 * 1024 * 1024, 1));
  assert.equal((await c.closed).code, 1009);
  await stillFine();
});

test("a text frame that is not UTF-8 closes that client with 1007", async () => {
  const c = await admitted("bad-utf8");
  c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
  assert.equal((await c.closed).code, 1007);
  await stillFine();
});

test("a binary frame that is not msgpack gets an error and close 1007", async () => {
  const c = await admitted("bad-msgpack");
  c.ws.send(Buffer.from([0xc1, 0x00, 0x01]));
  const frame = JSON.parse(await c.next());
  assert.equal(frame.type, "error");
  assert.match(frame.message, /msgpack|frame/);
  assert.equal((await c.closed).code, 1007);
  await stillFine();
});

test("binary before the authentication frame is refused", async () => {
  const c = raw(url);
  await c.opened;
  c.ws.send(Buffer.from([0x80]));
  const frame = JSON.parse(await c.next());
  assert.match(frame.message, /authentication frame/);
  assert.equal((await c.closed).code, 1008);
});

function http(request) {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(url).port);
    const s = net.connect(port, "127.0.0.1", () => s.write(request));
    let data = "";
    s.on("data", (d) => { data += d; });
    s.on("end", () => resolve(data));
    s.on("close", () => resolve(data));
    s.on("error", reject);
  });
}

test("bad handshakes get clear HTTP answers", async () => {
  const upgrade = (path, extra = "") =>
    `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
  assert.match(await http(upgrade("/elsewhere")), /^HTTP\/1\.1 404/);
  assert.match(await http(upgrade("/ws", "Origin: http://evil.example\r\n")), /^HTTP\/1\.1 403/);
  const noVersion = upgrade("/ws").replace("Sec-WebSocket-Version: 13\r\n", "");
  assert.match(await http(noVersion), /^HTTP\/1\.1 (400|426)/);
  // Not HTTP at all: a 400 or the connection closed, nothing else.
  assert.match(await http("NONSENSE\r\n\r\n"), /^(HTTP\/1\.1 400 .*|)$/s);
  // Browsers from the bridge's own origin pass.
  const own = new WebSocket(url.replace(/^http/, "ws") + "/ws", { origin: url });
  await new Promise((resolve, reject) => { own.on("open", resolve); own.on("error", reject); });
  own.close();
  await stillFine();
});

test("the health endpoints answer", async () => {
  assert.match(await http("GET /health/liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
               /^HTTP\/1\.1 200/);
  assert.match(await http("GET /health/readiness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
               /^HTTP\/1\.1 200/);
});

test("a slowloris client is cut off by the request deadline", async () => {
  const port = Number(new URL(url).port);
  const started = Date.now();
  const s = net.connect(port, "127.0.0.1");
  await new Promise((r) => s.on("connect", r));
  s.write("GET /ws HTTP/1.1\r\nHost: x\r\n");
  const drip = setInterval(() => s.write("X-Drip: 1\r\n"), 500);
  await new Promise((r) => s.on("close", r));
  clearInterval(drip);
  const took = Date.now() - started;
  assert.ok(took >= 4000 && took < 9000, `cut off after ${took} ms`);
  await stillFine();
});

test("a thousand idle clients do not disturb the others", async () => {
  const idle = [];
  for (let i = 0; i < 1000; i += 100) {
    const batch = [];
    for (let j = i; j < i + 100; ++j) {
      const ws = new WebSocket(url.replace(/^http/, "ws") + "/ws");
      batch.push(new Promise((resolve, reject) => {
        ws.on("open", () => ws.send(JSON.stringify({ client_id: `idle-${j}` })));
        ws.once("message", (m) => {
          const info = JSON.parse(m.toString());
          if (info.type === "connection_info") resolve(ws);
          else reject(new Error(m.toString()));
        });
        ws.on("error", reject);
      }));
    }
    idle.push(...(await Promise.all(batch)));
  }
  assert.equal(idle.length, 1000);
  const started = Date.now();
  for (let i = 0; i < 20; ++i) await stillFine();
  assert.ok(Date.now() - started < 5000, "20 round trips beside 1000 idle clients");
  await Promise.all(idle.map((ws) => new Promise((r) => { ws.on("close", r); ws.close(1000); })));
  await stillFine();
});

test("a client registering services without end is stopped at a thousand", async () => {
  const c = await connect(url, { client_id: "hoarder" });
  const wm = await c.getService("~");
  const info = (i) => ({ id: `s${i}`, name: `s${i}`, type: "generic", config: { visibility: "protected" } });
  // The client's own built-in service counts too.
  for (let i = 0; i < 999; ++i) await wm.register_service(info(i));
  await assert.rejects(wm.register_service(info(999)), /at most 1000 services/);
  await wm.register_service(info(5)); // replacing one is fine
  await stillFine();
});

test("chunked messages all clients hold open are bounded together", async () => {
  // A bridge that holds at most 3 MB of open chunked messages in all.
  const small = new node({ bridge: "127.0.0.1:0" });
  writeFileSync(path.join(small.home, "joyd.toml"), "bridge-chunked-total = 3000000\n");
  small.start();
  try {
    const open = async (id) => {
      const c = raw(small.url);
      await c.opened;
      c.ws.send(JSON.stringify({ client_id: id }));
      const info = JSON.parse(await c.next());
      assert.equal(info.type, "connection_info");
      let n = 0;
      // One call of the manager's message cache; its answer.
      c.cache = async (op, args) => {
        const session = `s${++n}`;
        const main = {
          type: "method", from: `${info.workspace}/${id}`, to: `*/${info.manager_id}`,
          method: `services.built-in.message_cache.${op}`, session, promise: "*",
        };
        c.ws.send(Buffer.concat([encode(main), encode({ args })]));
        for (;;) {
          const frame = await c.next();
          if (typeof frame === "string") continue;
          const [reply, extra] = [...decodeMulti(frame)];
          if (!String(reply.method).startsWith(session)) continue;
          if (reply.method.endsWith(".reject")) throw new Error(JSON.stringify(extra?.args?.[0]));
          return extra?.args?.[0] ?? null;
        }
      };
      return c;
    };
    const chunk = new Uint8Array(900 * 1024);
    const a = await open("chunky-a");
    const b = await open("chunky-b");
    await a.cache("create", ["m"]);
    await a.cache("append", ["m", chunk]);
    await a.cache("append", ["m", chunk]);
    await b.cache("create", ["m"]);
    await b.cache("append", ["m", chunk]);
    // 3.6 MB would be open: refused, and b's message is dropped.
    await assert.rejects(b.cache("append", ["m", chunk]), /holds 3000000 bytes of chunked messages/);
    // When a goes, what it held is free again.
    a.ws.close(1000);
    await a.closed;
    await b.cache("create", ["m2"]);
    await until(async () => {
      try { await b.cache("append", ["m2", chunk]); return true; } catch { return false; }
    }, 5000, "room after a client left");
    await b.cache("append", ["m2", chunk]);
    b.ws.close(1000);
  } finally {
    small.remove();
  }
  await stillFine();
});

test("a call into a plugin that overruns the bridge's deadline is answered with a timeout", async () => {
  const quick = new node({ bridge: "127.0.0.1:0" });
  writeFileSync(path.join(quick.home, "joyd.toml"), "bridge-call-timeout = 1\n");
  quick.start();
  try {
    quick.install("hello");
    const c = await connect(quick.url, { client_id: "impatient" });
    const hello = await c.getService("hello");
    const started = Date.now();
    // nap sends no progress; the node's own deadline is minutes away.
    await assert.rejects(hello.nap(30), /took longer than 1 s/);
    assert.ok(Date.now() - started < 10000, "answered by the bridge's deadline");
    // The session answers as before (hello itself naps on: its calls run
    // one at a time).
    assert.equal(await c.echo("still here"), "still here");
  } finally {
    quick.remove();
  }
  await stillFine();
});
