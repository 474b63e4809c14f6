@0xa863bb8687a12c8d;
# What a plugin process and its node exchange (DESIGN §5, §7). The node serves
# `Host` as the bootstrap capability on the plugin's socket (fd 3); the plugin
# calls `hello` first and hands over its `Plugin`. Append-only.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("joy::wire");

using V = import "value.capnp";

interface Host {
  hello @0 (version :UInt32, plugin :Plugin, name :Text) -> (result :Welcome);
  # `version` is joy::protocol_version; a mismatch is an error result.
}

struct Welcome {
  union {
    ok @0 :PluginSession;
    err @1 :V.Error;
  }
}

struct PluginSession {
  api @0 :Api;
  identity @1 :PluginIdentity;
}

struct PluginIdentity {
  plugin @0 :Text;
  node @1 :Text;
  workspace @2 :Text;
}

interface Plugin {
  call @0 (service :Text, method :Text, args :List(V.Value), kwargs :List(V.Entry),
           timeoutMs :UInt64, monitor :CallMonitor, callId :UInt64)
       -> (result :V.Result);
  # `timeoutMs` is the caller's remaining budget (0 = none): the deadline
  # travels with the call so the callee can give up when the caller has.
  # A caller that gives up cancels the call (Cap'n Proto's Finish); the
  # callee sees it as its cancellation signal. The callee's progress goes to
  # `monitor` if there is one, else, for a node's call (`callId` not 0), to
  # `Api.callProgress`; each report renews the caller's budget. The node
  # uses the id: a capability per call costs an export, an import and a
  # Release message on every call.
  setup @1 () -> (result :V.Result);
  run @2 (ctx :V.Value) -> (result :V.Result);
  exit @3 () -> ();
  # Asks the plugin to finish; it exits when its connection closes.
  describe @4 () -> (result :V.Result);
  # The plugin's exported methods, as a Value.
}

interface CallMonitor {
  # What the caller of a long call hears while it runs.
  progress @0 (fraction :Float64, message :Text) -> ();
}

interface Api {
  # The ImJoy `api` as the node offers it to one plugin; the capability is the
  # plugin's identity (every request knows its caller). Grows append-only.
  log @0 (level :LogLevel, message :Text) -> ();
  request @1 (op :ApiOp, args :List(V.Value), kwargs :List(V.Entry)) -> (result :V.Result);
  # One ImJoy api call; `args` are the call's positional arguments in the
  # order docs/plugins.md gives for each op.
  callProgress @2 (callId :UInt64, fraction :Float64, message :Text) -> ();
  # Progress of the node's call `callId` to this plugin (see Plugin.call).
}

enum ApiOp {
  # The ImJoy api calls a plugin can make (docs/plugins.md has their
  # arguments and results). Append-only; a node that does not know an op
  # answers `unimplemented`.
  alert @0;
  prompt @1;
  confirm @2;
  showMessage @3;
  showProgress @4;
  showStatus @5;
  registerService @6;
  unregisterService @7;
  getService @8;
  listServices @9;
  getPlugin @10;
  call @11;
  emit @12;
  on @13;
  off @14;
  getConfig @15;
  setConfig @16;
  progress @17;
  createWindow @18;
  callService @19;
  # get_service(args[0]) then its method args[1] with the rest: one round
  # trip, answered on the node's kj thread when the service is its own.
}

enum LogLevel {
  debug @0;
  info @1;
  warning @2;
  error @3;
}
