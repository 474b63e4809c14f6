// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The stream arm's sender over a real link (a socketpair and Cap'n Proto):
// how many chunks it keeps in flight, and how long it keeps the bytes its
// chunk messages point into. Both ends run on one kj thread; the test's
// sink holds the answers to writes, which is what paces the sender.

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "runtime/kj_thread.hpp"
#include "runtime/large_data.hpp"
#include "runtime/rpc_link.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/system_config.hpp"
#include "runtime/value_codec.hpp"

using namespace joy;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t chunk = std::size_t{1} << 20;
constexpr std::size_t window = 4 * chunk;
/// Over the inline cap, so the codec sends the bytes by the stream arm.
constexpr std::size_t total = max_inline_bytes + 3 * chunk + 12345;
constexpr std::size_t chunks = (total + chunk - 1) / chunk;

/// Heap bytes that say when the last holder let go of them.
struct tracked_bytes final : buffer_origin {
  explicit tracked_bytes(std::promise<void>& released) : released(released) {
    for (std::size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = static_cast<std::byte>(i * 7 + i / 4096);
  }
  ~tracked_bytes() override {
    released.set_value();
  }
  std::vector<std::byte> bytes = std::vector<std::byte>(total);
  std::promise<void>& released;
};

/// Hands out one stream source, once; `size()` is a round trip that tells
/// the test the far end has handled everything sent before it.
class source_giver final : public wire::SharedMemory::Server {
public:
  explicit source_giver(wire::ByteSource::Client source)
    : source_(kj::mv(source)) {
    // nop
  }

  kj::Promise<void> stream(StreamContext context) override {
    KJ_IF_MAYBE (s, source_) {
      context.getResults().setSource(kj::mv(*s));
      source_ = nullptr;
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> size(SizeContext) override {
    return kj::READY_NOW;
  }

private:
  kj::Maybe<wire::ByteSource::Client> source_;
};

/// Where the test's sink is at; read on the test thread only after a
/// future set on the kj thread.
struct sink_log {
  std::vector<std::byte> got;
  std::size_t writes = 0;
  std::size_t most_held = 0;
  bool done = false;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> held;
  /// Set once this many answers are held.
  std::size_t hold_until = 0;
  std::promise<void> holding;
  /// Answer as soon as all the chunks still to come are held.
  bool answer_when_full = false;
};

class held_sink final : public wire::ByteSink::Server {
public:
  explicit held_sink(std::shared_ptr<sink_log> log) : log_(std::move(log)) {
    // nop
  }

  kj::Promise<void> write(WriteContext context) override {
    auto data = context.getParams().getChunk();
    log_->got.insert(log_->got.end(),
                     reinterpret_cast<const std::byte*>(data.begin()),
                     reinterpret_cast<const std::byte*>(data.end()));
    ++log_->writes;
    auto paf = kj::newPromiseAndFulfiller<void>();
    log_->held.push_back(kj::mv(paf.fulfiller));
    log_->most_held = std::max(log_->most_held, log_->held.size());
    if (log_->held.size() == log_->hold_until)
      log_->holding.set_value();
    auto left = chunks - (log_->writes - log_->held.size());
    if (log_->answer_when_full
        && log_->held.size() == std::min(window / chunk, left)) {
      for (auto& f : log_->held)
        f->fulfill();
      log_->held.clear();
    }
    return kj::mv(paf.promise);
  }

  kj::Promise<void> done(DoneContext) override {
    log_->done = true;
    return kj::READY_NOW;
  }

private:
  std::shared_ptr<sink_log> log_;
};

/// The two ends of a link on one kj thread: `giver` on the far side holds
/// a stream source of `total` tracked bytes, the only holder of them.
struct one_link final : kj_resource {
  kj::Own<rpc_link> server;
  kj::Own<rpc_link> client;
  wire::SharedMemory::Client giver{nullptr};
  wire::ByteSource::Client source{nullptr};
  kj::Maybe<kj::Promise<void>> piping;
};

struct stream_fixture {
  /// Outlives the kj thread, where the bytes are let go of.
  std::promise<void> released;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<kj_thread> kj;
  uint64_t id = 0;

  stream_fixture() {
    configure_actor_system(cfg, 1);
    sys = std::make_unique<caf::actor_system>(cfg);
    kj = std::make_unique<kj_thread>(*sys);
    id = kj->next_id();
    std::promise<void> ready;
    kj->post([this, &ready](kj_context& ctx) {
      large_data_policy policy;
      policy.chunk_bytes = chunk;
      policy.stream_window_bytes = window;
      ctx.set_large_data(policy);
      auto origin = std::make_shared<tracked_bytes>(released);
      auto bytes = buffer::in(origin, origin->bytes.data(), total);
      origin.reset();
      capnp::MallocMessageBuilder msg;
      value_codec codec{ctx, false};
      auto bin = msg.initRoot<wire::Binary>();
      auto err = codec.write_binary(bytes, bin);
      KJ_REQUIRE(!err && bin.isStream());
      int sv[2];
      KJ_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
      auto wrap = [&ctx](int fd) {
        return ctx.low_level().wrapUnixSocketFd(
          fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
      };
      auto link = kj::heap<one_link>();
      link->server
        = rpc_link::serve(wrap(sv[0]), stream_limits{},
                          kj::heap<source_giver>(bin.getStream().getSource()));
      link->client = rpc_link::connect(wrap(sv[1]), stream_limits{});
      link->giver = link->client->bootstrap_as<wire::SharedMemory>();
      ctx.adopt(id, kj::mv(link));
      ready.set_value();
    });
    ready.get_future().get();
  }

  ~stream_fixture() {
    std::promise<void> gone;
    kj->post([this, &gone](kj_context& ctx) {
      ctx.drop(id);
      gone.set_value();
    });
    gone.get_future().get();
    kj->stop();
  }

  /// Runs `f(ctx, link)` on the kj thread and waits for it.
  template <class F>
  void on_kj(F f) {
    std::promise<void> done;
    kj->post([this, &f, &done](kj_context& ctx) {
      f(ctx, *ctx.find_as<one_link>(id));
      done.set_value();
    });
    done.get_future().get();
  }

  /// Takes the source from the far side and pipes it into a sink writing
  /// to `log`; `finished` is set when the pipe resolves.
  void pipe_into(std::shared_ptr<sink_log> log, std::promise<bool>* finished) {
    on_kj([log, finished](kj_context&, one_link& link) {
      link.source = link.giver.streamRequest().send().getSource();
      auto req = link.source.pipeToRequest();
      req.setSink(kj::heap<held_sink>(log));
      link.piping = req.send()
                      .then(
                        [finished](auto&&) {
                          if (finished != nullptr)
                            finished->set_value(true);
                        },
                        [finished](kj::Exception&&) {
                          if (finished != nullptr)
                            finished->set_value(false);
                        })
                      .eagerlyEvaluate(nullptr);
    });
  }

  /// A round trip to the far side: everything sent before has been handled
  /// there once it returns.
  void round_trip() {
    std::promise<void> back;
    on_kj([&back](kj_context& ctx, one_link& link) {
      ctx.tasks().add(link.giver.sizeRequest().send().then(
        [&back](auto&&) { back.set_value(); }));
    });
    back.get_future().get();
  }
};

} // namespace

TEST_CASE("a stream keeps its window of chunks in flight and arrives whole and "
          "in order",
          "[runtime][large_data]") {
  stream_fixture fx;
  auto log = std::make_shared<sink_log>();
  log->answer_when_full = true;
  std::promise<bool> finished;
  fx.pipe_into(log, &finished);
  auto result = finished.get_future();
  REQUIRE(result.wait_for(60s) == std::future_status::ready);
  REQUIRE(result.get());
  fx.on_kj([&](kj_context&, one_link& link) {
    link.piping = nullptr;
    link.source = nullptr;
  });
  CHECK(log->done);
  CHECK(log->writes == chunks);
  // Never more than the window, and the whole window while there was room.
  CHECK(log->most_held == window / chunk);
  std::vector<std::byte> want(total);
  for (std::size_t i = 0; i < total; ++i)
    want[i] = static_cast<std::byte>(i * 7 + i / 4096);
  REQUIRE(log->got.size() == total);
  CHECK(std::memcmp(log->got.data(), want.data(), total) == 0);
  // Nobody holds the bytes any more.
  CHECK(fx.released.get_future().wait_for(30s) == std::future_status::ready);
}

TEST_CASE("a cancelled stream keeps the bytes its chunks point into until "
          "those chunks are answered, and sends no more",
          "[runtime][large_data]") {
  stream_fixture fx;
  auto log = std::make_shared<sink_log>();
  log->hold_until = window / chunk;
  auto holding = log->holding.get_future();
  fx.pipe_into(log, nullptr);
  REQUIRE(holding.wait_for(60s) == std::future_status::ready);
  // The reader gives up: the pipe is cancelled and the source released.
  fx.on_kj([](kj_context&, one_link& link) {
    link.piping = nullptr;
    link.source = nullptr;
  });
  fx.round_trip();
  auto released = fx.released.get_future();
  // The messages of the chunks in flight still point into the bytes.
  CHECK(released.wait_for(0s) == std::future_status::timeout);
  fx.on_kj([&log](kj_context&, one_link&) {
    for (auto& f : log->held)
      f->fulfill();
    log->held.clear();
  });
  REQUIRE(released.wait_for(30s) == std::future_status::ready);
  fx.round_trip();
  CHECK(log->writes == window / chunk);
  CHECK_FALSE(log->done);
}

TEST_CASE("a node maps a block it sends to another host once, however often "
          "it sends it",
          "[runtime][large_data]") {
  caf::actor_system_config cfg;
  configure_actor_system(cfg, 1);
  caf::actor_system sys{cfg};
  kj_thread kj{sys};
  std::promise<std::vector<std::size_t>> mapped;
  kj.post([&mapped](kj_context& ctx) {
    // A plugin's block, as the shm arm brings it to the node: a capability
    // that carries the memfd.
    large_data_policy plugin;
    plugin.pool = shm_pool::make();
    ctx.set_large_data(plugin);
    auto out = plugin.pool->allocate(std::size_t{3} << 20);
    KJ_REQUIRE(static_cast<bool>(out));
    std::memset(out->data(), 7, out->size());
    auto block = std::move(*out).freeze();
    capnp::MallocMessageBuilder from_plugin;
    value_codec plugin_codec{ctx};
    auto shm = from_plugin.initRoot<wire::Binary>();
    KJ_REQUIRE(!plugin_codec.write_binary(block, shm) && shm.isShm());
    // The node reads it (keeping the capability) and sends it to another
    // host three times (a link without fd passing: the stream arm).
    auto node = node_large_data_policy();
    ctx.set_large_data(node);
    value_codec node_codec{ctx};
    auto relayed = node_codec.read_binary(shm.asReader());
    KJ_REQUIRE(static_cast<bool>(relayed) && !relayed->readable());
    std::vector<std::size_t> sizes;
    std::vector<kj::Own<capnp::MallocMessageBuilder>> sent;
    for (int i = 0; i < 3; ++i) {
      sent.push_back(kj::heap<capnp::MallocMessageBuilder>());
      value_codec link_codec{ctx, false};
      auto bin = sent.back()->initRoot<wire::Binary>();
      KJ_REQUIRE(!link_codec.write_binary(*relayed, bin) && bin.isStream());
      sizes.push_back(node.mappings->size());
    }
    mapped.set_value(std::move(sizes));
  });
  auto sizes = mapped.get_future().get();
  CHECK(sizes == std::vector<std::size_t>{1, 1, 1});
  kj.stop();
}

namespace {

/// What a node made of a stream from another host: its landing pool's
/// bytes in use once the stream settled, and how it went on.
struct landing_outcome {
  bool readable = false;
  bool settled_at_once = false;
  caf::error settle_error;
  bool bytes_right = false;
  bool sent_to_plugin_as_shm = false;
  std::size_t in_use = 0;
};

/// Makes this kj thread a node's whose landing pool takes at most `budget`
/// bytes, and writes into `msg` the fixture's stream as another host
/// sends it.
std::shared_ptr<shm_pool> node_with_stream(kj_context& ctx, one_link& link,
                                           capnp::MallocMessageBuilder& msg,
                                           std::size_t budget) {
  auto node = node_large_data_policy();
  node.landing_max_bytes = budget;
  ctx.set_large_data(node);
  auto st = msg.initRoot<wire::Binary>().initStream();
  st.setSize(total);
  st.setSource(link.giver.streamRequest().send().getSource());
  return node.landing;
}

/// Reads the fixture's stream on a node whose landing pool takes at most
/// `budget` bytes, as a value from another host (`value_codec::landing`)
/// or, with `landing` false, as any other value.
landing_outcome read_on_node(stream_fixture& fx, std::size_t budget,
                             bool landing, std::shared_ptr<shm_pool>& pool) {
  std::promise<landing_outcome> out;
  fx.on_kj([&](kj_context& ctx, one_link& link) {
    capnp::MallocMessageBuilder msg;
    pool = node_with_stream(ctx, link, msg, budget);
    auto codec = landing ? value_codec::landing(ctx, "a plugin")
                         : value_codec{ctx, false};
    auto got = codec.read_binary(msg.getRoot<wire::Binary>().asReader());
    KJ_REQUIRE(static_cast<bool>(got));
    landing_outcome o;
    o.readable = got->readable();
    o.settled_at_once = codec.settled();
    ctx.tasks().add(codec.settle().then(
      [&ctx, &out, &pool, o, got = std::move(*got)](caf::error err) mutable {
        o.settle_error = std::move(err);
        if (o.readable) {
          o.bytes_right = got.size() == total;
          for (std::size_t i = 0; o.bytes_right && i < total; ++i)
            o.bytes_right
              = got.data()[i] == static_cast<std::byte>(i * 7 + i / 4096);
          // To a plugin of this node: the landed block itself.
          capnp::MallocMessageBuilder to_plugin;
          value_codec plugin_link{ctx};
          auto bin = to_plugin.initRoot<wire::Binary>();
          o.sent_to_plugin_as_shm
            = !plugin_link.write_binary(got, bin) && bin.isShm();
        }
        o.in_use = pool->stats().bytes_in_use;
        out.set_value(std::move(o));
      }));
  });
  return out.get_future().get();
}

} // namespace

TEST_CASE("a node lands a stream from another host in its own shared memory "
          "and passes its plugins that block",
          "[runtime][large_data]") {
  stream_fixture fx;
  std::shared_ptr<shm_pool> pool;
  auto o = read_on_node(fx, std::size_t{1} << 30, true, pool);
  CHECK(o.readable);
  CHECK_FALSE(o.settled_at_once);
  CHECK_FALSE(o.settle_error);
  CHECK(o.bytes_right);
  CHECK(o.sent_to_plugin_as_shm);
  CHECK(o.in_use >= total);
  // Once nobody holds the value or the sink, the block is back in the pool.
  fx.round_trip();
  CHECK(pool->stats().bytes_in_use == 0);
  CHECK(pool->stats().bytes_cached >= total);
}

TEST_CASE("a node relays a stream that would pass its landing budget, and "
          "one it reads for no plugin of its own",
          "[runtime][large_data]") {
  stream_fixture fx;
  std::shared_ptr<shm_pool> pool;
  SECTION("over the budget") {
    auto o = read_on_node(fx, total - 1, true, pool);
    CHECK_FALSE(o.readable);
    CHECK(o.settled_at_once);
    CHECK(o.in_use == 0);
  }
  SECTION("a codec that does not land") {
    auto o = read_on_node(fx, std::size_t{1} << 30, false, pool);
    CHECK_FALSE(o.readable);
    CHECK(o.settled_at_once);
    CHECK(o.in_use == 0);
  }
}

TEST_CASE("a landed block a reader gave up on goes back to the pool at once, "
          "and chunks still on their way are refused",
          "[runtime][large_data]") {
  stream_fixture fx;
  std::shared_ptr<shm_pool> pool;
  std::size_t held_after_drop = 0;
  buffer next; // the block, lent again to the same plugin
  fx.on_kj([&](kj_context& ctx, one_link& link) {
    capnp::MallocMessageBuilder msg;
    pool = node_with_stream(ctx, link, msg, std::size_t{1} << 30);
    {
      // Read and dropped at once, with the codec and its pending stream.
      auto codec = value_codec::landing(ctx, "a plugin");
      KJ_REQUIRE(static_cast<bool>(
        codec.read_binary(msg.getRoot<wire::Binary>().asReader())));
    }
    held_after_drop = pool->stats().bytes_in_use;
    auto again = pool->allocate(total, "a plugin");
    KJ_REQUIRE(static_cast<bool>(again));
    std::memset(again->data(), 0x5a, total);
    next = std::move(*again).freeze();
  });
  CHECK(held_after_drop == 0);
  CHECK(pool->stats().blocks_reused == 1);
  // The chunks the far side had sent meanwhile arrive, and are refused: the
  // block's new contents stay as they are, and the far side lets go.
  fx.round_trip();
  fx.round_trip();
  CHECK(fx.released.get_future().wait_for(30s) == std::future_status::ready);
  bool intact = true;
  for (std::size_t i = 0; intact && i < total; ++i)
    intact = next.data()[i] == std::byte{0x5a};
  CHECK(intact);
  fx.on_kj([&](kj_context&, one_link&) { next = buffer{}; });
}

TEST_CASE("a node's landing pool fits the machine it runs on",
          "[runtime][large_data]") {
  auto big = node_large_data_policy(true, uint64_t{64} << 30);
  REQUIRE(big.landing);
  CHECK(big.landing_max_bytes == std::size_t{2} << 30);
  CHECK(big.landing->config().max_cached == std::size_t{1} << 30);
  // A 4 GiB machine: a quarter in use, an eighth kept.
  auto small = node_large_data_policy(true, uint64_t{4} << 30);
  REQUIRE(small.landing);
  CHECK(small.landing_max_bytes == std::size_t{1} << 30);
  CHECK(small.landing->config().max_cached == std::size_t{512} << 20);
  // Plugins without shared memory: nothing lands.
  CHECK_FALSE(node_large_data_policy(false, uint64_t{64} << 30).landing);
}
