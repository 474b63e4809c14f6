// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The CAF settings every Joy process uses.
///
/// Why a sharing scheduler? On 2 vCPUs the work-stealing scheduler adds
/// 64–78 µs per hop (idle workers sleep-poll); a sharing scheduler wakes a
/// sleeping worker when work comes, ~10 µs per hop (DESIGN §5). Joy's own
/// policy (runtime/scheduler_policy.hpp) is CAF's sharing one without its
/// allocation and lock contention per scheduled actor.
#pragma once

#include <cstddef>

#include <caf/actor_system_config.hpp>

namespace joy {

/// Applies Joy's settings to `cfg`: Joy's sharing scheduler with `workers`
/// threads (0 keeps CAF's default of one per core) and Joy's message types.
void configure_actor_system(caf::actor_system_config& cfg, std::size_t workers);

/// Registers Joy's message types only, for systems that bring their own
/// scheduler (CAF's test coordinator).
void add_message_types(caf::actor_system_config& cfg);

} // namespace joy
