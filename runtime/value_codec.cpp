// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/value_codec.hpp"

#include <algorithm>
#include <cstring>

#include <kj/debug.h>
#include <kj/refcount.h>

#include "runtime/call_control.hpp"
#include "runtime/function.hpp"
#include "runtime/shared_memory.hpp"

namespace joy {

namespace {

/// The capability for a local function: its calls run in the owner.
class local_callable final : public wire::Callable::Server {
public:
  local_callable(kj_context& ctx, function_ref f)
    : ctx_(ctx), f_(std::move(f)) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    return serve_callable(ctx_, context, [this](arguments in) {
      return ctx_
        .request(f_.impl->target(), unbounded_call, invoke_atom_v, f_,
                 std::move(in.args), std::move(in.kwargs))
        .then(
          [](caf::message msg) { return response_value(msg, "a function"); });
    });
  }

private:
  kj_context& ctx_;
  function_ref f_;
};

// -- large data ---------------------------------------------------------------

/// Bytes a node passes on without reading: their capability, kept.
class relayed_bytes final : public buffer_origin {
public:
  enum class arm { shm, stream };

  relayed_bytes(arm how, kj_thread& kj, uint64_t id, uint64_t offset)
    : how(how), cap(kj, id), offset(offset) {
    // nop
  }

  arm how;
  kept_capability cap;
  uint64_t offset;
};

/// A block another process sent, mapped here. Holding its capability keeps
/// the sender from reusing the block while the bytes are in use.
class mapped_block final : public shm_origin {
public:
  mapped_block(std::shared_ptr<const shm_block> block, kj_thread& kj,
               uint64_t id)
    : block_(std::move(block)), cap_(kj, id) {
    // nop
  }

  const shm_block& block() const noexcept override {
    return *block_;
  }

private:
  std::shared_ptr<const shm_block> block_;
  kept_capability cap_;
};

/// Serves a block: its memfd travels with the capability.
class shm_server final : public wire::SharedMemory::Server {
public:
  shm_server(kj_context& ctx, std::shared_ptr<const shm_origin> origin)
    : ctx_(ctx), origin_(std::move(origin)) {
    // nop
  }

  kj::Maybe<int> getFd() override {
    return origin_->block().fd();
  }

  kj::Promise<void> size(SizeContext context) override {
    context.getResults().setSize(origin_->block().size());
    return kj::READY_NOW;
  }

  kj::Promise<void> stream(StreamContext context) override;

private:
  kj_context& ctx_;
  std::shared_ptr<const shm_origin> origin_;
};

/// Writes bytes into a sink in chunks, up to a window of them in flight, so
/// the pipe stays full without buffering the whole.
///
/// A chunk's message points into the bytes instead of holding a copy: that
/// copy was most of what a node did while relaying a block to another host
/// (B7b). So the bytes must outlive every message that points into them.
/// Each chunk is an ordinary call whose answer waits in the kj context's
/// task set and holds the pump (and its bytes) until it comes; by then the
/// message has been written whole. A cancelled pump sends no more chunks but
/// still waits for those answers. Cap'n Proto's streaming calls (`-> stream`)
/// pace the sender the same way but never say when a message was written.
class byte_pump final : public kj::Refcounted {
public:
  byte_pump(kj_context& ctx, buffer bytes, std::size_t chunk,
            std::size_t window, wire::ByteSink::Client sink)
    : ctx_(ctx),
      bytes_(std::move(bytes)),
      chunk_(chunk),
      window_(std::max(window, chunk)),
      sink_(kj::mv(sink)) {
    // nop
  }

  /// Resolves once every chunk arrived and the sink took `done()`.
  kj::Promise<void> run() {
    KJ_IF_MAYBE (failure, failure_)
      return kj::cp(*failure);
    while (offset_ < bytes_.size() && in_flight_ < window_)
      send_chunk();
    if (offset_ >= bytes_.size() && in_flight_ == 0)
      return sink_.doneRequest().send().ignoreResult();
    auto paf = kj::newPromiseAndFulfiller<void>();
    answered_ = kj::mv(paf.fulfiller);
    return paf.promise.then(
      [self = kj::addRef(*this)]() mutable { return self->run(); });
  }

private:
  void send_chunk() {
    auto n = std::min(chunk_, bytes_.size() - offset_);
    auto req = sink_.writeRequest(capnp::MessageSize{16, 0});
    auto orphanage = capnp::Orphanage::getForMessageContaining(
      wire::ByteSink::WriteParams::Builder{req});
    req.adoptChunk(orphanage.referenceExternalData(capnp::Data::Reader{
      reinterpret_cast<const kj::byte*>(bytes_.data()) + offset_, n}));
    offset_ += n;
    in_flight_ += n;
    ctx_.tasks().add(req.send().then(
      [self = kj::addRef(*this), n](auto&&) mutable {
        self->answer(n, nullptr);
      },
      [self = kj::addRef(*this), n](kj::Exception&& ex) mutable {
        self->answer(n, kj::mv(ex));
      }));
  }

  void answer(std::size_t n, kj::Maybe<kj::Exception> failure) {
    in_flight_ -= n;
    if (failure_ == nullptr)
      failure_ = kj::mv(failure);
    KJ_IF_MAYBE (waiting, answered_) {
      auto fulfiller = kj::mv(*waiting);
      answered_ = nullptr;
      fulfiller->fulfill();
    }
  }

  kj_context& ctx_;
  buffer bytes_;
  std::size_t chunk_;
  std::size_t window_;
  wire::ByteSink::Client sink_;
  std::size_t offset_ = 0;
  std::size_t in_flight_ = 0;
  kj::Maybe<kj::Exception> failure_;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> answered_;
};

/// Serves bytes as a stream, to any number of readers.
class byte_source final : public wire::ByteSource::Server {
public:
  byte_source(kj_context& ctx, buffer bytes)
    : ctx_(ctx), bytes_(std::move(bytes)) {
    // nop
  }

  kj::Promise<void> pipeTo(PipeToContext context) override {
    context.allowCancellation();
    auto& policy = ctx_.large_data();
    auto pump = kj::refcounted<byte_pump>(
      ctx_, bytes_, std::max<std::size_t>(policy.chunk_bytes, 4096),
      policy.stream_window_bytes, context.getParams().getSink());
    return pump->run().attach(kj::mv(pump));
  }

private:
  kj_context& ctx_;
  buffer bytes_;
};

kj::Promise<void> shm_server::stream(StreamContext context) {
  auto params = context.getParams();
  auto& block = origin_->block();
  auto offset = params.getOffset();
  auto size = params.getSize();
  KJ_REQUIRE(offset <= block.size() && size <= block.size() - offset,
             "range outside the block", offset, size, block.size());
  context.getResults().setSource(kj::heap<byte_source>(
    ctx_, buffer::in(origin_, block.data() + offset, size)));
  return kj::READY_NOW;
}

/// Where a stream lands: memory of the declared size, filled in order.
/// Once its reader gave up (`closed`), the memory is let go at once, and
/// chunks still on their way are refused instead of written: the far side
/// may never release the sink, and the memory may serve someone else.
struct sink_state {
  std::byte* dst = nullptr;
  uint64_t size = 0;
  uint64_t written = 0;
  bool done = false;
  bool closed = false;
  buffer memory;
};

class byte_sink final : public wire::ByteSink::Server {
public:
  explicit byte_sink(std::shared_ptr<sink_state> st) : st_(std::move(st)) {
    // nop
  }

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    if (st_->closed)
      return KJ_EXCEPTION(DISCONNECTED, "nobody reads this stream any more");
    KJ_REQUIRE(!st_->done, "stream written after done()");
    KJ_REQUIRE(chunk.size() <= st_->size - st_->written,
               "stream longer than the size it declared");
    std::memcpy(st_->dst + st_->written, chunk.begin(), chunk.size());
    st_->written += chunk.size();
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    st_->done = true;
    return kj::READY_NOW;
  }

private:
  std::shared_ptr<sink_state> st_;
};

caf::error not_here(const buffer& b) {
  return make_error(errc::disconnected,
                    std::to_string(b.size())
                      + " bytes of binary data are no longer reachable");
}

} // namespace

caf::error error_from_exception(const kj::Exception& ex,
                                const std::string& what) {
  switch (ex.getType()) {
    case kj::Exception::Type::DISCONNECTED:
      return make_error(errc::disconnected,
                        what + " went away during the call");
    case kj::Exception::Type::OVERLOADED:
      return make_error(errc::overloaded, what + " is overloaded");
    case kj::Exception::Type::UNIMPLEMENTED:
      return make_error(errc::unimplemented, what + " does not implement this: "
                                               + ex.getDescription().cStr());
    default:
      return make_error(errc::plugin_error,
                        what + " failed: " + ex.getDescription().cStr());
  }
}

namespace {

/// Maps `size` bytes at `offset` of a received block read-only (from the
/// policy's cache of mappings where it has one), keeping its capability
/// `hook` as long as the bytes are in use.
caf::expected<buffer> map_received(kj_context& ctx,
                                   kj::Own<capnp::ClientHook> hook, int fd,
                                   uint64_t offset, std::size_t size) {
  auto& policy = ctx.large_data();
  auto block = policy.mappings ? policy.mappings->map(fd, offset, size)
                               : shm_block::map(fd, offset, size);
  if (!block)
    return std::move(block.error());
  auto* data = (*block)->data() + offset;
  auto id = ctx.keep(capnp::Capability::Client{kj::mv(hook)});
  return buffer::in(
    std::make_shared<mapped_block>(std::move(*block), ctx.thread(), id), data,
    size);
}

} // namespace

caf::error value_codec::write_binary(const buffer& b,
                                     wire::Binary::Builder out) {
  auto& policy = ctx_.large_data();
  auto& origin = b.origin();
  if (auto* relay = dynamic_cast<const relayed_bytes*>(origin.get())) {
    auto* cap = &relay->cap.thread() == &ctx_.thread()
                  ? ctx_.capability(relay->cap.id())
                  : nullptr;
    if (cap == nullptr)
      return not_here(b);
    if (relay->how == relayed_bytes::arm::stream) {
      auto st = out.initStream();
      st.setSize(b.size());
      st.setSource(cap->castAs<wire::ByteSource>());
      return caf::none;
    }
    if (!fd_passing_) {
      // Leaving the host (a TCP link between nodes): the bytes go by the
      // stream arm, read in chunks from the block mapped here; the node
      // holds no copy of them.
      auto hook = capnp::ClientHook::from(cap->castAs<wire::SharedMemory>());
      KJ_IF_MAYBE (fd, hook->getFd()) {
        auto mapped
          = map_received(ctx_, kj::mv(hook), *fd, relay->offset, b.size());
        if (!mapped)
          return std::move(mapped.error());
        auto st = out.initStream();
        st.setSize(b.size());
        st.setSource(kj::heap<byte_source>(ctx_, std::move(*mapped)));
        return caf::none;
      }
      return wire_hooks::write_binary(b, out); // its clear error
    }
    auto shm = out.initShm();
    shm.setBlock(cap->castAs<wire::SharedMemory>());
    shm.setOffset(relay->offset);
    shm.setSize(b.size());
    return caf::none;
  }
  if (b.empty() || !b.readable())
    return wire_hooks::write_binary(b, out);
  auto shared = std::dynamic_pointer_cast<const shm_origin>(origin);
  if (!shared && b.size() > max_inline_bytes && fd_passing_ && policy.pool) {
    // One copy into shared memory beats streaming it.
    auto copy = policy.pool->copy_of(b);
    if (!copy)
      return copy.error();
    return write_binary(*copy, out);
  }
  if (shared && fd_passing_ && b.size() >= policy.shm_min_bytes) {
    auto& block = shared->block();
    auto shm = out.initShm();
    shm.setBlock(kj::heap<shm_server>(ctx_, std::move(shared)));
    shm.setOffset(static_cast<uint64_t>(b.data() - block.data()));
    shm.setSize(b.size());
    return caf::none;
  }
  if (b.size() <= max_inline_bytes)
    return wire_hooks::write_binary(b, out);
  auto st = out.initStream();
  st.setSize(b.size());
  st.setSource(kj::heap<byte_source>(ctx_, b));
  return caf::none;
}

caf::expected<buffer> value_codec::read_binary(wire::Binary::Reader in) {
  auto& policy = ctx_.large_data();
  switch (in.which()) {
    case wire::Binary::INLINE:
      return wire_hooks::read_binary(in);
    case wire::Binary::SHM: {
      auto shm = in.getShm();
      if (!fd_passing_)
        return wire_hooks::read_binary(in);
      auto size = shm.getSize();
      auto offset = shm.getOffset();
      if (size == 0)
        return buffer{};
      if (policy.relay) {
        auto id = ctx_.keep(shm.getBlock());
        return buffer::in(std::make_shared<relayed_bytes>(
                            relayed_bytes::arm::shm, ctx_.thread(), id, offset),
                          nullptr, size);
      }
      auto hook = capnp::ClientHook::from(shm.getBlock());
      KJ_IF_MAYBE (fd, hook->getFd())
        return map_received(ctx_, kj::mv(hook), *fd, offset, size);
      return make_error(errc::protocol_error,
                        "a shared-memory block arrived without its file "
                        "descriptor (more blocks in one message than the "
                        "link passes fds?)");
    }
    case wire::Binary::STREAM: {
      auto st = in.getStream();
      auto size = st.getSize();
      if (size == 0)
        return buffer{};
      if (policy.relay) {
        if (auto dst = landing_block(size))
          return pull(st.getSource(), size, std::move(*dst));
        auto id = ctx_.keep(st.getSource());
        return buffer::in(std::make_shared<relayed_bytes>(
                            relayed_bytes::arm::stream, ctx_.thread(), id, 0),
                          nullptr, size);
      }
      if (size > policy.max_stream_bytes)
        return make_error(errc::too_large,
                          "a stream of " + std::to_string(size)
                            + " bytes exceeds this process's limit of "
                            + std::to_string(policy.max_stream_bytes));
      // Into shared memory where there is a pool: sending it on is free.
      auto dst = policy.pool ? policy.pool->allocate(size)
                             : writable_buffer::on_heap(size);
      if (!dst)
        return std::move(dst.error());
      return pull(st.getSource(), size, std::move(*dst));
    }
  }
  return make_error(errc::protocol_error, "unknown binary arm");
}

std::optional<writable_buffer> value_codec::landing_block(uint64_t size) {
  auto& policy = ctx_.large_data();
  if (!land_ || !policy.landing || size > policy.landing_max_bytes
      || policy.landing->stats().bytes_in_use > policy.landing_max_bytes - size)
    return std::nullopt;
  // A failed allocation relays the stream after all; so does a block that,
  // rounded up or reused, takes the pool past its budget (it goes back).
  auto dst = policy.landing->allocate(size, tenant_);
  if (!dst || policy.landing->stats().bytes_in_use > policy.landing_max_bytes)
    return std::nullopt;
  return std::move(*dst);
}

caf::expected<buffer> value_codec::pull(wire::ByteSource::Client source,
                                        uint64_t size, writable_buffer dst) {
  auto state = std::make_shared<sink_state>();
  state->dst = dst.data();
  state->size = size;
  state->memory = std::move(dst).freeze();
  auto result = state->memory;
  auto req = source.pipeToRequest();
  req.setSink(kj::heap<byte_sink>(state));
  pending_.push_back(req.send()
                       .then([state](auto&&) {
                         KJ_REQUIRE(
                           state->done && state->written == state->size,
                           "stream ended early", state->written, state->size);
                       })
                       .attach(kj::defer([state] {
                         // Arrived, failed or given up: no more writes.
                         state->closed = true;
                         state->dst = nullptr;
                         state->memory = buffer{};
                       })));
  return result;
}

kj::Promise<caf::error> value_codec::settle() {
  if (pending_.empty())
    return caf::error{};
  auto all = kj::heapArrayBuilder<kj::Promise<void>>(pending_.size());
  for (auto& p : pending_)
    all.add(kj::mv(p));
  pending_.clear();
  return kj::joinPromises(all.finish())
    .then([] { return caf::error{}; },
          [](kj::Exception&& ex) {
            return error_from_exception(ex, "a stream of binary data");
          });
}

caf::actor kj_callable_function::target() const {
  return {};
}

bool kj_callable_function::invoke(kj_context&, value_list&, value_map&,
                                  reply_handle&) const {
  return false;
}

kj::Promise<void> serve_callable(
  kj_context& ctx,
  capnp::CallContext<wire::Callable::CallParams, wire::Callable::CallResults>
    context,
  kj::Function<kj::Promise<caf::expected<value>>(arguments)> fn) {
  context.allowCancellation();
  value_codec codec{ctx};
  auto params = context.getParams();
  auto in = read_arguments(params.getArgs(), params.getKwargs(), &codec);
  return codec.finish(std::move(in))
    .then([&ctx, context, fn = kj::mv(fn)](
            caf::expected<arguments> in) mutable -> kj::Promise<void> {
      if (!in) {
        write_error(in.error(), context.getResults().initResult().initErr());
        return kj::READY_NOW;
      }
      return fn(std::move(*in))
        .then([&ctx, context](caf::expected<value> res) mutable {
          value_codec codec{ctx};
          write_result(res, context.getResults().initResult(), &codec);
        });
    });
}

caf::expected<wire::Callable::Client> callable_for(kj_context& ctx,
                                                   const function_ref& f) {
  if (auto* remote = dynamic_cast<const remote_function*>(f.impl.get())) {
    auto* cap = &remote->thread() == &ctx.thread()
                  ? ctx.capability(remote->capability())
                  : nullptr;
    if (cap == nullptr)
      return make_error(errc::disconnected,
                        "function '" + f.name + "' is no longer reachable");
    return cap->castAs<wire::Callable>();
  }
  if (dynamic_cast<const local_function*>(f.impl.get()) != nullptr)
    return wire::Callable::Client{kj::heap<local_callable>(ctx, f)};
  if (auto* own = dynamic_cast<const kj_callable_function*>(f.impl.get()))
    return own->callable(ctx);
  return make_error(errc::invalid_argument,
                    "function '" + f.name
                      + "' cannot be sent to another process");
}

caf::error value_codec::write_function(const function_ref& f,
                                       wire::Function::Builder out) {
  auto cap = callable_for(ctx_, f);
  if (!cap)
    return cap.error();
  out.setName(f.name);
  auto params = out.initParams(static_cast<unsigned>(f.params.size()));
  for (unsigned i = 0; i < f.params.size(); ++i)
    params.set(i, f.params[i]);
  out.setCallable(kj::mv(*cap));
  return caf::none;
}

caf::expected<function_ref>
value_codec::read_function(wire::Function::Reader in) {
  auto id = ctx_.keep(in.getCallable());
  function_ref f{std::make_shared<const remote_function>(ctx_.thread(), id),
                 in.getName(),
                 {}};
  for (auto p : in.getParams())
    f.params.emplace_back(p.cStr());
  return f;
}

namespace {

/// Readable bytes for relayed ones: mapped (shm) or pulled (stream).
caf::expected<buffer> readable_bytes(kj_context& ctx, const buffer& b,
                                     std::vector<kj::Promise<void>>& pending) {
  auto* relay = dynamic_cast<const relayed_bytes*>(b.origin().get());
  if (relay == nullptr || b.readable())
    return b;
  auto* cap = &relay->cap.thread() == &ctx.thread()
                ? ctx.capability(relay->cap.id())
                : nullptr;
  if (cap == nullptr)
    return not_here(b);
  if (relay->how == relayed_bytes::arm::shm) {
    auto hook = capnp::ClientHook::from(cap->castAs<wire::SharedMemory>());
    KJ_IF_MAYBE (fd, hook->getFd())
      return map_received(ctx, kj::mv(hook), *fd, relay->offset, b.size());
    // The descriptor stayed on another host: ask the block's owner for
    // the bytes instead.
  }
  if (b.size() > ctx.large_data().max_stream_bytes)
    return make_error(errc::too_large, "a stream of " + std::to_string(b.size())
                                         + " bytes is over this node's limit");
  auto dst = writable_buffer::on_heap(b.size());
  if (!dst)
    return std::move(dst.error());
  auto state = std::make_shared<sink_state>();
  state->dst = dst->data();
  state->size = b.size();
  auto check = [state](auto&&) {
    KJ_REQUIRE(state->done && state->written == state->size,
               "stream ended early", state->written, state->size);
  };
  if (relay->how == relayed_bytes::arm::shm) {
    auto ranged = cap->castAs<wire::SharedMemory>().streamRequest();
    ranged.setOffset(relay->offset);
    ranged.setSize(b.size());
    pending.push_back(
      ranged.send()
        .then([state](capnp::Response<wire::SharedMemory::StreamResults> r) {
          auto req = r.getSource().pipeToRequest();
          req.setSink(kj::heap<byte_sink>(state));
          return req.send().ignoreResult();
        })
        .then([state] {
          KJ_REQUIRE(state->done && state->written == state->size,
                     "stream ended early", state->written, state->size);
        }));
    return std::move(*dst).freeze();
  }
  auto req = cap->castAs<wire::ByteSource>().pipeToRequest();
  req.setSink(kj::heap<byte_sink>(state));
  pending.push_back(req.send().then(check));
  return std::move(*dst).freeze();
}

caf::expected<value> readable_value(kj_context& ctx, const value& x,
                                    std::vector<kj::Promise<void>>& pending,
                                    std::size_t depth) {
  if (depth > max_value_depth)
    return make_error(errc::too_large, "value nests too deep");
  if (auto* b = x.as_bytes()) {
    auto r = readable_bytes(ctx, *b, pending);
    if (!r)
      return std::move(r.error());
    return value{std::move(*r)};
  }
  if (auto* a = x.as_ndarray()) {
    auto r = readable_bytes(ctx, a->data, pending);
    if (!r)
      return std::move(r.error());
    auto copy = *a;
    copy.data = std::move(*r);
    return value{std::move(copy)};
  }
  if (auto* l = x.as_list()) {
    value_list out;
    out.reserve(l->size());
    for (auto& y : *l) {
      auto r = readable_value(ctx, y, pending, depth + 1);
      if (!r)
        return r;
      out.push_back(std::move(*r));
    }
    return value{std::move(out)};
  }
  if (auto* m = x.as_map()) {
    value_map out;
    out.reserve(m->size());
    for (auto& [k, y] : *m) {
      auto r = readable_value(ctx, y, pending, depth + 1);
      if (!r)
        return r;
      out.append_unchecked(k, std::move(*r));
    }
    return value{std::move(out)};
  }
  return x;
}

} // namespace

bool has_unreadable_bytes(const value& x) {
  if (auto* b = x.as_bytes())
    return !b->readable();
  if (auto* a = x.as_ndarray())
    return !a->data.readable();
  if (auto* l = x.as_list())
    return std::any_of(l->begin(), l->end(),
                       [](const value& y) { return has_unreadable_bytes(y); });
  if (auto* m = x.as_map())
    return std::any_of(m->begin(), m->end(), [](const auto& kv) {
      return has_unreadable_bytes(kv.second);
    });
  return false;
}

void serve_readable_values(kj_context& ctx) {
  ctx.on_request([](kj_context& ctx, caf::message& msg, reply_handle& reply) {
    if (!msg.match_elements<fetch_atom, value>())
      return false;
    std::vector<kj::Promise<void>> pending;
    auto x = readable_value(ctx, msg.get_as<value>(1), pending, 0);
    if (!x || pending.empty()) {
      if (x)
        reply.deliver_value(std::move(*x));
      else
        reply.deliver(std::move(x.error()));
      return true;
    }
    auto all = kj::heapArrayBuilder<kj::Promise<void>>(pending.size());
    for (auto& p : pending)
      all.add(kj::mv(p));
    auto shared = std::make_shared<reply_handle>(std::move(reply));
    ctx.tasks().add(kj::joinPromises(all.finish())
                      .then(
                        [shared, x = std::move(*x)]() mutable {
                          shared->deliver_value(std::move(x));
                        },
                        [shared](kj::Exception&& ex) {
                          shared->deliver(error_from_exception(
                            ex, "the stream of relayed bytes"));
                        }));
    return true;
  });
}

void serve_remote_functions(kj_context& ctx) {
  ctx.on_request([](kj_context& ctx, caf::message& msg, reply_handle& reply) {
    if (!msg.match_elements<invoke_atom, function_ref, value_list, value_map>())
      return false;
    auto f = msg.get_as<function_ref>(1);
    if (auto* own = dynamic_cast<const kj_callable_function*>(f.impl.get()))
      if (own->invoke(ctx, msg.content().get_mutable_as<value_list>(2),
                      msg.content().get_mutable_as<value_map>(3), reply))
        return true;
    // A capability kept here, or a function served on this thread.
    auto cap = callable_for(ctx, f);
    if (!cap) {
      reply.deliver(std::move(cap.error()));
      return true;
    }
    value_codec codec{ctx};
    auto req = cap->callRequest();
    auto& args = msg.get_as<value_list>(2);
    auto& kwargs = msg.get_as<value_map>(3);
    if (auto err = write_list(
          args, req.initArgs(static_cast<unsigned>(args.size())), &codec)) {
      reply.deliver(std::move(err));
      return true;
    }
    if (auto err = write_map(
          kwargs, req.initKwargs(static_cast<unsigned>(kwargs.size())),
          &codec)) {
      reply.deliver(std::move(err));
      return true;
    }
    auto name = f.name;
    ctx.tasks().add(
      req.send()
        .then(
          [&ctx](capnp::Response<wire::Callable::CallResults> resp) {
            value_codec codec{ctx};
            return codec.finish(read_result(resp.getResult(), &codec));
          },
          [name](kj::Exception&& ex) -> caf::expected<value> {
            return error_from_exception(ex, "function '" + name + "'");
          })
        .then([reply = std::move(reply)](caf::expected<value> res) mutable {
          reply.deliver(std::move(res));
        }));
    return true;
  });
}

} // namespace joy
