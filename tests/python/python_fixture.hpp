// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// One embedded interpreter and one Python host for the whole test binary:
/// numpy cannot be imported again after the interpreter is finalized, so it
/// never is (the process ends instead). The test thread holds the GIL.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <pybind11/embed.h>

#include "nodes/python_host/python_host.hpp"
#include "runtime/system_config.hpp"

namespace joy::test {

class python_fixture {
public:
  /// The host (no node link: api calls fail with `unavailable`).
  static python::python_host& host() {
    static auto* env = new python_env;
    return env->host;
  }

private:
  struct python_env {
    python_env() : sys(config()), kj(sys), host("test", kj, kj.next_id()) {
      python::bind_host(host);
      host.set_module(python::load_imjoy_module());
    }

    static caf::actor_system_config& config() {
      static caf::actor_system_config cfg;
      configure_actor_system(cfg, 1);
      return cfg;
    }

    pybind11::scoped_interpreter interpreter;
    caf::actor_system sys;
    kj_thread kj;
    python::python_host host;
  };
};

} // namespace joy::test
