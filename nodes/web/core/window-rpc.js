// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// The channel between the browser core and one window plugin's iframe:
// calls both ways over postMessage, with functions as values. A function
// in an argument or a result is kept in the sender's table and travels as
// a handle; the receiver gets a stub that calls back through the channel.
// Everything else travels by structured clone, so typed arrays, ArrayBuffers
// and Dates arrive as they were sent. Handles live as long as the channel:
// a window is short-lived, and closing it drops the whole table.
//
// A classic script (not a module): the iframe has an opaque origin, and
// module scripts would need CORS from the bridge.

(function (global) {
  "use strict";

  const FN = "__joy_fn__";

  function isPlain(x) {
    if (x === null || typeof x !== "object") return false;
    if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer || x instanceof Date
        || x instanceof Blob || x instanceof RegExp) return false;
    return true;
  }

  class JoyChannel {
    /// `peer`: the other side's window; `root`: the object whose members
    /// the peer may call by name (more can be set later with `serve`).
    constructor(peer, root = {}) {
      this.peer = peer;
      this.root = root;
      this.functions = new Map();
      this.nextFunction = 1;
      this.pending = new Map();
      this.nextCall = 1;
      this.closed = false;
      this.listener = (ev) => {
        // Only the peer's window speaks on this channel; its origin is
        // opaque ("null"), so the window object is what identifies it.
        if (ev.source !== this.peer || !ev.data || ev.data.joy !== 1) return;
        this.receive(ev.data);
      };
      global.addEventListener("message", this.listener);
    }

    serve(root) { this.root = root; }

    /// Calls the peer's root member `name`.
    call(name, args) { return this.send({ kind: "call", name, args }); }

    close(reason = "the window is closed") {
      if (this.closed) return;
      this.closed = true;
      global.removeEventListener("message", this.listener);
      for (const { reject } of this.pending.values()) reject(new Error(reason));
      this.pending.clear();
      this.functions.clear();
    }

    send(msg) {
      if (this.closed) return Promise.reject(new Error("the window is closed"));
      const id = this.nextCall++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        try {
          this.post({ ...msg, id, args: this.encode(msg.args || []) });
        } catch (err) {
          this.pending.delete(id);
          reject(err);
        }
      });
    }

    post(msg) { this.peer.postMessage({ joy: 1, ...msg }, "*"); }

    encode(x, depth = 0) {
      if (depth > 64) throw new Error("the value is nested too deeply");
      if (typeof x === "function") {
        const h = this.nextFunction++;
        this.functions.set(h, x);
        return { [FN]: h, name: x.__name__ || x.name || "" };
      }
      if (Array.isArray(x)) return x.map((v) => this.encode(v, depth + 1));
      if (isPlain(x)) {
        const out = {};
        for (const k of Object.keys(x)) if (k !== "__proto__") out[k] = this.encode(x[k], depth + 1);
        return out;
      }
      return x;
    }

    decode(x) {
      if (Array.isArray(x)) return x.map((v) => this.decode(v));
      if (isPlain(x)) {
        if (typeof x[FN] === "number") {
          const handle = x[FN];
          const stub = (...args) => this.send({ kind: "invoke", handle, args });
          stub.__name__ = x.name;
          return stub;
        }
        // A key "__proto__" (possible in a cloned object) would set the
        // prototype of what is built here; it is dropped.
        const out = {};
        for (const k of Object.keys(x)) if (k !== "__proto__") out[k] = this.decode(x[k]);
        return out;
      }
      return x;
    }

    async receive(msg) {
      if (msg.kind === "reply") {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(this.decode(msg.value));
        else p.reject(new Error(msg.error));
        return;
      }
      let fn = null;
      let self = null;
      if (msg.kind === "call") {
        self = this.root;
        // Members starting with "_" stay private (ImJoy's rule), and
        // what every object inherits is not the plugin's.
        const name = String(msg.name);
        fn = !name.startsWith("_") && !(name in Object.prototype) && this.root
          ? this.root[name] : null;
      } else if (msg.kind === "invoke") {
        fn = this.functions.get(msg.handle) || null;
      } else {
        return;
      }
      try {
        if (typeof fn !== "function")
          throw new Error(msg.kind === "call" ? `no function '${msg.name}'`
                                              : "the function is gone");
        const value = await fn.apply(self, this.decode(msg.args || []));
        if (!this.closed) this.post({ kind: "reply", id: msg.id, ok: true, value: this.encode(value) });
      } catch (err) {
        if (!this.closed)
          this.post({ kind: "reply", id: msg.id, ok: false,
                      error: String(err && err.message ? err.message : err) });
      }
    }
  }

  global.JoyChannel = JoyChannel;
})(typeof window !== "undefined" ? window : globalThis);
