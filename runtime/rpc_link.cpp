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

/// A TCP or TLS stream, which carries bytes only.
class fdless_stream final : public kj::AsyncCapabilityStream {
public:
  explicit fdless_stream(kj::Own<kj::AsyncIoStream> inner)
    : inner_(kj::mv(inner)) {
    // nop
  }

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes,
                              size_t max_bytes) override {
    return inner_->tryRead(buffer, min_bytes, max_bytes);
  }

  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner_->write(buffer, size);
  }

  kj::Promise<void>
  write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }

  kj::Promise<void> whenWriteDisconnected() override {
    return inner_->whenWriteDisconnected();
  }

  void shutdownWrite() override {
    inner_->shutdownWrite();
  }

  void abortRead() override {
    inner_->abortRead();
  }

  kj::Promise<void>
  writeWithFds(kj::ArrayPtr<const kj::byte> data,
               kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> more,
               kj::ArrayPtr<const int> fds) override {
    KJ_REQUIRE(fds.size() == 0, "this link passes no file descriptors");
    if (more.size() == 0)
      return inner_->write(data.begin(), data.size());
    auto pieces
      = kj::heapArrayBuilder<kj::ArrayPtr<const kj::byte>>(more.size() + 1);
    pieces.add(data);
    pieces.addAll(more);
    auto array = pieces.finish();
    auto promise = inner_->write(array);
    return promise.attach(kj::mv(array));
  }

  kj::Promise<ReadResult> tryReadWithFds(void* buffer, size_t min_bytes,
                                         size_t max_bytes, kj::AutoCloseFd*,
                                         size_t) override {
    return inner_->tryRead(buffer, min_bytes, max_bytes).then([](size_t n) {
      return ReadResult{n, 0};
    });
  }

  kj::Promise<void>
  writeWithStreams(kj::ArrayPtr<const kj::byte>,
                   kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>>,
                   kj::Array<kj::Own<kj::AsyncCapabilityStream>>) override {
    KJ_UNIMPLEMENTED("this link passes no streams");
  }

  kj::Promise<ReadResult>
  tryReadWithStreams(void*, size_t, size_t, kj::Own<kj::AsyncCapabilityStream>*,
                     size_t) override {
    KJ_UNIMPLEMENTED("this link passes no streams");
  }

private:
  kj::Own<kj::AsyncIoStream> inner_;
};

} // namespace

kj::Own<kj::AsyncCapabilityStream>
rpc_link::without_fds(kj::Own<kj::AsyncIoStream> stream) {
  return kj::heap<fdless_stream>(kj::mv(stream));
}

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
