// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
//
// The browser core's windows: ImJoy `window` plugins in sandboxed iframes.
// A window plugin is installed on some node of the cluster; its service
// (`public/<name>:default`, type "window") hands out its parts with
// `source()`. Every `createWindow` makes a new instance, as in ImJoy, and
// answers the window's api: its plugin's exported functions plus `run`,
// `close` and `id`. Plugins anywhere reach this through `api.create_window`.

let nextWindow = 1;

/// A window reaches the cluster's plugins (workspace public) and nothing
/// of the core's own workspace: the core's connection is its user's, and
/// the manager would hand a window tokens.
function publicId(id) {
  if (typeof id !== "string" || id === "" || id === "~" || id.startsWith("*/"))
    throw new Error(`a window may reach the cluster's plugins only, not '${String(id)}'`);
  if (!id.includes("/")) return `public/${id}`;
  if (!id.startsWith("public/"))
    throw new Error(`a window may reach the cluster's plugins only (public/...), not '${id}'`);
  return id;
}

const reserved = new Set(["id", "name", "type", "run", "close", "focus", "setup"]);

/// `hypha`: the core's hypha-rpc connection; `show(op, plugin, ...args)`:
/// the core's UI for plugins; `log(plugin, text, level)`: its log list.
export function windowManager({ container, hypha, show, log }) {
  async function createWindow(cfg, from) {
    if (typeof cfg === "string") cfg = { type: cfg };
    cfg = cfg || {};
    const type = cfg.type || cfg.src;
    if (!type || typeof type !== "string")
      throw new Error("create_window needs `type`: the name of a window plugin");
    if (type.includes("://") || type.startsWith("imjoy/"))
      throw new Error(`window type '${type}' is not supported: name an installed window plugin`);
    let source;
    try {
      const svc = await hypha.getService(publicId(type));
      if (typeof svc.source !== "function") throw new Error("no source()");
      source = await svc.source();
    } catch (err) {
      throw new Error(`no window plugin named '${type}' is installed in the cluster (${err.message ?? err})`);
    }
    const id = `window-${nextWindow++}`;
    const title = cfg.name || source.config?.name || type;
    const frame = document.createElement("iframe");
    // No allow-same-origin: the plugin gets an opaque origin.
    frame.setAttribute("sandbox", "allow-scripts allow-forms allow-popups");
    frame.setAttribute("title", title);
    frame.src = "window.html";
    const close = document.createElement("button");
    close.className = "close";
    close.title = "Close";
    close.textContent = "×";
    const head = document.createElement("header");
    const name = document.createElement("span");
    name.textContent = title;
    head.append(name, close);
    const box = document.createElement("div");
    box.className = "window";
    box.dataset.window = id;
    box.dataset.plugin = type;
    box.append(head, frame);
    const loaded = new Promise((resolve) => frame.addEventListener("load", resolve, { once: true }));
    container.append(box);
    await loaded;

    const channel = new window.JoyChannel(frame.contentWindow);
    const plugin = source.config?.name || type;
    channel.serve(windowApi(plugin));
    const instance = { closed: false };
    const dispose = () => {
      if (instance.closed) return;
      instance.closed = true;
      channel.close();
      box.remove();
    };
    close.addEventListener("click", dispose);

    let methods;
    try {
      methods = await channel.call("load", [{
        window: source.window, style: source.style, script: source.script,
        lang: source.lang, config: source.config,
      }]);
    } catch (err) {
      log(plugin, `cannot open: ${err.message}`, "error");
      dispose();
      throw new Error(`window plugin '${type}' failed to load: ${err.message}`);
    }
    if (!Array.isArray(methods)) methods = [];
    const call = (m, args) => (instance.closed
      ? Promise.reject(new Error(`window ${id} is closed`))
      : channel.call(m, args));
    try {
      if (methods.includes("setup")) await call("setup", []);
      const ctx = { config: cfg.config || {}, data: cfg.data ?? null };
      if (methods.includes("run")) await call("run", [ctx]);
    } catch (err) {
      log(plugin, `failed to start: ${err.message}`, "error");
      dispose();
      throw new Error(`window plugin '${type}' failed to start: ${err.message}`);
    }
    // What the caller gets: the window's functions, and its own.
    const handle = { id, name: title, type };
    for (const m of methods)
      if (typeof m === "string" && /^[A-Za-z_$][\w$]*$/.test(m) && !reserved.has(m))
        handle[m] = (...args) => call(m, args);
    handle.run = (ctx2 = {}) => call("run", [ctx2]);
    handle.close = async () => { dispose(); return null; };
    handle.focus = async () => { box.scrollIntoView({ block: "nearest" }); frame.focus(); return null; };
    log(from || plugin, `opened window ${title}`);
    return handle;
  }

  /// What a window's script may call: ImJoy's api, served by the core
  /// (window.js sends the snake_case names).
  function windowApi(plugin) {
    const ui = (op) => (...args) => show(op, plugin, ...args);
    const calls = {
      alert: ui("alert"), prompt: ui("prompt"), confirm: ui("confirm"),
      show_message: ui("show_message"), show_progress: ui("show_progress"),
      show_status: ui("show_status"), progress: ui("show_progress"),
      log: (...args) => { log(plugin, args.map(String).join(" ")); return null; },
      error: (...args) => { log(plugin, args.map(String).join(" "), "error"); return null; },
      get_service: (id) => hypha.getService(publicId(id)),
      get_plugin: (name) => hypha.getService(publicId(name)),
      list_services: () => hypha.listServices("public"),
      call: async (name, method, ...args) => (await hypha.getService(publicId(name)))[method](...args),
      create_window: (cfg) => createWindow(cfg, plugin),
    };
    return calls;
  }

  return { createWindow };
}
