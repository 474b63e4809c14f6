// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// A message as a peer could send it, read as each of the schemas' roots
// that Joy converts: values, arguments, results, errors, node and cluster
// entries, plugin infos. Conversions validate or fail; nothing crashes.

#include <cstdint>
#include <cstring>
#include <vector>

#include <capnp/serialize.h>

#include "nodes/joyd/node_wire.hpp"
#include "runtime/value_wire.hpp"
#include "schema/node.capnp.h"
#include "schema/plugin.capnp.h"
#include "schema/value.capnp.h"

namespace {

template <class F>
void attempt(F&& f) {
  try {
    f();
  } catch (const kj::Exception&) {
    // A reader refusing malformed data is fine.
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8)
    return 0;
  std::vector<capnp::word> words((size + 7) / 8);
  std::memcpy(words.data(), data, size);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1 << 16;
  options.nestingLimit = 32;
  attempt([&] {
    capnp::FlatArrayMessageReader reader{
      kj::arrayPtr(words.data(), words.size()), options};
    attempt([&] { (void)joy::read_value(reader.getRoot<joy::wire::Value>()); });
    attempt(
      [&] { (void)joy::read_result(reader.getRoot<joy::wire::Result>()); });
    attempt([&] {
      auto call = reader.getRoot<joy::wire::Plugin::CallParams>();
      (void)joy::read_arguments(call.getArgs(), call.getKwargs());
    });
    attempt([&] {
      auto hello = reader.getRoot<joy::wire::HelloResult>();
      if (hello.isErr())
        (void)joy::read_error(hello.getErr());
      else
        (void)hello.getOk().getNodeId();
    });
    attempt(
      [&] { (void)joy::read_entry(reader.getRoot<joy::wire::NodeEntry>()); });
    attempt(
      [&] { (void)joy::read_info(reader.getRoot<joy::wire::PluginInfo>()); });
    attempt([&] {
      auto publish = reader.getRoot<joy::wire::Cluster::PublishParams>();
      (void)joy::read_services(publish.getServices());
      (void)joy::read_texts(publish.getPlugins());
    });
    attempt([&] {
      auto nodes = reader.getRoot<joy::wire::NodeEntries>();
      if (nodes.isOk())
        for (auto n : nodes.getOk())
          (void)joy::read_entry(n);
    });
  });
  return 0;
}
