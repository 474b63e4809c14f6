@0x9b76d0b58d220838;
# What the CLI (over joyd.sock) and other nodes (over TCP, docs/cluster.md)
# call on a node. The bootstrap capability is a Gate: nothing but the
# handshake is reachable before `hello` succeeds. Append-only.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("joy::wire");

using V = import "value.capnp";
using P = import "plugin.capnp";

interface Gate {
  hello @0 (version :UInt32, client :Text, token :Text) -> (result :HelloResult);
  # `version` is joy::protocol_version; a mismatch is an error result.
  # `token` is the cluster token, required over TCP (the local socket checks
  # the peer's uid instead). `client` names the caller: a node id for nodes.
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
  cluster @3 :Cluster;
  # The cluster's directory: only a head's sessions over TCP carry it.
  head @4 :Bool;
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
  getService @10 (id :Text) -> (result :V.Result);
  # The object of a service this node provides (its methods are
  # capabilities of this node, so calls come here directly).
  nodes @11 () -> (result :NodesResult);
  # Every node of the cluster this node knows, itself first; nodes that
  # are down carry only what the directory remembers of them.
  installOn @12 (node :Text, source :Text) -> (result :PluginResult);
  # Installs on a node of the cluster ("" lets the head place it by the
  # manifest's `resources`). A folder on this node's machine travels to it
  # packed (installArchive); URLs and manifest references go as they are,
  # for the target to fetch.
  installArchive @13 (source :Text, archive :V.Binary) -> (result :PluginResult);
  # Installs the plugin folder packed in `archive` (`source` is what the
  # registry records as its origin).
}

interface Cluster {
  # The head's directory (DESIGN §5): where every node, plugin and service
  # lives. Workers reach it over a control connection that carries nothing
  # of size, so heartbeats never queue behind a transfer.
  join @0 (node :NodeEntry) -> (result :JoinResult);
  # A worker (re)joins: recorded durably, marked up.
  heartbeat @1 (nodeId :Text, seq :UInt64) -> (epoch :UInt64);
  # `epoch` changes whenever membership does; a worker that sees a new
  # one reads `nodes`.
  publish @2 (nodeId :Text, plugins :List(Text), services :List(ServiceEntry),
              committed :Resources) -> (result :V.Result);
  # Replaces everything the directory holds of that node; `committed` is
  # what the manifests of its plugins ask for, summed.
  locate @3 (id :Text, plugin :Bool) -> (result :LocateResult);
  # The node of a plugin (by name) or a service (by id).
  nodes @4 () -> (result :NodeEntries);
  listServices @5 (query :V.Value) -> (result :V.Result);
  # Descriptors of matching services on every node that is up.
  place @6 (cpus :UInt32, memoryBytes :UInt64, gpus :UInt32) -> (result :LocateResult);
  # The node automatic placement picks for a plugin needing that much.
  ui @7 (op :Text, plugin :Text, args :List(V.Value)) -> (result :V.Result);
  # A UI call (alert, prompt, ...) of a worker's plugin when the worker has
  # no UI of its own: the head's UI answers it (the browser core through a
  # bridge, or `joy ui`). Arguments are plain data.
  leave @8 (nodeId :Text) -> ();
  # A worker that stops on purpose (`joy stop`) leaves the directory: the
  # head forgets it, where a node that went silent stays listed as down.
}

struct NodeEntry {
  nodeId @0 :Text;
  address @1 :Text;
  # host:port where its peers reach it.
  version @2 :Text;
  resources @3 :Resources;
  state @4 :Text;
  # up | down
  lastSeen @5 :Int64;
  # Nanoseconds since the Unix epoch.
  head @6 :Bool;
  plugins @7 :List(Text);
  committed @8 :Resources;
  # What the manifests of its plugins ask for, summed.
}

struct ServiceEntry {
  id @0 :Text;
  name @1 :Text;
  type @2 :Text;
  methods @3 :List(Text);
}

struct Location {
  nodeId @0 :Text;
  address @1 :Text;
}

struct JoinResult {
  union {
    ok @0 :UInt64;
    # The membership epoch.
    err @1 :V.Error;
  }
}

struct LocateResult {
  union {
    ok @0 :Location;
    err @1 :V.Error;
  }
}

struct NodeEntries {
  union {
    ok @0 :List(NodeEntry);
    err @1 :V.Error;
  }
}

struct NodesResult {
  union {
    ok @0 :List(NodeStatus);
    err @1 :V.Error;
  }
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
  state @12 :Text;
  # "up", or "down" (then only the directory's memory of the node).
  listen @13 :Text;
  # host:port of its cluster listener, "" without one.
  tls @14 :Bool;
  bridge @15 :Text;
  # The URL of its bridge (browser core and hypha-rpc), "" without one.
  gpuDevices @16 :List(GpuDevice);
  # Its GPUs, and which plugin holds each.
  headLink @17 :HeadLink;
  # A worker's link to its head, as that worker sees it; unset on a head.
}

struct HeadLink {
  address @0 :Text;
  joined @1 :Bool;
  error @2 :Text;
  # Why the last attempt to join failed, or how the head was lost; "" once
  # joined.
}

struct GpuDevice {
  index @0 :UInt32;
  name @1 :Text;
  # As CUDA names it; "(as told)" for a count given with --gpus.
  memoryBytes @2 :UInt64;
  computeCapability @3 :Text;
  # "9.0"; "" when unknown.
  holder @4 :Text;
  # The plugin it was given to, "" while free.
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
