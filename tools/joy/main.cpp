// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy: the command line. It talks to the node daemon of `$JOY_HOME` (default
// ~/.joy) over its control socket.
//
//   joy start [--foreground]     start the node (daemonized by default)
//   joy stop                     stop it, and every plugin with it
//   joy status [--json]          node id, version, address, uptime,
//                                resources, plugins and services
//   joy install <source>         a folder, a .tar.gz URL or user/repo:Name@tag:
//                                validate, copy, register and start it
//   joy plugins [--json]         the installed plugins
//   joy uninstall <plugin>       stop it, forget it, delete its files
//   joy logs [-f] [-n N] <plugin>  its stdout, stderr and api.log lines
//   joy restart <plugin>         stop it and start it afresh (forgives crashes)
//   joy rollback <plugin>        back to the version installed before
//   joy call <plugin> <method> [json args...]
//   joy ui                       show plugins' UI calls, answer their prompts
//   joy cert ca | node NAME      the cluster's CA and node certificates
//
// Every error is one line on stderr and a non-zero exit code.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string_view>
#include <thread>

#include <CLI/CLI.hpp>

#include "actors/node/log_tail.hpp"
#include "runtime/cli_checks.hpp"
#include "runtime/errc.hpp"
#include "runtime/log.hpp"
#include "runtime/paths.hpp"
#include "runtime/protocol.hpp"
#include "runtime/value_json.hpp"
#include "runtime/value_wire.hpp"
#include "schema/plugin.capnp.h"
#include "tools/joy/cert.hpp"
#include "tools/joy/format.hpp"
#include "tools/joy/new_plugin.hpp"
#include "tools/joy/node_client.hpp"
#include "tools/joy/token.hpp"
#include "tools/joy/ui.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using joy::cli::node_client;

/// Thrown to end a command with a one-line error.
struct command_error {
  std::string message;
  int exit_code = 1;
};

[[noreturn]] void fail(const caf::error& err) {
  throw command_error{"error (" + std::string{joy::to_string(joy::code_of(err))}
                      + "): " + joy::message_of(err)};
}

template <class T>
T check(caf::expected<T> x) {
  if (!x)
    fail(x.error());
  return std::move(*x);
}

std::unique_ptr<node_client> connect(const std::string& home) {
  return check(node_client::connect(home, 10s));
}

void print_json(const joy::json& doc) {
  std::cout << doc.dump(2) << "\n";
}

// -- start / stop -------------------------------------------------------------

bool home_locked(const std::string& home) {
  int fd = ::open((home + "/joyd.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return locked;
}

/// The last `lines` lines written to `path` from byte `from` on, indented:
/// what this start wrote, not an earlier one.
std::string log_since(const std::string& path, std::uintmax_t from,
                      std::size_t lines) {
  std::error_code ec;
  if (fs::file_size(path, ec) < from || ec)
    from = 0; // rotated meanwhile
  std::ifstream in{path, std::ios::binary};
  in.seekg(static_cast<std::streamoff>(from));
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    kept.push_back(std::move(line));
    if (kept.size() > lines)
      kept.erase(kept.begin());
  }
  std::string out;
  for (auto& line : kept)
    out += (out.empty() ? "  " : "\n  ") + line;
  return out;
}

/// A worker's first attempt to join its head, told at once: a wrong token
/// or an unreachable head is otherwise news only in joyd.log. The node
/// keeps trying either way; a dial gives up after 2 s.
void report_join(node_client& client) {
  auto deadline = std::chrono::steady_clock::now() + 3s;
  for (;;) {
    auto resp = client.wait(client.node().statusRequest().send(), 5s);
    if (!resp || !resp->getResult().isOk()
        || !resp->getResult().getOk().hasHeadLink())
      return;
    auto link = resp->getResult().getOk().getHeadLink();
    std::string head = link.getAddress().cStr();
    if (link.getJoined()) {
      std::cout << "joy: joined the head at " << head << "\n";
      return;
    }
    if (link.getError().size() > 0
        || std::chrono::steady_clock::now() >= deadline) {
      std::cerr << joy::cli::printable(
        "joy: not joined to the head at " + head + " yet"
        + (link.getError().size() > 0
             ? ": " + std::string{link.getError().cStr()}
             : std::string{})
        + " (the node keeps trying; see joy status)\n");
      return;
    }
    std::this_thread::sleep_for(50ms);
  }
}

int cmd_start(const std::string& home, bool foreground,
              const std::vector<std::string>& daemon_args) {
  if (auto client = node_client::connect(home, 5s)) {
    std::cout << "joy: a node is already running in " << home << " (node "
              << (*client)->node_id() << ")\n";
    if (!daemon_args.empty())
      std::cerr << "joy: the options given were not applied: they take "
                   "effect when the node starts (joy stop first)\n";
    return 0;
  }
  auto joyd = joy::self_dir() + "/joyd";
  if (::access(joyd.c_str(), X_OK) != 0)
    throw command_error{"cannot find joyd next to joy (" + joyd + ")"};
  std::vector<std::string> args{joyd, "--home", home};
  args.insert(args.end(), daemon_args.begin(), daemon_args.end());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  if (foreground) {
    ::execv(joyd.c_str(), argv.data());
    throw command_error{"cannot run " + joyd + ": " + std::strerror(errno)};
  }
  std::error_code ec;
  fs::create_directories(home + "/logs", ec);
  if (ec)
    throw command_error{"cannot create " + home + "/logs: " + ec.message()};
  auto log_path = home + "/logs/joyd.log";
  auto log_start = fs::file_size(log_path, ec);
  if (ec)
    log_start = 0;
  // Daemonize: fork, setsid, fork again; the grandchild becomes joyd.
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0)
    throw command_error{std::string{"pipe: "} + std::strerror(errno)};
  pid_t first = ::fork();
  if (first < 0)
    throw command_error{std::string{"fork: "} + std::strerror(errno)};
  if (first == 0) {
    ::setsid();
    pid_t second = ::fork();
    if (second != 0) {
      // Report the daemon's pid to the waiting `joy start`, then leave.
      ::write(pipefd[1], &second, sizeof(second));
      ::_exit(second > 0 ? 0 : 1);
    }
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log = ::open(log_path.c_str(),
                     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    // dup2 clears CLOEXEC on 0-2 only; the originals close at exec.
    ::dup2(null, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    // A daemon keeps nothing its starter had open.
    ::close_range(3, ~0U, 0);
    ::execv(joyd.c_str(), argv.data());
    std::fprintf(stderr, "joy: cannot run %s: %s\n", joyd.c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  ::close(pipefd[1]);
  pid_t daemon = -1;
  auto n = ::read(pipefd[0], &daemon, sizeof(daemon));
  ::close(pipefd[0]);
  ::waitpid(first, nullptr, 0);
  if (n != sizeof(daemon) || daemon <= 0)
    throw command_error{"could not start joyd"};
  // Wait until it answers, or tell why it did not.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto client = node_client::connect(home, 2s)) {
      std::cout << "joy: node " << (*client)->node_id() << " started in "
                << home << " (pid " << daemon << ", log " << log_path << ")\n";
      report_join(**client);
      return 0;
    }
    if (::kill(daemon, 0) != 0)
      throw command_error{"joyd exited during start; the end of " + log_path
                          + ":\n" + log_since(log_path, log_start, 5)};
    std::this_thread::sleep_for(50ms);
  }
  throw command_error{"joyd did not answer within 20 s; see " + log_path};
}

int cmd_stop(const std::string& home) {
  auto client = connect(home);
  auto id = client->node_id();
  auto done = client->wait(client->node().shutdownRequest().send(), 10s);
  if (!done && joy::code_of(done.error()) != joy::errc::disconnected)
    fail(done.error());
  client.reset();
  // The daemon holds the home's lock until its very end.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (home_locked(home)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw command_error{"the node did not stop within 60 s"};
    std::this_thread::sleep_for(20ms);
  }
  std::cout << "joy: node " << id << " stopped\n";
  return 0;
}

// -- status / plugins / install -----------------------------------------------

int cmd_status(const std::string& home, bool as_json) {
  auto client = connect(home);
  // Every node of the cluster, this one first.
  auto resp = check(client->wait(client->node().nodesRequest().send(), 30s));
  auto result = resp.getResult();
  if (result.isErr())
    fail(joy::read_error(result.getErr()));
  auto nodes = result.getOk();
  if (as_json) {
    auto out = joy::cli::status_json(nodes[0]);
    joy::json others = joy::json::array();
    for (unsigned i = 1; i < nodes.size(); ++i)
      others.push_back(joy::cli::status_json(nodes[i]));
    out["cluster"] = std::move(others);
    print_json(out);
    return 0;
  }
  // Plugins' log lines and remote nodes' errors are in it.
  for (unsigned i = 0; i < nodes.size(); ++i)
    std::cout << (i > 0 ? "\n" : "")
              << joy::cli::printable(joy::cli::status_text(nodes[i]),
                                     std::string::npos);
  return 0;
}

int cmd_plugins(const std::string& home, bool as_json) {
  auto client = connect(home);
  auto resp = check(client->wait(client->node().pluginsRequest().send(), 30s));
  auto result = resp.getResult();
  if (result.isErr())
    fail(joy::read_error(result.getErr()));
  if (as_json) {
    joy::json out = joy::json::array();
    for (auto p : result.getOk())
      out.push_back(joy::cli::plugin_json(p));
    print_json(out);
  } else {
    std::cout << joy::cli::printable(joy::cli::plugins_table(result.getOk()),
                                     std::string::npos);
  }
  return 0;
}

void print_installed(joy::wire::PluginResult::Reader result, bool as_json) {
  if (result.isErr())
    fail(joy::read_error(result.getErr()));
  auto p = result.getOk();
  if (as_json) {
    print_json(joy::cli::plugin_json(p));
  } else {
    std::cout << "installed " << p.getName().cStr() << " "
              << p.getVersion().cStr() << " (" << p.getType().cStr()
              << ") from " << p.getSource().cStr() << "\n  path    "
              << p.getPath().cStr() << "\n  sha256  " << p.getSha256().cStr()
              << "\n  state   " << p.getState().cStr() << "\n";
  }
}

/// `node`: install on that node of the cluster (an id or a unique prefix;
/// "" lets the head place it); nullopt: on this node.
int cmd_install(const std::string& home, const std::string& source,
                const std::optional<std::string>& node, bool as_json) {
  // A local folder wins; otherwise the node reads URLs and manifest
  // references itself (and says what it cannot parse).
  std::error_code ec;
  auto path = fs::absolute(source, ec).lexically_normal();
  auto remote = source.find("://") != std::string::npos
                || (source.find(':') != std::string::npos
                    && source.find('/') != std::string::npos);
  // ImJoy's FILE.imjoy.html@TAG picks a variant of a local file too.
  auto file = path.string();
  if (auto at = file.rfind(".imjoy.html@"); at != std::string::npos)
    file.resize(at + std::string_view{".imjoy.html"}.size());
  if (!remote && (source.empty() || ec || !fs::exists(file)))
    throw command_error{"error (not_found): "
                        + (source.empty() ? std::string{"''"} : source)
                        + " does not exist"};
  auto client = connect(home);
  auto text = !remote || fs::exists(file) ? path.string() : source;
  if (!node) {
    auto req = client->node().installRequest();
    req.setSource(text);
    auto resp = check(client->wait(req.send(), 0ms));
    print_installed(resp.getResult(), as_json);
    return 0;
  }
  auto req = client->node().installOnRequest();
  req.setSource(text);
  req.setNode(*node);
  auto resp = check(client->wait(req.send(), 0ms));
  print_installed(resp.getResult(), as_json);
  return 0;
}

/// Takes the bytes of a stream into memory, refusing more than announced.
class byte_collector final : public joy::wire::ByteSink::Server {
public:
  explicit byte_collector(std::string& out, uint64_t size)
    : out_(out), size_(size) {}

protected:
  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    if (chunk.size() > size_ - out_.size())
      return KJ_EXCEPTION(FAILED, "the stream sent more than it announced");
    out_.append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    return kj::READY_NOW;
  }

private:
  std::string& out_;
  uint64_t size_;
};

/// Reads a call's result: function values as names only (the CLI ends
/// before anyone could call them), and large arrays, which the node sends
/// as streams, pulled into memory on the spot.
class result_reader final : public joy::wire_hooks {
public:
  /// `timeout` bounds pulling each stream too (zero: no limit).
  result_reader(node_client& client, std::chrono::milliseconds timeout)
    : client_(client), timeout_(timeout) {}

  caf::error write_function(const joy::function_ref& f,
                            joy::wire::Function::Builder) override {
    return joy::make_error(joy::errc::unimplemented,
                           "the CLI cannot pass function '" + f.name + "'");
  }

  caf::expected<joy::function_ref>
  read_function(joy::wire::Function::Reader in) override {
    return joy::function_ref{nullptr, in.getName()};
  }

  caf::expected<joy::buffer>
  read_binary(joy::wire::Binary::Reader in) override {
    if (!in.isStream())
      return joy::wire_hooks::read_binary(in);
    auto stream = in.getStream();
    auto size = stream.getSize();
    // Printed as base64 JSON, a result beyond this is no use on a terminal
    // or in a pipe; a plugin that answers it meant another plugin.
    constexpr uint64_t most = uint64_t{2} << 30;
    if (size > most)
      return joy::make_error(joy::errc::too_large,
                             "the result holds " + std::to_string(size)
                               + " bytes of binary data; joy call prints at "
                                 "most 2 GiB");
    std::string bytes;
    try {
      bytes.reserve(size);
    } catch (const std::exception&) {
      return joy::make_error(joy::errc::too_large,
                             "the result holds " + std::to_string(size)
                               + " bytes of binary data, more than this "
                                 "machine can hold in memory");
    }
    auto req = stream.getSource().pipeToRequest();
    req.setSink(kj::heap<byte_collector>(bytes, size));
    auto piped
      = client_.wait(req.send().then([](auto&&) { return true; }), timeout_);
    if (!piped)
      return std::move(piped.error());
    if (bytes.size() != size)
      return joy::make_error(joy::errc::protocol_error,
                             "a stream of " + std::to_string(size)
                               + " bytes ended after "
                               + std::to_string(bytes.size()));
    return joy::buffer::take(std::move(bytes));
  }

private:
  node_client& client_;
  std::chrono::milliseconds timeout_;
};

/// Prints the last `lines` lines of a plugin's log; with `follow`, keeps
/// printing what is written (across rotations) until interrupted.
int cmd_logs(const std::string& home, const std::string& name,
             std::size_t lines, bool follow) {
  // The node must know the plugin (and be this machine's node).
  auto client = connect(home);
  auto resp = check(client->wait(client->node().pluginsRequest().send(), 30s));
  auto result = resp.getResult();
  if (result.isErr())
    fail(joy::read_error(result.getErr()));
  bool known = false;
  for (auto p : result.getOk())
    known = known || name == p.getName().cStr();
  if (!known)
    throw command_error{"error (not_found): no plugin named '" + name
                        + "' is installed"};
  client.reset();
  auto path = home + "/logs/" + name + ".log";
  auto tail = joy::tail_lines(path, lines);
  if (!tail)
    fail(tail.error());
  std::cout << *tail;
  if (!tail->empty() && tail->back() != '\n')
    std::cout << "\n";
  std::cout.flush();
  if (!follow)
    return 0;
  // Follow by polling: cheap, and a truncation (rotation) is seen as the
  // file getting shorter than what was read.
  std::error_code ec;
  auto offset = fs::exists(path, ec) ? fs::file_size(path, ec) : 0;
  for (;;) {
    std::this_thread::sleep_for(200ms);
    auto size = fs::exists(path, ec) ? fs::file_size(path, ec) : 0;
    if (size < offset)
      offset = 0;
    if (size == offset)
      continue;
    std::ifstream f{path, std::ios::binary};
    f.seekg(static_cast<std::streamoff>(offset));
    std::string chunk(size - offset, '\0');
    f.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    chunk.resize(static_cast<std::size_t>(f.gcount()));
    std::cout << chunk << std::flush;
    offset += chunk.size();
  }
}

/// uninstall and rollback: one name in, a plugin's info out.
int cmd_plugin_op(const std::string& home, const std::string& what,
                  const std::string& name) {
  auto client = connect(home);
  auto done = [&](auto resp) {
    auto result = resp.getResult();
    if (result.isErr())
      fail(joy::read_error(result.getErr()));
    auto p = result.getOk();
    std::cout << what << " " << p.getName().cStr() << " "
              << p.getVersion().cStr() << "\n";
    return 0;
  };
  if (what == "uninstalled") {
    auto req = client->node().uninstallRequest();
    req.setName(name);
    return done(check(client->wait(req.send(), 0ms)));
  }
  if (what == "restarted") {
    // A restart forgives the plugin's crashes: its supervision budget
    // starts afresh.
    auto stop = client->node().stopPluginRequest();
    stop.setName(name);
    auto stopped = check(client->wait(stop.send(), 60s)).getResult();
    if (stopped.isErr())
      fail(joy::read_error(stopped.getErr()));
    auto req = client->node().startPluginRequest();
    req.setName(name);
    return done(check(client->wait(req.send(), 60s)));
  }
  auto req = client->node().rollbackRequest();
  req.setName(name);
  return done(check(client->wait(req.send(), 60s)));
}

// -- call ---------------------------------------------------------------------

/// Shows a call's progress on stderr.
class progress_printer final : public joy::wire::CallMonitor::Server {
public:
  kj::Promise<void> progress(ProgressContext context) override {
    auto params = context.getParams();
    std::fprintf(stderr, "joy: progress %.0f%% %s\n",
                 params.getFraction() * 100,
                 joy::cli::printable(params.getMessage().cStr(), 1024).c_str());
    return kj::READY_NOW;
  }
};

int cmd_call(const std::string& home, const std::string& plugin,
             const std::string& method,
             const std::vector<std::string>& raw_args, double timeout_s,
             bool show_progress) {
  joy::value_list args;
  for (std::size_t i = 0; i < raw_args.size(); ++i) {
    auto x = joy::from_json(raw_args[i]);
    if (!x) {
      auto n = std::to_string(i + 1);
      // Valid JSON that is no Joy value (an unknown _rtype, say) is told
      // as such; quoting would not help it.
      if (joy::json::accept(raw_args[i]))
        throw command_error{"error (invalid_argument): argument " + n + ": "
                            + joy::message_of(x.error())};
      throw command_error{"error (invalid_argument): argument " + n
                          + " is not valid JSON (" + joy::message_of(x.error())
                          + "); quote strings as '\"text\"'"};
    }
    args.push_back(std::move(*x));
  }
  auto client = connect(home);
  auto req = client->node().callRequest();
  req.setPlugin(plugin);
  req.setMethod(method);
  if (auto err
      = joy::write_list(args, req.initArgs(static_cast<unsigned>(args.size()))))
    fail(err);
  req.initKwargs(0);
  auto timeout_ms = static_cast<uint64_t>(timeout_s * 1000);
  req.setTimeoutMs(timeout_ms);
  if (show_progress)
    req.setMonitor(kj::heap<progress_printer>());
  // The node enforces the deadline (which progress renews); the call ends
  // here too if the node goes away.
  auto resp = check(client->wait(req.send(), 0ms));
  result_reader hooks{
    *client, std::chrono::milliseconds{static_cast<int64_t>(timeout_ms)}};
  auto result = joy::read_result(resp.getResult(), &hooks);
  if (!result)
    fail(result.error());
  auto text = joy::to_json(*result);
  if (!text)
    fail(text.error());
  std::cout << *text << "\n";
  return 0;
}

/// The command line for CLI11, in its reversed order, without the `--` a
/// `joy call` may have before arguments that look like options
/// (`joy call f add -- -1 2`): CLI11 2.1 refuses what follows it, and no
/// JSON value is `--`.
std::vector<std::string> call_arguments(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::size_t i = 0;
  while (i < args.size() && args[i].rfind("-", 0) == 0)
    i += args[i] == "--home" ? 2 : 1;
  if (i < args.size() && args[i] == "call") {
    auto dash = std::find(args.begin() + static_cast<std::ptrdiff_t>(i),
                          args.end(), "--");
    if (dash != args.end())
      args.erase(dash);
  }
  std::reverse(args.begin(), args.end());
  return args;
}

} // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"joy: run and call ImJoy-style plugins on Joy nodes.\n"
               "The node is the one of --home (default: $JOY_HOME or ~/.joy)."};
  app.name("joy");
  app.require_subcommand(1);
  std::string home = joy::default_home();
  app.add_option("--home", home, "The node's home directory");
  app.set_version_flag("--version", "joy " + std::string{joy::version()});

  auto* start = app.add_subcommand("start", "Start the node daemon");
  bool foreground = false;
  double call_timeout = 0;
  double stop_grace = -1;
  start->add_flag("--foreground", foreground,
                  "Stay in the foreground (logs to stderr)");
  start
    ->add_option("--call-timeout", call_timeout,
                 "Seconds a call may run when the caller gives no deadline")
    ->check(joy::cli_checks::positive);
  start
    ->add_option("--stop-grace", stop_grace,
                 "Seconds a plugin gets to exit before it is killed")
    ->check(joy::cli_checks::non_negative);
  std::string log_max_bytes;
  std::string log_check;
  start->add_option(
    "--log-max-bytes", log_max_bytes,
    "Rotate a log larger than this many bytes (default 10 MiB)");
  start->add_option("--log-check", log_check,
                    "Seconds between log checks (default 10)");
  std::string manifest_base;
  start->add_option("--manifest-base", manifest_base,
                    "Where user/repo:Name references are read (default: "
                    "https://raw.githubusercontent.com)");
  std::string large_data;
  start
    ->add_option("--large-data", large_data,
                 "How plugins send large arrays to each other: shm (shared "
                 "memory, default) or stream (chunked copies)")
    ->check(CLI::IsMember({"shm", "stream"}));
  std::string gpus;
  start
    ->add_option("--gpus", gpus,
                 "GPUs the node offers to plugins that ask for them "
                 "(default: the CUDA devices it finds)")
    ->check(joy::cli_checks::non_negative);
  std::string gpu_service;
  start
    ->add_option("--gpu-service", gpu_service,
                 "Whether the node serves the built-in gpu service: on "
                 "(default) or off")
    ->check(CLI::IsMember({"on", "off"}));
  std::string sandbox;
  start
    ->add_option("--sandbox", sandbox,
                 "How plugins are isolated: bwrap (default) or none (no "
                 "isolation: only for plugins you wrote yourself)")
    ->check(CLI::IsMember({"bwrap", "none"}));
  std::string plugin_user;
  start->add_option("--plugin-uids", plugin_user,
                    "FIRST[:COUNT]: as root, each plugin runs as a uid of "
                    "its own from this range (default 200000:65536)");
  std::string landlock;
  start
    ->add_option("--landlock", landlock,
                 "Landlock in the sandbox when the kernel has it: on "
                 "(default) or off")
    ->check(CLI::IsMember({"on", "off"}));
  std::string cgroup_root;
  auto* cgroup_root_opt
    = start->add_option("--cgroup-root", cgroup_root,
                        "Where the cgroup hierarchy is mounted (default "
                        "/sys/fs/cgroup; '' for none: limits not enforced)");
  std::string bwrap;
  start->add_option("--bwrap", bwrap,
                    "The bubblewrap program (default /usr/bin/bwrap)");
  std::vector<std::string> supervision;
  start
    ->add_option("--restart", supervision,
                 "Supervision: INTENSITY PERIOD_S BACKOFF_MIN_S "
                 "BACKOFF_MAX_S (default 5 30 0.5 30)")
    ->expected(4);
  // The cluster's options go to joyd as they are (docs/cluster.md).
  bool start_head = false;
  start->add_flag("--head", start_head,
                  "Run the cluster's directory (the default without "
                  "--address)");
  const std::vector<std::pair<std::string, std::string>> cluster_options{
    {"--address", "Join the cluster whose head listens at HOST[:PORT]"},
    {"--listen", "Listen for other nodes on HOST[:PORT] (default port 7700)"},
    {"--advertise", "HOST:PORT other nodes use to reach this one"},
    {"--token-file", "The cluster token (default $JOY_HOME/cluster.token)"},
    {"--tls", "Mutual TLS between nodes: auto (default), on or off"},
    {"--tls-dir", "Certificates from `joy cert` (default $JOY_HOME/tls)"},
    {"--heartbeat", "Seconds between heartbeats (default 1)"},
    {"--phi", "Suspicion level at which a silent node is down (default 8)"},
    {"--acceptable-pause", "Seconds of silence tolerated (default 3)"},
    {"--config", "A TOML file of joyd's options (default "
                 "$JOY_HOME/joyd.toml)"},
    {"--bridge", "Serve the browser core and hypha-rpc clients on "
                 "HOST[:PORT] (default port 9527)"},
    {"--bridge-url", "The URL browser clients are told"},
    {"--bridge-call-timeout",
     "Seconds a client's call into a plugin may take (default 600)"},
    {"--bridge-chunked-total", "Most bytes of chunked messages all clients "
                               "may have open at once (default 1 GiB)"},
    {"--web-root", "The browser core's files (default: next to the "
                   "programs)"},
    {"--plugin-uid-claims", "As root, where every daemon on this machine "
                            "claims its plugins' uids (default "
                            "/var/lib/joy/plugin-uids)"}};
  std::map<std::string, std::string> cluster_values;
  for (auto& [flag, help] : cluster_options)
    start->add_option(flag, cluster_values[flag], help);
  std::vector<std::string> bridge_origins;
  start->add_option("--bridge-origin", bridge_origins,
                    "A browser origin (scheme://host:port) allowed besides "
                    "the bridge's own; repeatable");
  bool bridge_anonymous = false;
  start->add_flag("--bridge-anonymous", bridge_anonymous,
                  "Let clients beyond loopback connect without a token");

  app.add_subcommand("stop", "Stop the node and every plugin");

  joy::cli::cert_args cert_args;
  auto* cert = joy::cli::add_cert_command(app, cert_args);

  joy::cli::token_args token_args;
  auto* token = joy::cli::add_token_command(app, token_args);

  auto* status = app.add_subcommand(
    "status", "Show the node: identity, resources, plugins");
  bool status_json = false;
  status->add_flag("--json", status_json, "Print JSON");

  auto* install = app.add_subcommand(
    "install", "Install a plugin (folder, URL or user/repo:Name) and start it");
  std::string source;
  bool install_json = false;
  install
    ->add_option("source", source,
                 "A plugin folder (with plugin.json), an ImJoy file "
                 "(.imjoy.html[@tag]), an http(s) URL of either (a folder "
                 "as .tar.gz), or user/repo[@ref]:Name[@tag]")
    ->required();
  install->add_flag("--json", install_json, "Print JSON");
  std::string install_node;
  auto* install_node_opt = install->add_option(
    "--node", install_node,
    "Install on this node of the cluster (its id or a unique prefix; '' "
    "places it by the manifest's resources)");

  app.add_subcommand("ui", "Be the node's UI: show plugins' alerts and "
                           "answer their prompts here");

  auto* uninstall = app.add_subcommand(
    "uninstall", "Stop a plugin and remove it, every version and setting");
  std::string uninstall_name;
  uninstall->add_option("plugin", uninstall_name, "The plugin's name")
    ->required();

  auto* restart = app.add_subcommand(
    "restart", "Stop a plugin and start it afresh (also after it failed)");
  std::string restart_name;
  restart->add_option("plugin", restart_name, "The plugin's name")->required();

  auto* rollback = app.add_subcommand(
    "rollback", "Run the version of a plugin installed before the current one");
  std::string rollback_name;
  rollback->add_option("plugin", rollback_name, "The plugin's name")
    ->required();

  auto* logs = app.add_subcommand("logs", "Show a plugin's log (its stdout, "
                                          "stderr and api.log lines)");
  std::string logs_name;
  std::size_t logs_lines = 50;
  bool logs_follow = false;
  logs->add_option("plugin", logs_name, "The plugin's name")->required();
  logs->add_option("-n,--lines", logs_lines, "How many of the last lines")
    ->check(joy::cli_checks::non_negative);
  logs->add_flag("-f,--follow", logs_follow, "Keep printing what it writes");

  auto* make = app.add_subcommand("new", "Create something new");
  auto* new_plugin = make->add_subcommand(
    "plugin", "Write a plugin folder that builds outside this repository "
              "with find_package(Joy)");
  make->require_subcommand(1);
  std::string new_name;
  std::string new_dir;
  bool new_actor = false;
  new_plugin->add_option("name", new_name, "The plugin's name")->required();
  new_plugin->add_option("--dir", new_dir, "Where (default: ./NAME)");
  new_plugin->add_flag("--actor", new_actor,
                       "Write it as a typed actor instead of functions");

  auto* plugins = app.add_subcommand("plugins", "List the installed plugins");
  bool plugins_json = false;
  plugins->add_flag("--json", plugins_json, "Print JSON");

  auto* call = app.add_subcommand(
    "call", "Call a plugin's method; each argument is JSON, the result prints "
            "as JSON on one line");
  std::string plugin;
  std::string method;
  double timeout = 0;
  call->add_option("plugin", plugin, "The plugin's name")->required();
  call->add_option("method", method, "The method to call")->required();
  // The arguments are taken raw from what CLI11 leaves over: as an option it
  // would split "[1,2]" into two values, and each one here is one JSON value.
  call->allow_extras();
  call->footer("ARGS: one JSON value each, e.g. 2, 2.5, '\"text\"', '[1,2]', "
               "'{\"_rtype\":\"memoryview\",\"_rvalue\":\"AAH/\"}'");
  call
    ->add_option("--timeout", timeout,
                 "Give up after this many seconds without a result or "
                 "progress (the call is cancelled in the plugin)")
    ->check(joy::cli_checks::positive);
  bool show_progress = false;
  call->add_flag("--progress", show_progress,
                 "Show the call's progress on stderr");

  try {
    app.parse(call_arguments(argc, argv));
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "joy: " << e.what() << " (see joy --help)\n";
    return 2;
  }
  try {
    if (start->parsed()) {
      std::vector<std::string> extra;
      if (call_timeout > 0)
        extra.insert(extra.end(),
                     {"--call-timeout", std::to_string(call_timeout)});
      if (stop_grace >= 0)
        extra.insert(extra.end(), {"--stop-grace", std::to_string(stop_grace)});
      if (!log_max_bytes.empty())
        extra.insert(extra.end(), {"--log-max-bytes", log_max_bytes});
      if (!log_check.empty())
        extra.insert(extra.end(), {"--log-check", log_check});
      if (!manifest_base.empty())
        extra.insert(extra.end(), {"--manifest-base", manifest_base});
      if (!large_data.empty())
        extra.insert(extra.end(), {"--large-data", large_data});
      if (!gpus.empty())
        extra.insert(extra.end(), {"--gpus", gpus});
      if (!gpu_service.empty())
        extra.insert(extra.end(), {"--gpu-service", gpu_service});
      if (!sandbox.empty())
        extra.insert(extra.end(), {"--sandbox", sandbox});
      if (!plugin_user.empty())
        extra.insert(extra.end(), {"--plugin-uids", plugin_user});
      if (!landlock.empty())
        extra.insert(extra.end(), {"--landlock", landlock});
      if (!bwrap.empty())
        extra.insert(extra.end(), {"--bwrap", bwrap});
      // '' is a value of its own here: no cgroups.
      if (cgroup_root_opt->count() > 0)
        extra.insert(extra.end(), {"--cgroup-root", cgroup_root});
      if (!supervision.empty()) {
        extra.emplace_back("--restart");
        extra.insert(extra.end(), supervision.begin(), supervision.end());
      }
      if (start_head)
        extra.emplace_back("--head");
      for (auto& [flag, val] : cluster_values) {
        if (val.empty())
          continue;
        // Paths as the user meant them, whatever joyd's directory.
        bool path = flag == "--token-file" || flag == "--tls-dir"
                    || flag == "--config" || flag == "--web-root"
                    || flag == "--plugin-uid-claims";
        extra.insert(extra.end(),
                     {flag, path ? fs::absolute(val).string() : val});
      }
      for (auto& origin : bridge_origins)
        extra.insert(extra.end(), {"--bridge-origin", origin});
      if (bridge_anonymous)
        extra.emplace_back("--bridge-anonymous");
      return cmd_start(home, foreground, extra);
    }
    if (cert->parsed())
      return joy::cli::run_cert_command(cert_args, home);
    if (token->parsed())
      return joy::cli::run_token_command(token_args, home);
    if (app.got_subcommand("stop"))
      return cmd_stop(home);
    if (app.got_subcommand("ui"))
      return joy::cli::cmd_ui(home);
    if (status->parsed())
      return cmd_status(home, status_json);
    if (install->parsed())
      return cmd_install(home, source,
                         install_node_opt->count() > 0
                           ? std::optional<std::string>{install_node}
                           : std::nullopt,
                         install_json);
    if (logs->parsed())
      return cmd_logs(home, logs_name, logs_lines, logs_follow);
    if (uninstall->parsed())
      return cmd_plugin_op(home, "uninstalled", uninstall_name);
    if (restart->parsed())
      return cmd_plugin_op(home, "restarted", restart_name);
    if (rollback->parsed())
      return cmd_plugin_op(home, "rolled back to", rollback_name);
    if (plugins->parsed())
      return cmd_plugins(home, plugins_json);
    if (new_plugin->parsed())
      return joy::cli::cmd_new_plugin(new_name, new_dir, new_actor);
    if (call->parsed())
      return cmd_call(home, plugin, method, call->remaining(), timeout,
                      show_progress);
  } catch (const command_error& e) {
    std::cerr << "joy: " << joy::cli::printable(e.message) << "\n";
    return e.exit_code;
  }
  return 0;
}
