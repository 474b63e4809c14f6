// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The bridge's wire pieces without sockets: msgpack <-> value, hypha's
// envelopes and ids, and tokens.

#include <catch2/catch.hpp>

#include <cstring>

#include "actors/bridge/bridge_token.hpp"
#include "actors/bridge/hypha_envelope.hpp"
#include "actors/bridge/hypha_ids.hpp"
#include "actors/bridge/msgpack_value.hpp"
#include "runtime/errc.hpp"

using namespace joy;

namespace {

value round_trip(const value& x) {
  auto bytes = pack(x);
  REQUIRE(bytes);
  std::size_t offset = 0;
  auto back = unpack_value(*bytes, offset);
  REQUIRE(back);
  CHECK(offset == bytes->size());
  return *back;
}

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

} // namespace

TEST_CASE("values survive msgpack unchanged", "[actors][bridge]") {
  value_map m;
  m.insert("null", value{});
  m.insert("yes", true);
  m.insert("small", -5);
  m.insert("big", value{uint64_t{18446744073709551615ull}});
  m.insert("pi", 3.25);
  m.insert("text", "é");
  m.insert("bytes", buffer::copy_of("\x00\x01\x02", 3));
  m.insert("list", value_list{value{1}, value{value_list{value{"x"}}}});
  ndarray a;
  a.type = dtype::float32;
  a.shape = {2, 3};
  float data[6] = {1, 2, 3, 4, 5, 6};
  a.data = buffer::copy_of(data, sizeof(data));
  m.insert("array", value{a});
  ndarray t;
  t.type = dtype::int16;
  t.shape = {2};
  t.typed_array = true;
  int16_t td[2] = {-1, 7};
  t.data = buffer::copy_of(td, sizeof(td));
  m.insert("typed", value{t});
  m.insert("when", timestamp{1'764'331'200'250'000'000});
  m.insert("before 1970", timestamp{-1'500'000'000});
  m.insert("far", timestamp{int64_t{5'000'000'000} * 1'000'000'000});
  value x{m};
  CHECK(round_trip(x) == x);
}

TEST_CASE("errors cross as hypha errors without their trace",
          "[actors][bridge]") {
  error_value e;
  e.code = errc::not_found;
  e.message = "no such thing";
  e.trace = "secret.cpp:12";
  auto back = round_trip(value{e});
  REQUIRE(back.as_error() != nullptr);
  CHECK(back.as_error()->message == "no such thing");
  CHECK(back.as_error()->trace.empty());
}

TEST_CASE("timestamps use the msgpack extension in its smallest form",
          "[actors][bridge]") {
  // 32-bit seconds: d6 ff + 4 bytes.
  auto a = pack(value{timestamp{int64_t{1} * 1'000'000'000}});
  REQUIRE(a);
  CHECK(hex(*a) == "d6ff00000001");
  // Nanoseconds: 64-bit form d7 ff.
  auto b = pack(value{timestamp{1'500'000'000}});
  REQUIRE(b);
  CHECK(hex(b->substr(0, 2)) == "d7ff");
  // Before 1970: 96-bit form c7 0c ff.
  auto c = pack(value{timestamp{-1}});
  REQUIRE(c);
  CHECK(hex(c->substr(0, 3)) == "c70cff");
}

TEST_CASE("hostile msgpack is an error, never a crash", "[actors][bridge]") {
  auto bad = [](std::string bytes, errc code) {
    std::size_t offset = 0;
    auto x = unpack_value(bytes, offset);
    REQUIRE_FALSE(x);
    CHECK(code_of(x.error()) == code);
    CHECK(offset == 0);
  };
  bad(std::string{"\xdd\xff\xff\xff\xff", 5}, errc::protocol_error);
  bad(std::string{"\x92\x01", 2}, errc::protocol_error);
  bad(std::string{"\x81\x01\x02", 3}, errc::protocol_error); // int key
  bad(std::string{"\xc1", 1}, errc::protocol_error);
  bad(std::string{"\xd4\x05\x00", 3}, errc::protocol_error); // unknown ext
  std::string deep(40, '\x91');
  deep += '\x00';
  bad(deep, errc::too_large);
  // A typed array whose bytes do not fill its dtype.
  value_map t{{"_rtype", "typedarray"},
              {"_rdtype", "float32"},
              {"_rvalue", buffer::copy_of("abc", 3)}};
  auto bytes = pack(value{t});
  REQUIRE(bytes);
  // Packing turns bytes into memoryview maps; write the bin by hand.
  std::string frame = "\x83\xa6_rtype\xaatypedarray\xa7_rdtype\xa7"
                      "float32\xa7_rvalue\xc4\x03"
                      "abc";
  bad(frame, errc::invalid_argument);
}

TEST_CASE("functions cross through the codec or not at all",
          "[actors][bridge]") {
  struct fake_codec : function_codec {
    int encoded = 0;
    caf::expected<value_map> encode(const function_ref& f) override {
      ++encoded;
      return value_map{{"_rtype", "method"}, {"_rmethod", "fn." + f.name}};
    }
    caf::expected<value> decode(value_map m) override {
      return value{*m.find("_rmethod")->as_string()};
    }
  };
  function_ref f{nullptr, "twice"};
  value x{value_list{value{f}}};
  auto refused = pack(x);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::invalid_argument);
  fake_codec codec;
  auto bytes = pack(x, &codec);
  REQUIRE(bytes);
  CHECK(codec.encoded == 1);
  std::size_t offset = 0;
  auto back = unpack_value(*bytes, offset, &codec);
  REQUIRE(back);
  CHECK(*back == value{value_list{value{"fn.twice"}}});
  offset = 0;
  auto plain = unpack_value(*bytes, offset);
  REQUIRE(plain);
  CHECK(plain->as_list()->front().as_map() != nullptr);
}

TEST_CASE("an envelope is rewritten and its extra bytes pass untouched",
          "[actors][bridge]") {
  value_map main{{"type", "method"}, {"from", "evil/forged"},
                 {"to", "c2"},       {"method", "services.x.f"},
                 {"session", "s1"},  {"user", "root"}};
  value_map extra{{"args", value_list{value{buffer::copy_of("\x01\x02", 2)}}},
                  {"promise", "*"}};
  auto frame = make_frame(main, extra);
  REQUIRE(frame);
  auto env = read_envelope(*frame);
  REQUIRE(env);
  CHECK(env->from == "evil/forged");
  CHECK(env->to == "c2");
  CHECK(env->session == "s1");
  auto out = rewrite_envelope(*frame, *env, "ws1/c1", "ws1/c2", "ws1",
                              value_map{{"id", "u1"}});
  REQUIRE(out);
  auto env2 = read_envelope(*out);
  REQUIRE(env2);
  CHECK(env2->from == "ws1/c1");
  CHECK(env2->to == "ws1/c2");
  CHECK(out->substr(env2->main_size) == frame->substr(env->main_size));
  std::size_t offset = 0;
  auto m = unpack_value(*out, offset);
  REQUIRE(m);
  CHECK(*m->as_map()->find("user") == value{value_map{{"id", "u1"}}});
  CHECK(*m->as_map()->find("method") == value{"services.x.f"});
  auto raw = first_arg_bytes(*out, *env2);
  REQUIRE(raw);
  // Exactly the bytes sent, not a re-encoding.
  CHECK(*raw == *pack(value{buffer::copy_of("\x01\x02", 2)}));
  CHECK_FALSE(read_envelope(std::string{"\x81\xa1x\x01", 4}));
  CHECK_FALSE(read_envelope(std::string{"\x93", 1}));
}

TEST_CASE("promise callbacks are told apart from service methods",
          "[actors][bridge]") {
  CHECK(split_promise_method("abc.resolve")
        == std::pair<std::string_view, std::string_view>{"abc", "resolve"});
  CHECK(split_promise_method("p.q.heartbeat").first == "p.q");
  CHECK(split_promise_method("abc.other").first.empty());
  CHECK(split_promise_method("resolve").first.empty());
}

TEST_CASE("service ids parse in every hypha form", "[actors][bridge]") {
  auto id = [](std::string_view text) {
    auto x = parse_hypha_id(text, "mine");
    REQUIRE(x);
    return to_string(*x) + "@" + x->app;
  };
  CHECK(id("svc") == "mine/*:svc@*");
  CHECK(id("cid:svc") == "mine/cid:svc@*");
  CHECK(id("ws/svc") == "ws/*:svc@*");
  CHECK(id("ws/cid:svc@app") == "ws/cid:svc@app");
  for (auto bad : {"", "a/b/c", "a:b:c", "*/x", "x@", "ws/:s", "ws/c:"})
    CHECK_FALSE(parse_hypha_id(bad, "mine"));
}

TEST_CASE("globs match like the shell's", "[actors][bridge]") {
  CHECK(glob_match("*", ""));
  CHECK(glob_match("*", "anything"));
  CHECK(glob_match("a*c", "abbbc"));
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "ac"));
  CHECK_FALSE(glob_match("abc", "abcd"));
  CHECK(glob_match("*b*", "aaabaaa"));
  CHECK_FALSE(glob_match("ws-1", "ws-10"));
}

TEST_CASE("random ids are long, url-safe and distinct", "[actors][bridge]") {
  auto a = random_id();
  auto b = random_id();
  CHECK(a.size() == 22);
  CHECK(a != b);
  CHECK(valid_name(a));
  CHECK_FALSE(valid_name("../etc"));
  CHECK_FALSE(valid_name(""));
  CHECK_FALSE(valid_name(std::string(65, 'a')));
}

TEST_CASE("tokens verify only as signed and until they expire",
          "[actors][bridge]") {
  token_signer signer{std::string(32, 'k')};
  token_claims c;
  c.kind = "reconnect";
  c.user = "u1";
  c.workspace = "ws-user-u1";
  c.client = "c1";
  c.expires = 1000;
  auto t = signer.sign(c);
  auto ok = signer.verify(t, 999);
  REQUIRE(ok);
  CHECK(ok->client == "c1");
  CHECK(ok->workspace == "ws-user-u1");
  CHECK_FALSE(signer.verify(t, 1001));
  token_signer other{std::string(32, 'x')};
  CHECK_FALSE(other.verify(t, 999));
  // Any change to the claims breaks the signature.
  auto forged = t;
  forged[3] = forged[3] == 'A' ? 'B' : 'A';
  CHECK_FALSE(signer.verify(forged, 999));
  CHECK_FALSE(signer.verify("nodot", 0));
}
