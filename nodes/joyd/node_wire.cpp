// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/joyd/node_wire.hpp"

namespace joy {

namespace {

template <class Strings>
void set_texts(const std::vector<std::string>& xs, Strings out) {
  for (unsigned i = 0; i < xs.size(); ++i)
    out.set(i, xs[i]);
}

void write_resources(const resources& x, wire::Resources::Builder out) {
  out.setCpus(x.cpus);
  out.setMemoryBytes(x.memory_bytes);
  out.setGpus(x.gpus);
}

resources read_resources(wire::Resources::Reader in) {
  return resources{in.getCpus(), in.getMemoryBytes(), in.getGpus()};
}

} // namespace

void write_info(const plugin_info& x, wire::PluginInfo::Builder out) {
  out.setName(x.record.name.empty() ? x.status.name : x.record.name);
  out.setVersion(x.record.version);
  out.setType(x.record.type);
  out.setState(std::string{to_string(x.status.state)});
  out.setSource(x.record.source);
  out.setSha256(x.record.sha256);
  out.setInstalledAt(x.record.installed_at);
  out.setUpdatedAt(x.record.updated_at);
  out.setPid(x.status.pid);
  out.setLastError(x.status.last_error);
  out.setManifest(x.record.manifest);
  out.setPath(x.record.path);
  out.setCalls(x.status.calls);
  out.setErrors(x.status.errors);
  out.setP50Us(x.status.p50_us);
  out.setMemoryBytes(x.status.memory_bytes);
}

plugin_info read_info(wire::PluginInfo::Reader in) {
  plugin_info x;
  x.record.name = in.getName();
  x.status.name = x.record.name;
  x.record.version = in.getVersion();
  x.record.type = in.getType();
  x.status.state = plugin_state_from(in.getState().cStr());
  x.record.source = in.getSource();
  x.record.sha256 = in.getSha256();
  x.record.installed_at = in.getInstalledAt();
  x.record.updated_at = in.getUpdatedAt();
  x.status.pid = in.getPid();
  x.status.last_error = in.getLastError();
  x.record.manifest = in.getManifest();
  x.record.path = in.getPath();
  x.status.calls = in.getCalls();
  x.status.errors = in.getErrors();
  x.status.p50_us = in.getP50Us();
  x.status.memory_bytes = in.getMemoryBytes();
  return x;
}

void write_status(const node_status& x, wire::NodeStatus::Builder out) {
  out.setNodeId(x.node_id);
  out.setVersion(x.version);
  out.setAddress(x.address);
  out.setStartedAt(x.started_at);
  out.setUptimeMs(x.uptime_ms);
  write_resources(resources{x.cpus, x.memory_bytes, x.gpus},
                  out.initResources());
  auto plugins = out.initPlugins(static_cast<unsigned>(x.plugins.size()));
  for (unsigned i = 0; i < x.plugins.size(); ++i)
    write_info(x.plugins[i], plugins[i]);
  out.setSandbox(x.sandbox);
  out.setPid(x.pid);
  out.setHome(x.home);
  out.setHead(x.head);
  set_texts(x.services,
            out.initServices(static_cast<unsigned>(x.services.size())));
  out.setState("up");
  out.setListen(x.listen);
  out.setTls(x.tls);
  out.setBridge(x.bridge);
  auto gpus = out.initGpuDevices(static_cast<unsigned>(x.gpu_devices.size()));
  for (unsigned i = 0; i < x.gpu_devices.size(); ++i) {
    auto& d = x.gpu_devices[i];
    gpus[i].setIndex(d.index);
    gpus[i].setName(d.name);
    gpus[i].setMemoryBytes(d.memory_bytes);
    gpus[i].setComputeCapability(d.compute_capability);
    gpus[i].setHolder(d.holder);
  }
}

void write_entry(const node_entry& x, wire::NodeEntry::Builder out) {
  out.setNodeId(x.node_id);
  out.setAddress(x.address);
  out.setVersion(x.version);
  write_resources(x.total, out.initResources());
  write_resources(x.committed, out.initCommitted());
  out.setState(x.up ? "up" : "down");
  out.setLastSeen(x.last_seen);
  out.setHead(x.head);
  set_texts(x.plugins,
            out.initPlugins(static_cast<unsigned>(x.plugins.size())));
}

node_entry read_entry(wire::NodeEntry::Reader in) {
  node_entry x;
  x.node_id = in.getNodeId();
  x.address = in.getAddress();
  x.version = in.getVersion();
  x.total = read_resources(in.getResources());
  x.committed = read_resources(in.getCommitted());
  x.up = in.getState() == "up";
  x.last_seen = in.getLastSeen();
  x.head = in.getHead();
  x.plugins = read_texts(in.getPlugins());
  return x;
}

void write_services(const std::vector<service_entry>& xs,
                    capnp::List<wire::ServiceEntry>::Builder out) {
  for (unsigned i = 0; i < xs.size(); ++i) {
    auto o = out[i];
    o.setId(xs[i].id);
    o.setName(xs[i].name);
    o.setType(xs[i].type);
    set_texts(xs[i].methods,
              o.initMethods(static_cast<unsigned>(xs[i].methods.size())));
  }
}

std::vector<service_entry>
read_services(capnp::List<wire::ServiceEntry>::Reader in) {
  std::vector<service_entry> out;
  out.reserve(in.size());
  for (auto x : in)
    out.push_back(service_entry{x.getId(), x.getName(), x.getType(),
                                read_texts(x.getMethods())});
  return out;
}

std::vector<std::string> read_texts(capnp::List<capnp::Text>::Reader in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (auto x : in)
    out.emplace_back(x.cStr(), x.size());
  return out;
}

} // namespace joy
