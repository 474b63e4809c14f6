// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/rpc_link.hpp"

#include <capnp/message.h>

namespace joy {

namespace {

capnp::RpcSystem<capnp::rpc::twoparty::VatId>
make_rpc(capnp::TwoPartyVatNetwork& network,
         kj::Maybe<capnp::Capability::Client> bootstrap) {
  KJ_IF_MAYBE (cap, bootstrap) {
    return capnp::makeRpcServer(network, kj::mv(*cap));
  }
  return capnp::makeRpcClient(network);
}

} // namespace

kj::Own<rpc_link> rpc_link::serve(kj::Own<kj::AsyncCapabilityStream> stream,
                                  stream_limits limits,
                                  capnp::Capability::Client bootstrap) {
  return kj::heap<rpc_link>(kj::mv(stream), limits,
                            capnp::rpc::twoparty::Side::SERVER,
                            kj::mv(bootstrap));
}

kj::Own<rpc_link> rpc_link::connect(kj::Own<kj::AsyncCapabilityStream> stream,
                                    stream_limits limits) {
  return kj::heap<rpc_link>(kj::mv(stream), limits,
                            capnp::rpc::twoparty::Side::CLIENT, nullptr);
}

rpc_link::rpc_link(kj::Own<kj::AsyncCapabilityStream> stream,
                   stream_limits limits, capnp::rpc::twoparty::Side side,
                   kj::Maybe<capnp::Capability::Client> bootstrap)
  : stream_(kj::heap<validating_stream>(kj::mv(stream), limits)),
    network_(*stream_, limits.max_fds, side, reader_options(limits)),
    rpc_(make_rpc(network_, kj::mv(bootstrap))) {
  rpc_.setFlowLimit(limits.flow_limit_words);
}

rpc_link::~rpc_link() noexcept(false) {
  // nop
}

capnp::Capability::Client rpc_link::bootstrap() {
  capnp::MallocMessageBuilder msg{8};
  auto vat = msg.initRoot<capnp::rpc::twoparty::VatId>();
  vat.setSide(network_.getSide() == capnp::rpc::twoparty::Side::CLIENT
                ? capnp::rpc::twoparty::Side::SERVER
                : capnp::rpc::twoparty::Side::CLIENT);
  return rpc_.bootstrap(vat);
}

} // namespace joy
