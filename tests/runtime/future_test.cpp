// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy::future and the api's service_future, with a fake node: what a
// plugin's calls send, and when.

#include <catch2/catch.hpp>

#include "runtime/plugin_api.hpp"

using namespace joy;

namespace {

/// Records every request and answers none until told.
class fake_backend final : public detail::api_backend {
public:
  struct sent {
    api_op op;
    value_list args;
    promise<value> answer;
  };

  std::vector<sent> requests;
  api* owner = nullptr;

  future<value> request(api_op op, value_list args, value_map,
                        caf::timespan) override {
    requests.push_back(sent{op, std::move(args), {}});
    return requests.back().answer.get_future();
  }

  future<value> invoke(const function_ref&, value_list, value_map,
                       caf::timespan) override {
    return make_error(errc::unimplemented, "no functions here");
  }

  function_ref
  make_callback(std::string,
                std::shared_ptr<const exported_function>) override {
    return {};
  }

  void log(int, std::string) override {
    // nop
  }

  api& owner_api() override {
    return *owner;
  }
};

/// A fake node and the api a plugin would see on it.
struct fake_api {
  std::shared_ptr<fake_backend> node = std::make_shared<fake_backend>();
  api the_api{node};

  fake_api() {
    node->owner = &the_api;
  }
};

} // namespace

TEST_CASE("a deferred future starts its work only when someone waits for it",
          "[runtime][future]") {
  int started = 0;
  promise<int> work;
  auto f = future<int>::deferred([&] {
    ++started;
    return work.get_future();
  });
  CHECK(started == 0);
  CHECK_FALSE(f.is_ready());
  auto doubled = f.then([](int x) { return 2 * x; });
  CHECK(started == 1);
  work.set_value(21);
  REQUIRE(doubled.is_ready());
  CHECK(*doubled.take() == 42);
  CHECK(started == 1);
}

TEST_CASE("a deferred future that fails passes its error on",
          "[runtime][future]") {
  auto f = future<int>::deferred(
    [] { return future<int>{make_error(errc::not_found, "gone")}; });
  std::vector<future<int>> all{f};
  auto both = when_all(std::move(all));
  REQUIRE(both.is_ready());
  auto x = both.take();
  REQUIRE_FALSE(x);
  CHECK(code_of(x.error()) == errc::not_found);
}

TEST_CASE("get_service(x).call(f) sends one call_service and never fetches "
          "the object",
          "[runtime][future]") {
  fake_api f;
  auto& b = f.node;
  auto answer = f.the_api.get_service("public/tools:math")
                  .call("add", {value{1}, value{2}});
  REQUIRE(b->requests.size() == 1);
  auto& r = b->requests[0];
  CHECK(r.op == api_op::call_service);
  REQUIRE(r.args.size() == 3);
  CHECK(*r.args[0].as_string() == "public/tools:math");
  CHECK(*r.args[1].as_string() == "add");
  REQUIRE(r.args[2].as_list() != nullptr);
  CHECK(r.args[2].as_list()->size() == 2);
  r.answer.set_value(value{3});
  REQUIRE(answer.is_ready());
  CHECK(*answer.take()->as_int64() == 3);
}

TEST_CASE("get_service(x) fetches the object when its future is used, once",
          "[runtime][future]") {
  fake_api f;
  auto& b = f.node;
  auto svc = f.the_api.get_service("tools:math");
  CHECK(b->requests.empty());
  auto methods = svc.then([](service s) { return s.methods().size(); });
  REQUIRE(b->requests.size() == 1);
  CHECK(b->requests[0].op == api_op::get_service);
  value_map object;
  object.insert("name", value{"math"});
  b->requests[0].answer.set_value(value{std::move(object)});
  REQUIRE(methods.is_ready());
  CHECK(*methods.take() == 0);
  // A continuation may return it: it is a future too.
  auto again = future<int>{1}.then(
    [&](int) { return f.the_api.get_service("tools:math"); });
  REQUIRE(b->requests.size() == 2);
  b->requests[1].answer.set_error(make_error(errc::not_found, "no service"));
  REQUIRE(again.is_ready());
  CHECK(code_of(again.take().error()) == errc::not_found);
}

TEST_CASE("a deferred future whose work throws fails with plugin_error",
          "[runtime][future]") {
  auto f = future<int>::deferred(
    []() -> future<int> { throw std::runtime_error("no luck"); });
  auto next = f.then([](int x) { return x; });
  REQUIRE(next.is_ready());
  auto x = next.take();
  REQUIRE_FALSE(x);
  CHECK(code_of(x.error()) == errc::plugin_error);
  CHECK_THAT(message_of(x.error()), Catch::Contains("no luck"));
}
