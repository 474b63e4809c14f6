// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// The bridge against the unmodified npm `hypha-rpc` client: the behaviours
// of hypha-protocol.md §11, on a real head node with a bridge and a real
// worker node, with native plugins on both.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  connect, disconnectAll, joy, node, raw, until, hyphaWebsocketClient,
} from "./harness.mjs";

let head;
let worker;
let url;

before(() => {
  head = new node({ bridge: "127.0.0.1:0" }).start();
  worker = new node({ join: head }).start();
  head.install("hello");
  head.install("arrays");
  head.install("image-filter.imjoy.html");
  worker.install("demo");
  worker.install("py-callbacks.imjoy.html");
  url = head.url;
});

after(async () => {
  await disconnectAll();
  worker?.remove();
  head?.remove();
});

describe("the handshake", () => {
  test("a client connects and learns its workspace and the manager", async () => {
    const api = await connect(url, { client_id: "hs1" });
    assert.match(api.config.workspace, /^ws-user-anonymouz-/);
    assert.equal(api.config.client_id, "hs1");
    assert.ok(api.config.manager_id.startsWith("manager-"));
    assert.equal(api.config.hypha_version, "0.21.40");
  });

  test("a bad authentication frame gets an error frame and close 1008", async () => {
    const c = raw(url);
    await c.opened;
    c.ws.send("this is not json");
    const frame = JSON.parse(await c.next());
    assert.equal(frame.type, "error");
    assert.match(frame.message, /Authentication error/);
    const { code } = await c.closed;
    assert.equal(code, 1008);
  });

  test("credentials in the URL are refused, never with 1003", async () => {
    const c = raw(url, "/ws?client_id=x&workspace=y");
    await c.opened;
    c.ws.send(JSON.stringify({ client_id: "x" }));
    const frame = JSON.parse(await c.next());
    assert.equal(frame.type, "error");
    assert.match(frame.message, /upgrade to `hypha-rpc`/);
    assert.equal((await c.closed).code, 1008);
  });

  test("a client that sends nothing is closed after the authentication deadline", async () => {
    const c = raw(url);
    await c.opened;
    const frame = JSON.parse(await c.next(8000));
    assert.equal(frame.message, "Authentication payload timeout");
    assert.equal((await c.closed).code, 1008);
  });

  test("a workspace the client has no token for is refused", async () => {
    await assert.rejects(
      hyphaWebsocketClient.connectToServer({ server_url: url, workspace: "someone-else" }),
      /Permission denied for workspace someone-else/);
  });

  test("ping is answered with pong and refresh_token with a new reconnection token", async () => {
    const c = raw(url);
    await c.opened;
    c.ws.send(JSON.stringify({ client_id: "pinger" }));
    const info = JSON.parse(await c.next());
    assert.equal(info.type, "connection_info");
    c.ws.send(JSON.stringify({ type: "ping" }));
    assert.deepEqual(JSON.parse(await c.next()), { type: "pong" });
    c.ws.send(JSON.stringify({ type: "refresh_token" }));
    const fresh = JSON.parse(await c.next());
    assert.equal(fresh.type, "reconnection_token");
    assert.ok(fresh.reconnection_token.length > 20);
    c.ws.close(1000);
    await c.closed;
  });
});

describe("services between clients", () => {
  let a;
  let b;
  let token;
  before(async () => {
    a = await connect(url, { client_id: "svc-a" });
    token = await a.generateToken();
    b = await connect(url, { client_id: "svc-b", token, workspace: a.config.workspace });
  });

  test("a token lets a second client join the first one's workspace", () => {
    assert.equal(b.config.workspace, a.config.workspace);
  });

  test("registerService returns the full id and a peer calls it with context", async () => {
    const info = await a.registerService({
      id: "calc",
      config: { visibility: "public", require_context: true },
      add: (x, y, context) => x + y,
      who: (context) => ({ from: context.from, ws: context.ws, user: context.user.id }),
    });
    assert.equal(info.id, `${a.config.workspace}/svc-a:calc`);
    const calc = await b.getService("calc");
    assert.equal(await calc.add(2, 40), 42);
    const who = await calc.who();
    assert.equal(who.from, `${a.config.workspace}/svc-b`);
    assert.equal(who.ws, a.config.workspace);
    assert.match(who.user, /^anonymouz-/);
  });

  test("every id form finds the service, and a missing one says Service not found", async () => {
    const ws = a.config.workspace;
    for (const id of ["calc", "svc-a:calc", `${ws}/calc`, `${ws}/svc-a:calc`, "calc@*"]) {
      const calc = await b.getService(id);
      assert.equal(await calc.add(1, 1), 2, id);
    }
    await assert.rejects(b.getService("nope"), /Service not found/);
  });

  test("registering again overwrites the service", async () => {
    await a.registerService({ id: "ver", config: { visibility: "public" }, v: () => 1 });
    await a.registerService({ id: "ver", config: { visibility: "public" }, v: () => 2 },
                            { overwrite: true });
    const svc = await b.getService("svc-a:ver");
    assert.equal(await svc.v(), 2);
  });

  test("values cross unchanged: nested objects, bytes, typed arrays, dates", async () => {
    await a.registerService({ id: "mirror", config: { visibility: "public" }, back: (x) => x });
    const m = await b.getService("svc-a:mirror");
    const when = new Date("2026-11-28T12:00:00.250Z");
    const out = await m.back({
      n: 1, f: 2.5, s: "é", t: true, z: null, list: [1, [2, [3]]],
      bytes: new Uint8Array([1, 2, 3]),
      floats: new Float32Array([1.5, -2]),
      ints: new Int16Array([-3, 4]),
      buf: new Uint8Array([9, 8]).buffer,
      when,
    });
    assert.equal(out.n, 1);
    assert.equal(out.f, 2.5);
    assert.equal(out.s, "é");
    assert.deepEqual(out.list, [1, [2, [3]]]);
    assert.deepEqual([...out.bytes], [1, 2, 3]);
    assert.ok(out.floats instanceof Float32Array);
    assert.deepEqual([...out.floats], [1.5, -2]);
    assert.ok(out.ints instanceof Int16Array);
    assert.ok(out.buf instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(out.buf)], [9, 8]);
    assert.ok(out.when instanceof Date);
    assert.equal(out.when.getTime(), when.getTime());
  });

  test("a thrown error reaches the caller as a RemoteError", async () => {
    await a.registerService({
      id: "fails", config: { visibility: "public" },
      boom: () => { throw new Error("it broke"); },
    });
    const f = await b.getService("svc-a:fails");
    await assert.rejects(f.boom(), /RemoteError.*it broke/s);
  });

  test("callbacks can be called many times in both directions", async () => {
    await a.registerService({
      id: "cb", config: { visibility: "public" },
      each: async (n, f) => { let s = 0; for (let i = 0; i < n; ++i) s += await f(i); return s; },
      maker: () => (x) => x * 3,
    });
    const cb = await b.getService("svc-a:cb");
    assert.equal(await cb.each(20, (i) => i), 190);
    const triple = await cb.maker();
    assert.equal(await triple(5), 15);
    assert.equal(await triple(7), 21);
  });

  test("a call longer than the caller's timeout lives on heartbeats", async () => {
    await a.registerService({
      id: "slow", config: { visibility: "public" },
      wait: (ms) => new Promise((r) => setTimeout(() => r("done"), ms)),
    });
    const quick = await connect(url, {
      client_id: "svc-quick", token, workspace: a.config.workspace, method_timeout: 2,
    });
    const slow = await quick.getService("svc-a:slow");
    assert.equal(await slow.wait(4500), "done");
  });

  test("messages over 256 KB are chunked both to the manager and to a peer", async () => {
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; ++i) big[i] = i % 251;
    const echoed = await a.echo(big.buffer);
    assert.equal(echoed.byteLength, big.length);
    assert.deepEqual(new Uint8Array(echoed).subarray(0, 600), big.subarray(0, 600));
    const m = await b.getService("svc-a:mirror");
    const back = await m.back(big);
    assert.equal(back.length, big.length);
    assert.equal(back[big.length - 1], big[big.length - 1]);
  });

  test("a 10 MB echo comes back whole", async () => {
    const big = new Uint8Array(10 * 1024 * 1024).fill(7);
    const echoed = await a.echo(big.buffer);
    assert.equal(echoed.byteLength, big.length);
  });

  test("listServices answers no query, strings and dicts, with built-in entries", async () => {
    const ws = a.config.workspace;
    const all = (await b.listServices()).map((s) => s.id);
    assert.ok(all.includes(`${ws}/svc-a:calc`));
    assert.ok(all.includes(`${ws}/svc-a:built-in`));
    const byClient = (await b.listServices("svc-a:calc")).map((s) => s.id);
    assert.deepEqual(byClient, [`${ws}/svc-a:calc`]);
    const byDict = (await b.listServices({ client_id: "svc-a", service_id: "mirror" }))
      .map((s) => s.id);
    assert.deepEqual(byDict, [`${ws}/svc-a:mirror`]);
    await assert.rejects(b.listServices({ colour: "red" }), /unknown query key/);
  });

  test("echo, log and kwargs work on the manager", async () => {
    assert.deepEqual(await a.echo({ x: [1, "two"] }), { x: [1, "two"] });
    await a.log("hello from the conformance suite");
    const t = await a.generateToken({ config: { expires_in: 60 } });
    assert.equal(typeof t, "string");
  });

  test("a call to a peer that is gone is rejected at once", async () => {
    const c = await connect(url, { client_id: "svc-gone", token, workspace: a.config.workspace });
    await c.registerService({ id: "bye", config: { visibility: "public" }, f: () => 1 });
    const bye = await b.getService("svc-gone:bye");
    await c.disconnect();
    const started = Date.now();
    await assert.rejects(bye.f(), /not connected|Service not found|disconnected/i);
    assert.ok(Date.now() - started < 3000, "rejected fast");
  });

  test("a disconnect removes the services and tells subscribers", async () => {
    const seen = [];
    b.on("client_disconnected", (e) => seen.push(e.data?.id ?? e.id));
    await b.subscribe("client_disconnected");
    const c = await connect(url, { client_id: "svc-leaver", token, workspace: a.config.workspace });
    await c.registerService({ id: "tmp", config: { visibility: "public" }, f: () => 1 });
    await c.disconnect();
    await until(() => seen.includes("svc-leaver"), 5000, "client_disconnected");
    await assert.rejects(b.getService("svc-leaver:tmp"), /Service not found/);
  });

  test("a broadcast reaches only subscribers in the same workspace", async () => {
    const got = { b: 0, other: 0 };
    b.on("news", () => { got.b += 1; });
    await b.subscribe("news");
    const other = await connect(url, { client_id: "svc-other" });
    other.on("news", () => { got.other += 1; });
    await other.subscribe("news");
    await a.emit({ type: "news", to: "*", data: { n: 1 } });
    await until(() => got.b === 1, 5000, "the broadcast");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got.other, 0);
    await b.unsubscribe("news");
    await a.emit({ type: "news", to: "*", data: { n: 2 } });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.b, 1);
  });

  test("a second client with a live client's id is refused", async () => {
    await assert.rejects(
      hyphaWebsocketClient.connectToServer({
        server_url: url, client_id: "svc-a", token, workspace: a.config.workspace,
      }),
      /Client already exists and is active/);
  });
});

describe("workspaces", () => {
  test("public services are reachable across workspaces and protected ones are not", async () => {
    const owner = await connect(url, { client_id: "ws-owner" });
    await owner.registerService({ id: "open", config: { visibility: "public" }, f: () => "open" });
    await owner.registerService({ id: "closed", config: { visibility: "protected" }, f: () => "closed" });
    const stranger = await connect(url, { client_id: "ws-stranger" });
    const ws = owner.config.workspace;
    const open = await stranger.getService(`${ws}/ws-owner:open`);
    assert.equal(await open.f(), "open");
    await assert.rejects(stranger.getService(`${ws}/ws-owner:closed`), /Permission denied/);
    const listed = (await stranger.listServices({ workspace: ws })).map((s) => s.id);
    assert.ok(!listed.includes(`${ws}/ws-owner:closed`));
  });

  test("a service id naming another workspace cannot be registered (V1)", async () => {
    // The client prefixes ids itself, so ask the manager directly.
    const c = await connect(url, { client_id: "ws-injector" });
    const wm = await c.getService("~");
    for (const id of ["ws-user-victim/ws-injector:evil", "other-client:evil"])
      await assert.rejects(
        wm.register_service({ id, name: "evil", type: "generic", config: { visibility: "public" } }),
        /Permission denied/, id);
  });

  test("a token from `joy token` admits a client to its workspace", async () => {
    const token = joy(head.home, "token", "--workspace", "team-a", "--user", "ada").trim();
    const c = await connect(url, { client_id: "ws-team", token, workspace: "team-a" });
    assert.equal(c.config.workspace, "team-a");
    assert.equal(c.config.user.id, "ada");
    const forged = token.slice(0, -3) + (token.endsWith("AAA") ? "BBB" : "AAA");
    await assert.rejects(
      hyphaWebsocketClient.connectToServer({ server_url: url, token: forged }),
      /invalid token/);
  });

  test("an event pattern cannot reach other workspaces' events (V2)", async () => {
    const c = await connect(url, { client_id: "ws-v2" });
    for (const pattern of ["*", "ws-user-*/client_connected", "other/service_added"])
      await assert.rejects(c.subscribe(pattern), /cannot subscribe/, pattern);
  });

  test("the workspaces a service is shared with are not listed (V3)", async () => {
    const owner = await connect(url, { client_id: "ws-v3" });
    await owner.registerService({
      id: "shared", config: { visibility: "protected", authorized_workspaces: ["friend-ws"] },
      f: () => 1,
    });
    const [info] = await owner.listServices({ service_id: "shared" });
    assert.equal(info.id, `${owner.config.workspace}/ws-v3:shared`);
    assert.equal(info.config.authorized_workspaces, undefined);
  });

  test("errors reach other clients without their traceback (V5)", async () => {
    const c = await connect(url, { client_id: "ws-v5" });
    const hello = await c.getService("hello");
    const err = await hello.add("x", 1).catch((e) => e);
    // "RemoteError: <message>\n<trace>": the trace part is empty.
    assert.match(String(err.message), /^RemoteError: .+\n$/s);
  });

  test("a token for another workspace cannot be issued", async () => {
    const c = await connect(url, { client_id: "ws-issuer" });
    await assert.rejects(c.generateToken({ config: { workspace: "public" } }), /Permission denied/);
  });

  test("only an admin may become the cluster's UI", async () => {
    const owner = await connect(url, { client_id: "ui-owner" });
    const guest = await connect(url, {
      client_id: "ui-guest", workspace: owner.config.workspace, token: await owner.generateToken(),
    });
    await assert.rejects(
      guest.registerService({ id: "ui", type: "joy-ui", config: { visibility: "unlisted" }, show: () => null }),
      /only an admin may register the cluster's UI/);
  });

  test("an admin kicks a client with force-exit and it does not come back", async () => {
    // The owner of a user workspace is its admin; its guest has read_write.
    const owner = await connect(url, { client_id: "kick-owner" });
    const ws = owner.config.workspace;
    const guest = await connect(url, {
      client_id: "kick-guest", workspace: ws, token: await owner.generateToken(),
    });
    await assert.rejects(guest.kickClient("kick-owner"), /needs admin permission/);
    await assert.rejects(guest.generateToken({ config: { permission: "admin" } }),
                         /cannot issue a token with admin/);
    const stranger = await connect(url, { client_id: "kick-stranger" });
    await assert.rejects(stranger.kickClient(`${ws}/kick-guest`), /not a client of/);

    const gone = [];
    owner.on("client_disconnected", (e) => gone.push(e.data?.id ?? e.id));
    await owner.subscribe("client_disconnected");
    await guest.registerService({ id: "stay", config: { visibility: "public" }, f: () => 1 });
    await owner.kickClient("kick-guest", "enough for today");
    await until(() => gone.includes("kick-guest"), 5000, "client_disconnected");
    await assert.rejects(owner.getService("kick-guest:stay"), /Service not found/);
    // A client that only lost its socket reconnects after about 1 s and
    // registers its services again; a kicked one stays away. Seeing nothing
    // come back needs a window longer than that first backoff.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await assert.rejects(owner.getService("kick-guest:stay"), /Service not found/);
    await assert.rejects(guest.echo("still there?"));
  });
});

describe("native plugins", () => {
  test("a client calls a native plugin of the bridge's node", async () => {
    const c = await connect(url, { client_id: "nat-1" });
    const hello = await c.getService("hello");
    assert.equal(await hello.add(2, 3), 5);
    assert.equal(await hello.echo("hi"), "hi");
    // The plugin's parameter names arrive as hypha's function schema.
    assert.deepEqual(Object.keys(hello.add.__schema__.function.parameters.properties), ["a", "b"]);
  });

  test("a client calls a native plugin on another node and passes it a callback", async () => {
    const c = await connect(url, { client_id: "nat-2" });
    const demo = await c.getService("public/demo:default");
    assert.equal(await demo.count_with((i) => i * 2, 10), 90);
    const next = await demo.make_counter();
    assert.equal(await next(), 1);
    assert.equal(await next(), 2);
  });

  test("a native plugin on another node calls a client's service", async () => {
    const c = await connect(url, { client_id: "nat-3" });
    await c.registerService({ id: "twice", config: { visibility: "public" }, double: (x) => 2 * x });
    const demo = await c.getService("public/demo");
    const id = `${c.config.workspace}/nat-3:twice`;
    await until(async () => (await demo.use(id, 21)) === 42, 10000, "the directory to know the service");
  });

  test("an array a plugin sends by shared memory reaches the client whole", async () => {
    const c = await connect(url, { client_id: "nat-shm" });
    const arrays = await c.getService("arrays");
    const img = await arrays.gradient(512, 512); // 256 KiB: the shm arm
    assert.equal(img._rtype, "ndarray");
    assert.deepEqual(img._rshape, [512, 512]);
    assert.equal(img._rdtype, "uint8");
    assert.equal(img._rvalue.length, 512 * 512);
    assert.equal(img._rvalue[0], 0);
    assert.equal(img._rvalue[512 * 512 - 1], 255);
  });

  test("a client calls ImJoy Python plugins, with numpy arrays and callbacks both ways", async () => {
    const c = await connect(url, { client_id: "py-1" });
    // On the worker: Python hands a lambda to the C++ demo, which calls back.
    const py = await c.getService("public/py-callbacks:default");
    assert.equal(await py.sum_of_squares(4), 14);
    // A Python function handed to the client, called from JavaScript.
    const triple = await py.scaler(3);
    assert.equal(await triple(5), 15);
    // On the head: an image from a C++ plugin, blurred by numpy.
    const arrays = await c.getService("arrays");
    const filter = await c.getService("image-filter");
    const img = await arrays.gradient(8, 8);
    const out = await filter.blur(img, 1);
    assert.equal(out._rtype, "ndarray");
    assert.equal(out._rdtype, "float32");
    assert.deepEqual(out._rshape, [8, 8]);
    // A Python exception arrives with its traceback.
    await assert.rejects(filter.blur(img, 0), /radius must be at least 1/);
  });

  test("native plugins are listed in workspace public", async () => {
    const c = await connect(url, { client_id: "nat-4" });
    const ids = (await c.listServices("public")).map((s) => s.id);
    assert.ok(ids.includes("public/hello:default"), ids.join(","));
    assert.ok(ids.includes("public/demo:default"), ids.join(","));
  });

  test("the UI a client provides is reached by plugins and by no other workspace", async () => {
    const ui = await connect(url, { client_id: "ui-core" });
    const asked = [];
    await ui.registerService({
      id: "ui", type: "joy-ui",
      config: { visibility: "protected", authorized_workspaces: ["public"] },
      show: (op, plugin, ...args) => {
        asked.push([op, plugin, args[0]]);
        return op === "prompt" ? "Hi" : null;
      },
    });
    const caller = await connect(url, { client_id: "ui-caller" });
    const demo = await caller.getService("demo");
    assert.equal(await demo.greet("Ada"), "Hi, Ada!");
    assert.deepEqual(asked[0].slice(0, 2), ["prompt", "demo"]);
    const stranger = await connect(url, { client_id: "ui-stranger" });
    await assert.rejects(stranger.getService(`${ui.config.workspace}/ui-core:ui`), /Permission denied/);
  });

  test("a native error reaches the client with no trace", async () => {
    const c = await connect(url, { client_id: "nat-5" });
    const hello = await c.getService("hello");
    await assert.rejects(hello.add("x", 1), (err) => {
      assert.match(String(err), /RemoteError/);
      return true;
    });
  });
});
