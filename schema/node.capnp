@0x9b76d0b58d220838;
# What the CLI (over joyd.sock) and, later, other nodes call on a node.
# The bootstrap capability is a Gate: nothing but the handshake is reachable
# before `hello` succeeds. Append-only.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("joy::wire");

using V = import "value.capnp";
using P = import "plugin.capnp";

interface Gate {
  hello @0 (version :UInt32, client :Text) -> (result :HelloResult);
  # `version` is joy::protocol_version; a mismatch is an error result.
}

struct HelloResult {
  union {
    ok @0 :Session;
    err @1 :V.Error;
  }
}

struct Session {
  node @0 :Node;
  nodeId @1 :Text;
  version @2 :Text;
}

interface Node {
  status @0 () -> (result :StatusResult);
  install @1 (source :Text) -> (result :PluginResult);
  # `source` is a path on the node's machine: a plugin folder or file.
  plugins @2 () -> (result :PluginsResult);
  call @3 (plugin :Text, method :Text, args :List(V.Value), kwargs :List(V.Entry),
           timeoutMs :UInt64, monitor :P.CallMonitor) -> (result :V.Result);
  # `timeoutMs` 0 means the node's default. Dropping the call (the client
  # going away) cancels it in the plugin; `monitor` hears its progress.
  startPlugin @4 (name :Text) -> (result :PluginResult);
  stopPlugin @5 (name :Text) -> (result :PluginResult);
  shutdown @6 () -> ();
  # Stops every plugin and the daemon; returns before the daemon exits.
  attachUi @7 (handler :V.Function) -> (result :V.Result);
  # Makes `handler` the node's UI provider (the terminal `joy ui` until the
  # browser core exists): the core calls it with (op, plugin, args...) for
  # every UI call of a plugin (alert, prompt, confirm, show_*). The newest
  # attached handler wins; it is detached when its holder goes away.
  uninstall @8 (name :Text) -> (result :PluginResult);
  # Stops the plugin and forgets every version and setting of it.
  rollback @9 (name :Text) -> (result :PluginResult);
  # Runs the version installed before the active one.
}

struct Resources {
  cpus @0 :UInt32;
  memoryBytes @1 :UInt64;
  gpus @2 :UInt32;
}

struct PluginInfo {
  name @0 :Text;
  version @1 :Text;
  type @2 :Text;
  state @3 :Text;
  # stopped | starting | running | stopping | failed
  source @4 :Text;
  sha256 @5 :Text;
  installedAt @6 :Int64;
  # Nanoseconds since the Unix epoch.
  updatedAt @7 :Int64;
  pid @8 :Int32;
  lastError @9 :Text;
  manifest @10 :Text;
  # The validated manifest, as JSON.
  path @11 :Text;
  # Where the node keeps the installed copy.
  calls @12 :UInt64;
  errors @13 :UInt64;
  # Calls finished since the node started, and how many of them failed.
  p50Us @14 :UInt64;
  # Median call latency (about 10 % precision).
  memoryBytes @15 :UInt64;
  # Resident memory of its process.
}

struct NodeStatus {
  nodeId @0 :Text;
  version @1 :Text;
  address @2 :Text;
  startedAt @3 :Int64;
  uptimeMs @4 :UInt64;
  resources @5 :Resources;
  plugins @6 :List(PluginInfo);
  sandbox @7 :Text;
  # The isolation plugins run under; "none" until the sandbox lands.
  pid @8 :Int32;
  home @9 :Text;
  head @10 :Bool;
  services @11 :List(Text);
}

struct StatusResult {
  union {
    ok @0 :NodeStatus;
    err @1 :V.Error;
  }
}

struct PluginResult {
  union {
    ok @0 :PluginInfo;
    err @1 :V.Error;
  }
}

struct PluginsResult {
  union {
    ok @0 :List(PluginInfo);
    err @1 :V.Error;
  }
}
