// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// Inside a window plugin's iframe: ImJoy's global `api` for the plugin's
// script, backed by the browser core over a JoyChannel. The core sends the
// plugin's parts (`load`); the page puts its <style> and <window> in place
// and runs its <script>, which calls `api.export(...)`.

(function () {
  "use strict";

  const channel = new JoyChannel(window.parent);
  let exported = null;
  let announce = null;
  const exportedOnce = new Promise((resolve) => { announce = resolve; });

  const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

  // ImJoy's api names the core serves for windows; both spellings work.
  const calls = [
    "alert", "prompt", "confirm", "show_message", "show_progress",
    "show_status", "log", "error", "progress", "get_service", "get_plugin",
    "call", "create_window", "list_services",
  ];
  const api = {
    export(obj) {
      if (exported) throw new Error("api.export was called already");
      exported = obj || {};
      announce();
    },
  };
  for (const name of calls) {
    const f = (...args) => channel.call(name, args);
    api[name] = f;
    api[camel(name)] = f;
  }
  window.api = api;
  window.imjoy = { api };

  // A script error before api.export goes to the core as the load error.
  let failed = null;
  window.addEventListener("error", (ev) => {
    failed = ev.message || String(ev.error);
    channel.call("error", [`script error: ${failed}`]).catch(() => {});
  });
  window.addEventListener("unhandledrejection", (ev) => {
    const why = ev.reason && ev.reason.message ? ev.reason.message : String(ev.reason);
    channel.call("error", [`unhandled rejection: ${why}`]).catch(() => {});
  });

  // Calls from the core: `load` once, then whatever the plugin exported.
  channel.serve(new Proxy({}, {
    get(_, name) {
      if (name === "load") return load;
      if (!exported) return undefined;
      const f = exported[name];
      return typeof f === "function" ? f.bind(exported) : undefined;
    },
  }));

  async function load(source) {
    if (source.style) {
      const style = document.createElement("style");
      style.textContent = source.style;
      document.head.append(style);
    }
    document.body.innerHTML = source.window || "";
    const lang = String(source.lang || "javascript").toLowerCase();
    if (lang !== "javascript" && lang !== "js")
      throw new Error(`a window plugin's script must be JavaScript, not ${lang}`);
    const script = document.createElement("script");
    script.textContent = source.script || "";
    document.body.append(script); // runs now
    if (failed) throw new Error(failed);
    await Promise.race([
      exportedOnce,
      new Promise((_, reject) => setTimeout(
        () => reject(new Error("the plugin did not call api.export within 10 s")), 10000)),
    ]);
    return Object.keys(exported).concat(
      Object.getOwnPropertyNames(Object.getPrototypeOf(exported) || {}))
      .filter((k) => k !== "constructor" && !k.startsWith("_")
              && typeof exported[k] === "function");
  }
})();
