// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// remote_plugins: where calls reached plugins of other nodes, and when the
// kj thread stops taking that as true. Time is given, not read.

#include <catch2/catch.hpp>

#include <kj/async-io.h>
#include <kj/timer.h>

#include "actors/plugin_host/remote_plugins.hpp"

using namespace joy;

namespace {

const auto t0 = kj::origin<kj::TimePoint>() + 100 * kj::SECONDS;

remote_plugins served(int* calls = nullptr) {
  remote_plugins r;
  r.serve([calls](const location&, std::string, call_request) {
    if (calls != nullptr)
      ++*calls;
    return kj::Promise<caf::expected<value>>{caf::expected<value>{value{1}}};
  });
  return r;
}

} // namespace

TEST_CASE("a plugin a call reached is found there until the ttl has passed",
          "[actors][remote_plugins]") {
  auto r = served();
  CHECK_FALSE(r.find("calc", t0));
  CHECK(r.remember("calc", location{"b", "127.0.0.1:7701"}, t0));
  CHECK_FALSE(r.remember("calc", location{"b", "127.0.0.1:7701"}, t0));
  auto at = r.find("calc", t0 + remote_plugins::ttl - 1 * kj::MILLISECONDS);
  REQUIRE(at);
  CHECK(at->node_id == "b");
  CHECK(at->address == "127.0.0.1:7701");
  CHECK_FALSE(r.find("calc", t0 + remote_plugins::ttl));
  // Expired entries are dropped, not kept around.
  CHECK(r.size() == 0);
}

TEST_CASE("a later call moves a plugin and renews its time",
          "[actors][remote_plugins]") {
  auto r = served();
  r.remember("calc", location{"b", "b:1"}, t0);
  CHECK(r.remember("calc", location{"c", "c:1"}, t0 + 5 * kj::SECONDS));
  auto at = r.find("calc", t0 + 12 * kj::SECONDS);
  REQUIRE(at);
  CHECK(at->node_id == "c");
}

TEST_CASE("forgetting a node drops only what is on it",
          "[actors][remote_plugins]") {
  auto r = served();
  r.remember("one", location{"b", "b:1"}, t0);
  r.remember("two", location{"b", "b:1"}, t0);
  r.remember("three", location{"c", "c:1"}, t0);
  r.forget_node("b");
  CHECK_FALSE(r.find("one", t0));
  CHECK_FALSE(r.find("two", t0));
  CHECK(r.find("three", t0));
  r.forget_node("nowhere");
  CHECK(r.size() == 1);
}

TEST_CASE("a plugin this node hosts is never listed as another node's, until "
          "it is uninstalled",
          "[actors][remote_plugins]") {
  auto r = served();
  r.remember("calc", location{"b", "b:1"}, t0);
  r.remember("other", location{"b", "b:1"}, t0);
  r.hosted("calc");
  CHECK_FALSE(r.find("calc", t0));
  CHECK(r.find("other", t0));
  // A call to B that was on its way when the plugin came here.
  r.remember("calc", location{"b", "b:1"}, t0);
  CHECK_FALSE(r.find("calc", t0));
  r.not_hosted("calc");
  r.remember("calc", location{"b", "b:1"}, t0);
  CHECK(r.find("calc", t0));
}

TEST_CASE("without links to other nodes nothing is kept and calls fail as "
          "unavailable",
          "[actors][remote_plugins]") {
  remote_plugins bare;
  bare.remember("calc", location{"b", "b:1"}, t0);
  CHECK_FALSE(bare.find("calc", t0));
  auto io = kj::setupAsyncIo();
  auto& timer = io.provider->getTimer();
  auto res = bare
               .call(location{"b", "b:1"}, "calc", call_request{}, timer,
                     10 * kj::SECONDS)
               .wait(io.waitScope);
  REQUIRE_FALSE(res);
  CHECK(code_of(res.error()) == errc::unavailable);

  int calls = 0;
  auto r = served(&calls);
  r.remember("calc", location{"b", "b:1"}, t0);
  auto ok = r.call(location{"b", "b:1"}, "calc", call_request{}, timer,
                   10 * kj::SECONDS)
              .wait(io.waitScope);
  REQUIRE(ok);
  CHECK(calls == 1);
  // The links going away forgets everything.
  r.serve(nullptr);
  CHECK(r.size() == 0);
  CHECK_FALSE(r.find("calc", t0));
}

TEST_CASE("a call another node never answers fails with timeout at its bound",
          "[actors][remote_plugins]") {
  auto io = kj::setupAsyncIo();
  kj::TimerImpl clock{kj::origin<kj::TimePoint>()};
  remote_plugins r;
  r.serve([](const location&, std::string, call_request) {
    return kj::Promise<caf::expected<value>>{kj::NEVER_DONE};
  });
  auto call = r.call(location{"b", "b:1"}, "calc", call_request{}, clock,
                     60 * kj::SECONDS);
  clock.advanceTo(clock.now() + 59 * kj::SECONDS);
  CHECK_FALSE(call.poll(io.waitScope));
  clock.advanceTo(clock.now() + 1 * kj::SECONDS);
  REQUIRE(call.poll(io.waitScope));
  auto res = call.wait(io.waitScope);
  REQUIRE_FALSE(res);
  CHECK(code_of(res.error()) == errc::timeout);
  CHECK_THAT(message_of(res.error()), Catch::Contains("plugin 'calc' on node b")
                                        && Catch::Contains("60 s"));
}
