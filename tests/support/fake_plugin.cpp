// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tests/support/fake_plugin.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/send.hpp>
#include <kj/debug.h>

#include "runtime/errc.hpp"
#include "runtime/plugin_connection.hpp"
#include "runtime/unique_fd.hpp"
#include "runtime/value_codec.hpp"

namespace joy::test {

namespace {

/// Wraps the SDK's Plugin capability; the hanging method never returns.
class hanging_server final : public wire::Plugin::Server {
public:
  hanging_server(wire::Plugin::Client inner, std::string hanging,
                 std::shared_ptr<std::atomic<int>> arrived,
                 std::shared_ptr<std::atomic<int>> cancelled)
    : inner_(kj::mv(inner)),
      hanging_(std::move(hanging)),
      arrived_(std::move(arrived)),
      cancelled_(std::move(cancelled)) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    if (context.getParams().getMethod() == hanging_) {
      context.allowCancellation();
      ++*arrived_;
      auto never = kj::newPromiseAndFulfiller<void>();
      return never.promise.attach(kj::mv(never.fulfiller),
                                  kj::defer([c = cancelled_] { ++*c; }));
    }
    auto req = inner_.callRequest();
    req.setService(context.getParams().getService());
    req.setMethod(context.getParams().getMethod());
    req.setArgs(context.getParams().getArgs());
    req.setKwargs(context.getParams().getKwargs());
    req.setTimeoutMs(context.getParams().getTimeoutMs());
    return req.send().then([context](auto resp) mutable {
      context.getResults().setResult(resp.getResult());
    });
  }

  kj::Promise<void> setup(SetupContext context) override {
    return inner_.setupRequest().send().then([context](auto resp) mutable {
      context.getResults().setResult(resp.getResult());
    });
  }

  kj::Promise<void> run(RunContext context) override {
    auto req = inner_.runRequest();
    req.setCtx(context.getParams().getCtx());
    return req.send().then([context](auto resp) mutable {
      context.getResults().setResult(resp.getResult());
    });
  }

  kj::Promise<void> exit(ExitContext) override {
    return inner_.exitRequest().send().ignoreResult();
  }

  kj::Promise<void> describe(DescribeContext context) override {
    return inner_.describeRequest().send().then([context](auto resp) mutable {
      context.getResults().setResult(resp.getResult());
    });
  }

private:
  wire::Plugin::Client inner_;
  std::string hanging_;
  std::shared_ptr<std::atomic<int>> arrived_;
  std::shared_ptr<std::atomic<int>> cancelled_;
};

} // namespace

/// One fake process: an eventfd for "exited" and the plugin's link, which
/// lives on the launcher's kj thread as resource `link_id`.
class fake_launcher::fake_process final : public process {
public:
  fake_process(std::shared_ptr<kj_thread> kj, uint64_t link_id)
    : kj_(std::move(kj)),
      link_id_(link_id),
      exit_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    // nop
  }

  ~fake_process() override {
    kill();
  }

  int pid() const noexcept override {
    return 0;
  }

  int exit_fd() const noexcept override {
    return exit_fd_.get();
  }

  std::optional<exit_status> reap() override {
    std::lock_guard<std::mutex> guard{mtx_};
    return status_;
  }

  void kill() noexcept override {
    exit_with(exit_status{exit_status::how::signaled, SIGKILL});
  }

  /// The plugin side ended on its own (the node closed the link, or refused
  /// the hello).
  void exit_with(exit_status status) noexcept {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (status_)
        return;
      status_ = status;
    }
    // Drop the plugin's end: the node sees the connection close.
    kj_->post([id = link_id_](kj_context& ctx) { ctx.drop(id); });
    uint64_t one = 1;
    (void)::write(exit_fd_.get(), &one, sizeof(one));
  }

private:
  std::shared_ptr<kj_thread> kj_;
  uint64_t link_id_;
  unique_fd exit_fd_;
  std::mutex mtx_;
  std::optional<exit_status> status_;
};

fake_launcher::fake_launcher(caf::actor_system& sys, plugin def,
                             fake_behavior behavior)
  : sys_(sys),
    behavior_(std::move(behavior)),
    kj_(std::make_shared<kj_thread>(sys)) {
  auto exits = exits_;
  auto user_exit = def.exit;
  def.on_exit([exits, user_exit](context& ctx) -> future<value> {
    ++*exits;
    if (user_exit)
      return user_exit->invoke(ctx, {}, {});
    return value{};
  });
  def_ = std::make_shared<const plugin>(std::move(def));
  kj_->post([](kj_context& ctx) { serve_remote_functions(ctx); });
}

fake_launcher::~fake_launcher() {
  kj_->stop();
}

void fake_launcher::fail_next_launch(std::string why) {
  std::lock_guard<std::mutex> guard{mtx_};
  fail_next_ = std::move(why);
}

void fake_launcher::kill_newest() {
  std::shared_ptr<fake_process> proc;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    proc = newest_.lock();
  }
  if (proc)
    proc->kill();
}

caf::expected<launched_process> fake_launcher::launch(const launch_spec&) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!fail_next_.empty()) {
      auto why = std::move(fail_next_);
      fail_next_.clear();
      return make_error(errc::not_found, why);
    }
  }
  ++launches_;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return make_error(errc::io_error, "socketpair failed");
  auto link_id = kj_->next_id();
  auto proc = std::make_shared<fake_process>(kj_, link_id);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    newest_ = proc;
  }
  // Each fake process has its own plugin actor, as a real one would.
  auto actor
    = spawn_plugin_actor(sys_, def_, plugin_node{kj_->gateway(), link_id});
  auto b = behavior_;
  std::weak_ptr<fake_process> weak = proc;
  kj_->post([sv1 = sv[1], actor, b, link_id, weak, name = def_->name,
             arrived = hanging_, cancelled = cancelled_](kj_context& ctx) {
    if (!b.say_hello) {
      // A mute process: holds its socket open and never speaks.
      struct holder final : kj_resource {
        explicit holder(int x) : fd(x) {}
        unique_fd fd;
      };
      ctx.adopt(link_id, kj::heap<holder>(sv1));
      return;
    }
    auto inner = make_plugin_server(ctx, actor);
    wire::Plugin::Client plugin
      = kj::heap<hanging_server>(wire::Plugin::Client{kj::mv(inner)},
                                 b.hanging_method, arrived, cancelled);
    connect_to_node(
      ctx, link_id, sv1, kj::mv(plugin), name, b.version,
      [weak, actor](int code) {
        caf::anon_send(actor, exit_atom_v);
        if (auto p = weak.lock())
          p->exit_with(exit_status{exit_status::how::exited, code});
      });
  });
  launched_process out;
  out.proc = proc;
  out.socket = std::make_shared<unique_fd>(sv[0]);
  return out;
}

} // namespace joy::test
