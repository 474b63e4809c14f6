// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// End to end in headless Chromium (playwright-core + Debian's chromium):
// the browser core served by a bridge on a head, with plugins on the head
// and on a worker. Screenshots go to $JOY_TEST_OUT.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { node, require } from "./harness.mjs";

const { chromium } = require("playwright-core");

const out = path.join(process.env.JOY_TEST_OUT || "/tmp/joy-bridge-out", "browser");
mkdirSync(out, { recursive: true });

// Headless Chromium as root in a container: no sandbox of its own (the
// test machine is the boundary), no GPU, no shared-memory /dev/shm.
const flags = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
  "--no-first-run", "--no-default-browser-check", "--disable-extensions",
  "--mute-audio",
  // Headless Chromium leaves sandboxed iframes that run in a process of
  // their own blank in screenshots. The window tests check the origin
  // barrier (the same-origin policy), which holds either way; this only
  // keeps the screenshots honest.
];

let head;
let worker;
let context;
let page;
let profile;

before(async () => {
  head = new node({ bridge: "127.0.0.1:0" }).start();
  worker = new node({ join: head }).start();
  head.install("hello");
  worker.install("demo");
  worker.install("arrays");
  worker.install("viewer.imjoy.html");
  worker.install("image-filter.imjoy.html");
  profile = mkdtempSync("/tmp/joy-chromium-");
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.JOY_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: flags,
  });
  page = await context.newPage();
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.goto(head.url);
  await page.waitForSelector("body[data-ready=true]");
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  worker?.remove();
  head?.remove();
});

async function shot(name) {
  await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
}

/// A window alone: frames scrolled out of view are not painted into a
/// full-page shot.
async function shotOf(box, name) {
  await box.scrollIntoViewIfNeeded();
  await box.screenshot({ path: path.join(out, `${name}.png`) });
}

/// Fills a function's form (one field per named parameter) and runs it.
async function run(plugin, fn, args) {
  await page.click(`[data-plugin="${plugin}"]`);
  const card = `[data-fn="${fn}"]`;
  await page.waitForSelector(card);
  const inputs = await page.$$(`${card} form input`);
  if (inputs.length === 1 && (await inputs[0].getAttribute("name")) === "args") {
    await inputs[0].fill(JSON.stringify(args));
  } else {
    assert.equal(inputs.length, args.length, `${fn} has a field per parameter`);
    for (let i = 0; i < args.length; ++i) await inputs[i].fill(JSON.stringify(args[i]));
  }
  await page.click(`${card} button[type=submit]`);
  return card;
}

test("the core shows the plugins of both nodes", async () => {
  await page.waitForSelector(`[data-node="${head.id}"] [data-plugin="hello"]`);
  await page.waitForSelector(`[data-node="${worker.id}"] [data-plugin="demo"]`);
  await page.waitForSelector(`[data-node="${worker.id}"] [data-plugin="arrays"]`);
  await shot("plugins");
});

test("a plugin function runs from the form and shows its result", async () => {
  const card = await run("hello", "add", [2, 3]);
  // hello names its parameters: the form has a field for each.
  assert.deepEqual(
    await page.$$eval(`${card} form input`, (xs) => xs.map((x) => x.name)), ["a", "b"]);
  const result = await page.waitForSelector(`${card} .result:not(.muted)`);
  assert.equal((await result.textContent()).trim(), "5");
  await shot("run-add");
});

test("a prompt raised by a plugin on the other node is answered in the page", async () => {
  const card = await run("demo", "greet", ["Ada"]);
  await page.waitForSelector("dialog[open][data-kind=prompt]");
  assert.match(await page.textContent("#dialog-text"), /Greeting for Ada/);
  await shot("prompt");
  await page.fill("#dialog-input", "Welcome");
  await page.click("#dialog-ok");
  const result = await page.waitForSelector(`${card} .result:not(.muted)`);
  assert.equal((await result.textContent()).trim(), '"Welcome, Ada!"');
});

test("an alert from a plugin appears and a message is listed", async () => {
  const card = await run("demo", "notify", ["the data is ready"]);
  await page.waitForSelector("dialog[open][data-kind=alert]");
  assert.match(await page.textContent("#dialog-text"), /the data is ready/);
  await page.click("#dialog-ok");
  await page.waitForSelector(`${card} .result:not(.muted)`);
});

test("a plugin's progress has a bar of its own and its log can be read", async () => {
  const card = await run("demo", "steps", [5]);
  await page.waitForSelector('#progress .bar[data-plugin="demo"][data-value="100"]');
  const result = await page.waitForSelector(`${card} .result:not(.muted)`);
  assert.equal((await result.textContent()).trim(), "5");
  // demo logs from its setup(); the log of a plugin on the other node.
  await page.click("details.logs summary");
  const log = await page.waitForSelector('pre.log[data-log="demo"]:has-text("demo is set up")');
  assert.match(await log.textContent(), /demo is set up/);
  await shot("progress-and-log");
});

test("an ndarray result is drawn as an image", async () => {
  const card = await run("arrays", "gradient", [48, 64]);
  const canvas = await page.waitForSelector(`${card} canvas.ndarray`);
  assert.equal(await canvas.getAttribute("data-shape"), "48x64");
  // The top-left pixel is black and the bottom-right one white.
  const corners = await page.evaluate((sel) => {
    const c = document.querySelector(sel);
    const ctx = c.getContext("2d");
    return [ctx.getImageData(0, 0, 1, 1).data[0],
            ctx.getImageData(c.width - 1, c.height - 1, 1, 1).data[0]];
  }, `${card} canvas.ndarray`);
  assert.deepEqual(corners, [0, 255]);
  await shot("ndarray");
});

test("a plugin's run form comes from its manifest's ui", async () => {
  await page.click('[data-plugin="arrays"]');
  const card = '.run-ui[data-fn="run"]';
  await page.waitForSelector(card);
  assert.deepEqual(await page.$$eval(`${card} [data-ui]`, (xs) => xs.map((x) => x.name)),
                   ["height", "width"]);
  assert.match(await page.textContent(card), /A gradient of .* rows by .* columns/s);
  await page.fill(`${card} [data-ui=height]`, "20");
  await page.fill(`${card} [data-ui=width]`, "30");
  await page.click(`${card} button[type=submit]`);
  // run(ctx) got ctx.config from the form and drew that gradient.
  await page.waitForSelector(`${card} canvas.ndarray[data-shape="20x30"]`);
  await shot("run-form");
});

test("an ImJoy Python plugin runs from its form, with its progress bar and message", async () => {
  await page.click('[data-plugin="image-filter"]');
  const card = '.run-ui[data-fn="run"]';
  await page.waitForSelector(`${card} [data-ui=radius]`);
  await page.fill(`${card} [data-ui=radius]`, "5");
  await page.click(`${card} button[type=submit]`);
  // numpy's picture, drawn; the plugin's progress and message shown.
  await page.waitForSelector(`${card} canvas.ndarray[data-shape="128x128"]`);
  await page.waitForSelector('#progress .bar[data-plugin="image-filter"][data-value="100"]');
  const said = await page.waitForSelector('#messages li[data-plugin="image-filter"]');
  assert.match(await said.textContent(), /blurred with radius 5/);
  await shot("python-run-form");
});

test("a large array from the other node is drawn too", async () => {
  // 600x800 bytes travel by the stream arm between the nodes.
  const card = await run("arrays", "gradient", [600, 800]);
  const canvas = await page.waitForSelector(`${card} canvas.ndarray[data-shape="600x800"]`);
  assert.ok(canvas);
});

test("a window plugin from the other node opens in a sandboxed iframe", async () => {
  const button = `[data-node="${worker.id}"] [data-window-plugin="viewer"]`;
  await page.click(button);
  const box = await page.waitForSelector('.window[data-plugin="viewer"]');
  const frame = await (await box.$("iframe")).contentFrame();
  await frame.waitForSelector("#viewer #text");
  assert.equal((await frame.textContent("#text")).trim(), "Nothing to show yet.");
  // Its setup() logged through the core's api.
  await page.waitForSelector('#messages li[data-plugin="viewer"]');
  // It is someone else's code: an opaque origin, no way into the core.
  const reach = await frame.evaluate(() => {
    const tries = {};
    for (const [what, f] of Object.entries({
      parentDocument: () => window.parent.document.title,
      storage: () => window.sessionStorage.getItem("joy-token"),
      cookie: () => document.cookie,
    })) {
      try { f(); tries[what] = "allowed"; } catch (err) { tries[what] = err.name; }
    }
    return { origin: window.origin, ...tries };
  });
  assert.equal(reach.origin, "null");
  assert.equal(reach.parentDocument, "SecurityError");
  assert.equal(reach.storage, "SecurityError");
  assert.equal(reach.cookie, "SecurityError");
  // Through the api it reaches the cluster's plugins, not the core's
  // workspace (whose manager would issue it tokens).
  const viaApi = await frame.evaluate(async () => {
    const tries = { sum: await api.call("hello", "add", 2, 3) };
    for (const id of ["~", "*/manager-x", "ws-user-someone/core:joy-ui"]) {
      try { await api.get_service(id); tries[id] = "allowed"; } catch (err) { tries[id] = err.message; }
    }
    return tries;
  });
  assert.equal(viaApi.sum, 5);
  for (const id of ["~", "*/manager-x", "ws-user-someone/core:joy-ui"])
    assert.match(viaApi[id], /cluster's plugins only/, id);
  await shotOf(box, "window");

  // The window asks through the core's api.prompt; the answer comes back.
  await frame.click("#ask");
  await page.waitForSelector("dialog[open][data-kind=prompt]");
  assert.match(await page.textContent("#dialog-plugin"), /viewer/);
  await page.fill("#dialog-input", "a cat");
  await page.click("#dialog-ok");
  await frame.waitForSelector("#answer:has-text('You said: a cat')");
  assert.equal((await frame.textContent("#text")).trim(), "a cat");

  await box.$eval("button.close", (b) => b.click());
  await page.waitForSelector('.window[data-plugin="viewer"]', { state: "detached" });
});

test("a native plugin on the other node opens a window and calls into it", async () => {
  const card = await run("demo", "open_viewer", ["hello from C++"]);
  const box = await page.waitForSelector('.window[data-plugin="viewer"]');
  const frame = await (await box.$("iframe")).contentFrame();
  await frame.waitForSelector("#text:has-text('hello from C++')");
  // demo asked the window what it shows, and returned that.
  const result = await page.waitForSelector(`${card} .result:not(.muted)`);
  assert.equal((await result.textContent()).trim(), '"hello from C++"');
  await shotOf(box, "window-from-plugin");
  await box.$eval("button.close", (b) => b.click());
});
