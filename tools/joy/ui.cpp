// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tools/joy/ui.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <iostream>

#include <kj/async-io.h>

#include "runtime/errc.hpp"
#include "runtime/value_json.hpp"
#include "runtime/value_wire.hpp"
#include "tools/joy/format.hpp"
#include "tools/joy/node_client.hpp"

namespace joy::cli {

namespace {

/// Whether epoll can watch `fd`: a terminal, a pipe or a socket can; a
/// file or /dev/null cannot (EPERM), and always reads at once anyway.
bool pollable(int fd) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  bool ok = ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
  ::close(ep);
  return ok;
}

/// Lines from stdin, read without blocking the event loop (a terminal or a
/// pipe), or with plain reads when stdin is a file or /dev/null.
class line_reader {
public:
  explicit line_reader(kj::AsyncIoContext& io) {
    if (pollable(0))
      input_ = io.lowLevelProvider->wrapInputFd(0);
  }

  /// The next line; nullptr at the end of input.
  kj::Promise<kj::Maybe<std::string>> next() {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return kj::Maybe<std::string>{std::move(line)};
    }
    if (eof_) {
      if (buffer_.empty())
        return kj::Maybe<std::string>{nullptr};
      auto rest = std::move(buffer_);
      buffer_.clear();
      return kj::Maybe<std::string>{std::move(rest)};
    }
    if (input_.get() == nullptr) {
      char chunk[4096];
      auto n = ::read(0, chunk, sizeof(chunk));
      if (n <= 0)
        eof_ = true;
      else
        buffer_.append(chunk, static_cast<std::size_t>(n));
      return next();
    }
    auto chunk = kj::heapArray<char>(4096);
    auto* p = chunk.begin();
    return input_->tryRead(p, 1, chunk.size())
      .then([this, chunk = kj::mv(chunk)](size_t n) mutable {
        if (n == 0)
          eof_ = true;
        else
          buffer_.append(chunk.begin(), n);
        return next();
      });
  }

private:
  kj::Own<kj::AsyncInputStream> input_;
  std::string buffer_;
  bool eof_ = false;
};

std::string text_of(const value& x) {
  if (auto* s = x.as_string())
    return *s;
  auto json = to_json(x);
  return json ? *json : std::string{"?"};
}

void show(const std::string& line) {
  std::cout << printable(line) << std::endl;
}

/// The UI provider: the core calls it with (op, plugin, args...).
class terminal_ui final : public wire::Callable::Server {
public:
  explicit terminal_ui(kj::AsyncIoContext& io) : lines_(io) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    auto args = read_list(context.getParams().getArgs());
    if (!args || args->size() < 2 || args->at(0).as_string() == nullptr) {
      write_error(errc::invalid_argument,
                  "joy ui: a UI call is (op, plugin, args...)", {},
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    auto op = *args->at(0).as_string();
    auto plugin = text_of(args->at(1));
    auto arg = [&](std::size_t i) {
      return i + 2 < args->size() ? text_of(args->at(i + 2)) : std::string{};
    };
    auto prefix = "[" + plugin + "] ";
    if (op == "prompt" || op == "confirm") {
      auto question = arg(0);
      auto fallback = op == "prompt" ? arg(1) : std::string{};
      // One question at a time, in the order they came.
      auto answered = queue_.then([this, op, prefix, question, fallback]() {
        show(prefix + op + ": " + question
             + (op == "confirm"    ? " [y/n]"
                : fallback.empty() ? ""
                                   : " [" + fallback + "]"));
        return lines_.next();
      });
      auto fork = answered.fork();
      queue_ = fork.addBranch().ignoreResult();
      return fork.addBranch().then([context, op, fallback](
                                     kj::Maybe<std::string> line) mutable {
        auto out = context.getResults().initResult();
        KJ_IF_MAYBE (l, line) {
          if (op == "confirm") {
            auto yes = !l->empty() && (l->front() == 'y' || l->front() == 'Y');
            out.initOk().setBool(yes);
          } else {
            out.initOk().setString(l->empty() ? fallback : *l);
          }
        } else {
          write_error(errc::cancelled, "no answer: the terminal's input ended",
                      {}, out.initErr());
        }
      });
    }
    if (op == "create_window") {
      write_error(errc::unimplemented,
                  "windows open in the browser core; `joy ui` is a terminal "
                  "(start the node with --bridge and open its page)",
                  {}, context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    show(prefix + op + ": " + arg(0));
    context.getResults().initResult().initOk().setNull();
    return kj::READY_NOW;
  }

private:
  line_reader lines_;
  kj::Promise<void> queue_ = kj::READY_NOW;
};

} // namespace

int cmd_ui(const std::string& home) {
  auto client = node_client::connect(home, std::chrono::seconds{10});
  if (!client) {
    std::cerr << "joy: error (" << to_string(code_of(client.error()))
              << "): " << message_of(client.error()) << "\n";
    return 1;
  }
  auto& c = **client;
  auto req = c.node().attachUiRequest();
  auto handler = req.initHandler();
  handler.setName("joy ui");
  handler.setCallable(kj::heap<terminal_ui>(c.io()));
  auto resp = c.wait(req.send(), std::chrono::seconds{10});
  if (!resp || resp->getResult().isErr()) {
    auto err = resp ? read_error(resp->getResult().getErr()) : resp.error();
    std::cerr << "joy: error (" << to_string(code_of(err))
              << "): " << message_of(err) << "\n";
    return 1;
  }
  show("joy ui: attached to node " + c.node_id()
       + "; plugins' alerts and questions appear here (Ctrl-C to leave)");
  // Serve until the node goes away.
  auto ended = c.wait(c.on_disconnect().then([] { return true; }),
                      std::chrono::milliseconds{0});
  (void)ended;
  show("joy ui: the node went away");
  return 0;
}

} // namespace joy::cli
