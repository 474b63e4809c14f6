// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B1: request/response to a plugin-interface actor in one process, with
// joy::value arguments, against a raw CAF typed actor taking the same two
// int64s. Both drivers are event-based actors.
//
// Why `infinite` here? In CAF 0.17 every finite request timeout wakes the
// clock thread (~3-5 us on 2 vCPUs), the same on both sides, which would
// swamp what B1 measures: the cost of the generic call path. Joy's own hot
// path takes no CAF timeouts either; deadlines are kj timers at the seam.

#include <algorithm>
#include <future>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/plugin.hpp"
#include "runtime/system_config.hpp"
#include "tools/bench/bench.hpp"

namespace joy::bench {

namespace {

using raw_adder = caf::typed_actor<
  caf::replies_to<call_atom, int64_t, int64_t>::with<int64_t>>;

constexpr auto timeout = caf::infinite;

} // namespace

std::vector<row> run_b1(const options& opts) {
  caf::actor_system_config cfg;
  configure_actor_system(cfg, 2);
  caf::actor_system sys{cfg};
  // Ours: the SDK's plugin actor with a typed export, called through the
  // generic plugin interface with joy::value arguments.
  plugin def{"bench"};
  def.exports.add("add", [](int64_t a, int64_t b) { return a + b; },
                  {"a", "b"});
  auto ours
    = spawn_plugin_actor(sys, std::make_shared<const plugin>(std::move(def)));
  // Baseline: a raw CAF typed actor with the same two int64s.
  auto raw = sys.spawn([]() -> raw_adder::behavior_type {
    return {[](call_atom, int64_t a, int64_t b) { return a + b; }};
  });
  auto issue_ours = [ours](caf::event_based_actor* self, int64_t i, auto done) {
    call_request req;
    req.method = "add";
    req.args = {value{i}, value{int64_t{1}}};
    self->request(ours, timeout, call_atom_v, std::move(req))
      .then([done](value&) mutable { done(); },
            [done](caf::error&) mutable { done(); });
  };
  auto issue_raw = [raw](caf::event_based_actor* self, int64_t i, auto done) {
    self->request(raw, timeout, call_atom_v, i, int64_t{1})
      .then([done](int64_t) mutable { done(); },
            [done](caf::error&) mutable { done(); });
  };
  // Warm up both, then alternate short rounds so that machine noise hits
  // both alike; report the medians.
  drive_pipelined(sys, 1, opts.calls / 10, issue_ours);
  drive_pipelined(sys, 1, opts.calls / 10, issue_raw);
  constexpr int rounds = 7;
  std::vector<double> ours_seq, raw_seq, ours_par, raw_par;
  auto per_round = std::max<std::size_t>(opts.calls / rounds, 1000);
  for (int round = 0; round < rounds; ++round) {
    ours_seq.push_back(drive_pipelined(sys, 1, per_round, issue_ours));
    raw_seq.push_back(drive_pipelined(sys, 1, per_round, issue_raw));
    ours_par.push_back(drive_pipelined(sys, 100, per_round, issue_ours));
    raw_par.push_back(drive_pipelined(sys, 100, per_round, issue_raw));
  }
  auto median = [](std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    return xs[xs.size() / 2];
  };
  caf::anon_send_exit(ours, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(raw, caf::exit_reason::user_shutdown);
  return {
    row{"B1.seq", "plugin actor, joy::value args, 1 in flight",
        median(ours_seq), "calls/s", median(raw_seq), "higher",
        "raw CAF typed actor, int64 args"},
    row{"B1.par", "plugin actor, joy::value args, 100 in flight",
        median(ours_par), "calls/s", median(raw_par), "higher",
        "raw CAF typed actor, int64 args"},
  };
}

} // namespace joy::bench
