// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joyd: the node daemon (DESIGN §2). One CAF actor_system, one kj thread,
// the sqlite registry, and the plugin processes it supervises. Usually
// started by `joy start`; `joyd --home DIR` runs it in the foreground.
//
// Everything is built here and passed down; there are no singletons.
// Shutdown order (SIGINT, SIGTERM, or `joy stop`): stop accepting, stop every
// plugin (exit(), grace, SIGKILL), end the actors, join the kj thread, then
// destroy the actor_system.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <string>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <kj/compat/tls.h>

#include "actors/cluster/cluster_actor.hpp"
#include "actors/cluster/tls.hpp"
#include "actors/core/core_actor.hpp"
#include "actors/core/service_snapshot.hpp"
#include "actors/node/node_actor.hpp"
#include "actors/plugin_host/kj_routes.hpp"
#include "actors/plugin_host/process_launcher.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "actors/registry/plugin_store.hpp"
#include "actors/registry/registry_actor.hpp"
#include "actors/sandbox/cgroup.hpp"
#include "actors/sandbox/landlock.hpp"
#include "actors/sandbox/sandbox_policy.hpp"
#include "nodes/joyd/bridge_node.hpp"
#include "nodes/joyd/builtin_gpu.hpp"
#include "nodes/joyd/cluster_links.hpp"
#include "nodes/joyd/control_server.hpp"
#include "runtime/allocator.hpp"
#include "runtime/cli_checks.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/large_data.hpp"
#include "runtime/log.hpp"
#include "runtime/paths.hpp"
#include "runtime/protocol.hpp"
#include "runtime/system_config.hpp"
#include "runtime/unique_fd.hpp"
#include "runtime/value_codec.hpp"

namespace fs = std::filesystem;

namespace {

int fail(const std::string& why) {
  std::fprintf(stderr, "joyd: %s\n", why.c_str());
  return 1;
}

std::string random_id() {
  std::random_device rd;
  char buf[33];
  for (int i = 0; i < 4; ++i)
    std::snprintf(buf + 8 * i, 9, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

/// One daemon per home: an exclusive lock on `<home>/joyd.lock`, held for
/// the daemon's life (the kernel drops it if the daemon is killed).
joy::unique_fd lock_home(const std::string& home, std::string& error) {
  auto path = home + "/joyd.lock";
  joy::unique_fd fd{::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)};
  if (!fd) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return {};
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    std::ifstream in{path};
    std::string pid;
    std::getline(in, pid);
    error = "a node is already running in " + home
            + (pid.empty() ? "" : " (pid " + pid + ")");
    return {};
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0
      || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    return {};
  }
  return fd;
}

/// The port nodes listen on and dial when an address names none.
constexpr const char* default_port = "7700";

std::string with_port(std::string address) {
  if (address.empty() || address.back() == ']'
      || address.find(':') == std::string::npos)
    return address + ":" + default_port;
  return address;
}

/// The cluster token: from `file`, or on a head without one, made once in
/// `<home>/cluster.token` for the workers to copy.
caf::expected<std::string> cluster_token(const std::string& home,
                                         std::string file, bool head) {
  if (file.empty())
    file = home + "/cluster.token";
  std::ifstream in{file};
  std::string token;
  if (in) {
    std::getline(in, token);
    while (!token.empty()
           && std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    if (token.size() < 16)
      return joy::make_error(joy::errc::invalid_argument,
                             "the cluster token in " + file
                               + " is shorter than 16 characters");
    return token;
  }
  if (!head)
    return joy::make_error(joy::errc::not_found,
                           "joining a cluster needs its token: copy the "
                           "head's cluster.token and pass --token-file ("
                             + file + " does not exist)");
  std::random_device rd;
  char buf[65];
  for (int i = 0; i < 8; ++i)
    std::snprintf(buf + 8 * i, 9, "%08x", static_cast<unsigned>(rd()));
  token = buf;
  auto old = ::umask(077);
  std::ofstream out{file};
  out << token << "\n";
  ::umask(old);
  if (!out)
    return joy::make_error(joy::errc::io_error, "cannot write " + file);
  joy::log(joy::log_level::info, "joyd", "made a cluster token in ", file,
           ": workers need a copy (--token-file)");
  return token;
}

/// `--home` as given on the command line, before CLI11 parses it (the
/// config file's default place depends on it).
std::string home_from_args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--home" && i + 1 < argc)
      return argv[i + 1];
    if (a.rfind("--home=", 0) == 0)
      return a.substr(7);
  }
  return joy::default_home();
}

} // namespace

int main(int argc, char** argv) {
  joy::tune_allocator();
  CLI::App app{"joyd: the Joy node daemon. Usually started by `joy start`."};
  std::string home = joy::default_home();
  double call_timeout_s = 120;
  double stop_grace_s = 5;
  bool show_version = false;
  uint64_t log_max_bytes = uint64_t{10} << 20;
  double log_check_s = 10;
  std::string manifest_base = joy::node_config{}.manifest_base;
  std::string large_data = joy::node_config{}.large_data;
  app.add_option("--home", home,
                 "The node's home (default: $JOY_HOME or ~/.joy)");
  app
    .add_option("--call-timeout", call_timeout_s,
                "Seconds a call may run when the caller gives no deadline")
    ->check(joy::cli_checks::positive);
  app
    .add_option("--stop-grace", stop_grace_s,
                "Seconds a plugin gets to exit before it is killed")
    ->check(joy::cli_checks::non_negative);
  app.add_option("--log-max-bytes", log_max_bytes,
                 "Rotate a log larger than this (plugins' and joyd's)");
  app.add_option("--log-check", log_check_s, "Seconds between log checks")
    ->check(joy::cli_checks::positive);
  app.add_option("--manifest-base", manifest_base,
                 "Where user/repo:Name references are read (default: "
                 "GitHub's raw content)");
  app
    .add_option("--large-data", large_data,
                "How plugins on this node send large arrays to each other: "
                "shm (shared memory, default) or stream (chunked copies)")
    ->check(CLI::IsMember({"shm", "stream"}));
  int gpus = -1;
  app
    .add_option("--gpus", gpus,
                "GPUs this node offers to plugins that ask for them "
                "(default: the CUDA devices joy-gpu-host finds)")
    ->check(joy::cli_checks::non_negative);
  std::string gpu_service = "on";
  app
    .add_option("--gpu-service", gpu_service,
                "Whether this node serves the built-in gpu service "
                "(joy-gpu-host, started on first use): on (default) or off")
    ->check(CLI::IsMember({"on", "off"}));
  std::string sandbox = "bwrap";
  app
    .add_option("--sandbox", sandbox,
                "How plugins are isolated: bwrap (default) or none (no "
                "isolation at all: only for plugins you wrote yourself)")
    ->check(CLI::IsMember({"bwrap", "none"}));
  std::string plugin_user = "200000:65536";
  std::string uid_claims_dir = "/var/lib/joy/plugin-uids";
  app.add_option("--plugin-uid-claims", uid_claims_dir,
                 "As root, where every daemon on this machine claims its "
                 "plugins' uids (default /var/lib/joy/plugin-uids)");
  app.add_option("--plugin-uids", plugin_user,
                 "FIRST[:COUNT]: when joyd runs as root, each plugin runs as "
                 "a uid of its own from this range (default 200000:65536; "
                 "COUNT 1 shares one uid)");
  std::string landlock = "on";
  app
    .add_option("--landlock", landlock,
                "Landlock inside the sandbox when the kernel has it: on "
                "(default) or off")
    ->check(CLI::IsMember({"on", "off"}));
  std::string cgroup_root = "/sys/fs/cgroup";
  app.add_option("--cgroup-root", cgroup_root,
                 "Where the cgroup hierarchy is mounted ('' for none)");
  std::vector<double> restart{5, 30, 0.5, 30};
  app
    .add_option("--restart", restart,
                "Supervision: INTENSITY PERIOD_S BACKOFF_MIN_S BACKOFF_MAX_S "
                "(default 5 30 0.5 30): crashes within PERIOD_S restart at "
                "once up to INTENSITY, then after a doubling delay, then the "
                "plugin is failed")
    ->expected(4);
  std::string bwrap = joy::sandbox_settings{}.bwrap;
  app.add_option("--bwrap", bwrap, "The bubblewrap program");
  // -- the cluster (docs/cluster.md)
  // --------------------------------------------
  bool head_flag = false;
  std::string join;
  std::string listen;
  std::string advertise;
  std::string token_file;
  std::string tls_mode = "auto";
  std::string tls_dir;
  double heartbeat_s = 1;
  double phi_threshold = 8;
  double acceptable_pause_s = 3;
  app.add_flag("--head", head_flag,
               "Run the cluster's directory (the default without --address)");
  app.add_option("--address", join,
                 "Join the cluster whose head listens at HOST[:PORT] "
                 "(default port 7700)");
  app.add_option("--listen", listen,
                 "Listen for other nodes on HOST[:PORT] (port 0: any free "
                 "one). Beyond loopback this requires TLS");
  app.add_option("--advertise", advertise,
                 "HOST:PORT other nodes use to reach this one (default: the "
                 "listen address)");
  app.add_option("--token-file", token_file,
                 "The cluster token (default $JOY_HOME/cluster.token, made "
                 "by a head that has none)");
  app
    .add_option("--tls", tls_mode,
                "Mutual TLS between nodes: auto (default: on when the TLS "
                "dir has certificates or an address is not loopback), on, off")
    ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--tls-dir", tls_dir,
                 "ca.pem, node.pem and node-key.pem from `joy cert` "
                 "(default $JOY_HOME/tls)");
  app.add_option("--heartbeat", heartbeat_s, "Seconds between heartbeats")
    ->check(joy::cli_checks::positive);
  app
    .add_option("--phi", phi_threshold,
                "Suspicion level at which a silent node is down (default 8)")
    ->check(joy::cli_checks::positive);
  app
    .add_option("--acceptable-pause", acceptable_pause_s,
                "Seconds of silence tolerated beyond the usual (default 3)")
    ->check(joy::cli_checks::non_negative);
  joy::bridge_options bridge_opts;
  app.add_option("--bridge", bridge_opts.address,
                 "Serve the browser core and the hypha-rpc WebSocket endpoint "
                 "on HOST[:PORT] (default port 9527; port 0: any free one)");
  app.add_option("--bridge-origin", bridge_opts.origins,
                 "A browser origin (scheme://host:port) allowed to connect "
                 "besides the bridge's own; repeatable");
  app.add_option("--bridge-url", bridge_opts.url,
                 "The URL clients are told (default http://HOST:PORT)");
  app.add_flag("--bridge-anonymous", bridge_opts.anonymous_remote,
               "Let clients beyond loopback connect without a token");
  double bridge_call_timeout_s = 600;
  app
    .add_option("--bridge-call-timeout", bridge_call_timeout_s,
                "Seconds a client's call into a plugin may take before the "
                "bridge answers it with a timeout (default 600)")
    ->check(joy::cli_checks::positive);
  app
    .add_option("--bridge-chunked-total", bridge_opts.chunked_total,
                "Most bytes of chunked messages all clients may have open "
                "at once (default 1 GiB)")
    ->check(joy::cli_checks::positive);
  app.add_option("--web-root", bridge_opts.web_root,
                 "The browser core's files (default: next to the programs)");
  app.set_config("--config", home_from_args(argc, argv) + "/joyd.toml",
                 "A TOML file of these options (default $JOY_HOME/joyd.toml, "
                 "read when it exists)");
  // A misspelt key would otherwise start a node without what it asked for.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_flag("--version", show_version, "Print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse KEY" of a key it does not know.
    std::string what = e.what();
    std::string prefix = "INI was not able to parse ";
    if (what.rfind(prefix, 0) == 0)
      what = "unknown key '" + what.substr(prefix.size())
             + "' (the keys are joyd's options without the --)";
    std::fprintf(stderr, "joyd: %s: %s\n",
                 app.get_config_ptr()->as<std::string>().c_str(), what.c_str());
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (show_version) {
    std::printf("joyd %s (protocol %u)\n", std::string{joy::version()}.c_str(),
                joy::protocol_version);
    return 0;
  }

  // Signals are taken by the main thread only; every thread created from
  // here on inherits the blocked mask.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Every plugin link and browser client is a descriptor: use all the
  // system allows (a bridge serves thousands of idle clients).
  if (struct rlimit lim{};
      ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }

  // -- the home ---------------------------------------------------------------
  home = fs::absolute(home).lexically_normal().string();
  std::error_code ec;
  for (auto dir : {home, home + "/plugins", home + "/logs"}) {
    fs::create_directories(dir, ec);
    if (ec)
      return fail("cannot create " + dir + ": " + ec.message());
  }
  ::chmod(home.c_str(), 0700);
  std::string lock_error;
  auto lock = lock_home(home, lock_error);
  if (!lock)
    return fail(lock_error);

  // -- the registry -----------------------------------------------------------
  auto store = joy::plugin_store::open(home + "/registry.db");
  if (!store)
    return fail(joy::message_of(store.error()));
  std::string node_id;
  if (auto id = store->meta("node_id")) {
    node_id = *id;
  } else {
    node_id = random_id();
    if (auto err = store->set_meta("node_id", node_id))
      return fail(joy::message_of(err));
  }

  auto installed = store->list();
  if (!installed)
    return fail(joy::message_of(installed.error()));

  // -- the sandbox
  // -------------------------------------------------------------
  joy::sandbox_settings sandbox_settings;
  sandbox_settings.enabled = sandbox == "bwrap";
  sandbox_settings.bwrap = bwrap;
  sandbox_settings.landlock = landlock == "on";
  {
    unsigned long first = 0;
    unsigned long count = 1;
    int n = std::sscanf(plugin_user.c_str(), "%lu:%lu", &first, &count);
    if (n < 1 || first == 0 || count == 0 || first + count > 0xFFFFFFFEul)
      return fail("--plugin-uids must be FIRST[:COUNT] (not root), got '"
                  + plugin_user + "'");
    sandbox_settings.uid = static_cast<uid_t>(first);
    sandbox_settings.uid_count = static_cast<uid_t>(count);
  }
  std::string sandbox_description;
  if (sandbox_settings.enabled) {
    if (::access(bwrap.c_str(), X_OK) != 0)
      return fail("cannot run " + bwrap + " (" + std::strerror(errno)
                  + "): install bubblewrap (apt-get install bubblewrap), or "
                    "start with --sandbox=none to run plugins without any "
                    "isolation");
    sandbox_description = "bwrap";
    if (::geteuid() == 0)
      sandbox_description
        += sandbox_settings.uid_count > 1
             ? ", a uid per plugin from " + std::to_string(sandbox_settings.uid)
             : ", uid " + std::to_string(sandbox_settings.uid);
    sandbox_description += ", seccomp";
    int abi = joy::landlock::abi_version();
    if (!sandbox_settings.landlock)
      sandbox_description += ", landlock off";
    else if (abi > 0)
      sandbox_description += ", landlock ABI " + std::to_string(abi);
    else
      sandbox_description += ", no landlock (kernel)";
  } else {
    sandbox_description
      = "NONE: plugins run unsandboxed, as " + std::to_string(::geteuid());
  }
  std::shared_ptr<joy::cgroup_tree> cgroups;
  if (!cgroup_root.empty()) {
    auto tree = joy::cgroup_tree::open(cgroup_root, "/proc/self/cgroup");
    if (tree) {
      cgroups = std::move(*tree);
      cgroups->sweep();
      sandbox_description += ", " + cgroups->describe();
    } else {
      joy::log(joy::log_level::warning, "joyd",
               "plugins' memory and pids are not limited: ",
               joy::message_of(tree.error()));
      sandbox_description += ", no cgroups (limits not enforced)";
    }
  }
  joy::exec_launcher_config lcfg;
  lcfg.joy_exec = joy::self_dir() + "/joy-exec";
  lcfg.bwrap = bwrap;
  lcfg.cgroups = cgroups;
  lcfg.uid_claims_dir = uid_claims_dir;
  if (sandbox_settings.enabled && ::geteuid() == 0)
    sandbox_description += joy::can_cap_work_dirs(lcfg)
                             ? ", work dirs capped (ext4 images)"
                             : ", work dirs uncapped (no loop devices or "
                               "mkfs.ext4)";
  auto launcher = joy::make_exec_launcher(std::move(lcfg));
  if (!launcher)
    return fail(joy::message_of(launcher.error()));

  // -- the cluster ------------------------------------------------------------
  bool head = join.empty();
  if (head_flag && !head)
    return fail("--head and --address exclude each other: a node either "
                "runs the directory or joins one");
  join = join.empty() ? join : with_port(join);
  listen = listen.empty() ? listen : with_port(listen);
  for (auto [flag, address] :
       {std::pair{"--address", join}, std::pair{"--listen", listen},
        std::pair{"--advertise",
                  advertise.empty() ? advertise : with_port(advertise)}})
    if (!address.empty())
      if (auto hp = joy::split_host_port(address); !hp)
        return fail(std::string{flag} + ": " + joy::message_of(hp.error()));
  if (!head && listen.empty())
    listen = joy::is_loopback(join) ? "127.0.0.1:0" : "";
  if (!head && listen.empty())
    return fail("a worker needs --listen HOST[:PORT] so that other nodes "
                "can call its plugins");
  // The listener first: with port 0 its address is known only then, and
  // the directory and the node show it; a taken port or an unknown host
  // stops the daemon here, before anything else is judged by the address.
  joy::unique_fd tcp;
  std::string bound;
  if (!listen.empty()) {
    auto l = joy::bind_listener(listen);
    if (!l)
      return fail("--listen: " + joy::message_of(l.error()));
    tcp = std::move(l->first);
    bound = std::move(l->second);
  }
  bool clustered = !listen.empty() || !join.empty();
  bool beyond_loopback = (!listen.empty() && !joy::is_loopback(listen))
                         || (!join.empty() && !joy::is_loopback(join));
  std::string token;
  kj::Own<kj::TlsContext> tls;
  if (clustered) {
    auto t = cluster_token(home, token_file, head);
    if (!t)
      return fail(joy::message_of(t.error()));
    token = std::move(*t);
    auto files = joy::tls_files_in(tls_dir.empty() ? home + "/tls" : tls_dir);
    bool have_certs = ::access(files.cert.c_str(), R_OK) == 0;
    bool use_tls = tls_mode == "on"
                   || (tls_mode == "auto" && (have_certs || beyond_loopback));
    if (beyond_loopback && (!use_tls || !have_certs))
      return fail("nodes reachable beyond loopback need mutual TLS, and "
                  + files.cert
                  + " does not exist: make certificates with `joy cert` "
                    "(docs/cluster.md)");
    if (use_tls) {
      auto ctx = joy::make_tls_context(files);
      if (!ctx)
        return fail(joy::message_of(ctx.error()));
      tls = kj::mv(*ctx);
    }
  }

  // -- actors and the kj thread -----------------------------------------------
  caf::actor_system_config cfg;
  joy::configure_actor_system(cfg, 2);
  caf::actor_system sys{cfg};
  joy::kj_thread kj{sys};
  // The node relays plugins' large data without mapping or copying it, but
  // for what leaves the host or goes to a browser; arrays from other hosts
  // land in its shared memory when its plugins use it. Landed arrays are
  // the node's own memory: they must fit what the machine has, or what its
  // cgroup allows where that is less.
  auto physical_memory = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES))
                         * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  auto own_memory = cgroups ? std::min(physical_memory, cgroups->memory_limit())
                            : physical_memory;
  kj.post([shm = large_data == "shm", own_memory](joy::kj_context& ctx) {
    ctx.set_large_data(joy::node_large_data_policy(shm, own_memory));
  });
  auto socket = joy::socket_path(home);
  auto registry = joy::spawn_registry(sys, std::move(*store));
  auto spawner = joy::spawn_spawner(sys, std::move(*launcher));
  // Calls of this node's services and running plugins are answered on the
  // kj thread (kj_routes.hpp); the core keeps its copy of the directory
  // there up to date.
  joy::kj_routes routes;
  auto services = std::make_shared<joy::service_snapshot>();
  routes.services = services;
  routes.running = std::make_shared<joy::running_plugins>();
  routes.remote = std::make_shared<joy::remote_plugins>();
  auto core = joy::spawn_core(sys, joy::mirror_on(kj, services));
  auto span = [](double s) {
    return std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double>{s});
  };

  auto advertised = advertise.empty() ? bound : with_port(advertise);
  if (!advertised.empty() && advertised.rfind("0.0.0.0:", 0) == 0) {
    char host[256] = "localhost";
    ::gethostname(host, sizeof(host) - 1);
    advertised = std::string{host} + advertised.substr(7);
  }
  auto server_id = kj.next_id();
  auto links_id = kj.next_id();
  joy::control_server_config ccfg;
  ccfg.socket_path = socket;
  ccfg.node_id = node_id;
  ccfg.core = core;
  ccfg.head = head;
  ccfg.token = token;
  ccfg.tls = tls.get();
  ccfg.links = links_id;
  ccfg.downloads_dir = home + "/incoming";
  // `joy stop`: wake the main thread the same way a signal does.
  ccfg.on_shutdown = [] { ::kill(::getpid(), SIGTERM); };

  // GPUs: as joy-gpu-host finds them, or as many as told.
  auto gpu_host = joy::self_dir() + "/joy-gpu-host";
  auto gpu_devices
    = gpus >= 0 ? std::vector<joy::gpu_device>{} : joy::probe_gpus(gpu_host);
  for (int i = 0; i < gpus; ++i) {
    joy::gpu_device d;
    d.index = static_cast<uint32_t>(i);
    d.name = "(as told: --gpus)";
    gpu_devices.push_back(std::move(d));
  }
  auto gpu_count = static_cast<uint32_t>(gpu_devices.size());
  joy::node_entry self_entry;
  self_entry.node_id = node_id;
  self_entry.version = std::string{joy::version()};
  self_entry.head = head;
  self_entry.total.cpus = std::max(1u, std::thread::hardware_concurrency());
  self_entry.total.memory_bytes = physical_memory;
  self_entry.total.gpus = gpu_count;

  joy::cluster_actor cluster;
  std::string known_nodes;
  if (head) {
    caf::scoped_actor self{sys};
    self
      ->request(registry, std::chrono::seconds{30}, joy::meta_atom_v,
                std::string{"cluster_nodes"})
      .receive([&](std::string& text) { known_nodes = std::move(text); },
               [](caf::error&) {});
  } else {
    // A worker's directory is the head's, asked over the control link.
    cluster = caf::actor_cast<joy::cluster_actor>(kj.gateway());
  }

  joy::node_config ncfg;
  ncfg.routes = routes;
  ncfg.node_id = node_id;
  ncfg.home = home;
  ncfg.address = socket;
  ncfg.plugins_dir = home + "/plugins";
  ncfg.logs_dir = home + "/logs";
  ncfg.downloads_dir = home + "/downloads";
  ncfg.manifest_base = manifest_base;
  ncfg.large_data = large_data;
  ncfg.gpu_devices = gpu_devices;
  if (auto host = joy::self_dir() + "/joy-python-host";
      ::access(host.c_str(), X_OK) == 0)
    ncfg.python_host = host;
  if (gpu_service == "on") {
    // Next to joyd, like joy-exec; without it the node simply has no gpu
    // service.
    if (auto rec = joy::lay_out_gpu_service(home, gpu_host))
      ncfg.builtins.push_back(std::move(*rec));
    else
      joy::log(joy::log_level::warning, "joyd",
               "no built-in gpu service: ", joy::message_of(rec.error()));
  }
  ncfg.work_dir = home + "/work";
  ncfg.sandbox = sandbox_settings;
  ncfg.sandbox_description = sandbox_description;
  ncfg.head = head;
  ncfg.tls = tls.get() != nullptr;
  ncfg.call_timeout = span(call_timeout_s);
  ncfg.stop_grace = span(stop_grace_s);
  ncfg.log_max_bytes = log_max_bytes;
  ncfg.restart.intensity = static_cast<uint32_t>(restart[0]);
  ncfg.restart.period = span(restart[1]);
  ncfg.restart.backoff_min = span(restart[2]);
  ncfg.restart.backoff_max = span(restart[3]);
  ncfg.log_check = span(log_check_s);
  ccfg.call_timeout = ncfg.call_timeout;
  ccfg.running = routes.running;
  ccfg.remote = routes.remote;

  // The bridge binds before the node starts so that its address is known;
  // it serves once the node runs.
  joy::bridge_node bridge;
  bridge_opts.call_timeout = std::chrono::seconds{std::max<int64_t>(
    1, static_cast<int64_t>(std::ceil(bridge_call_timeout_s)))};
  if (!bridge_opts.address.empty()) {
    if (auto err
        = bridge.start(sys, bridge_opts, home, node_id, core, kj.gateway())) {
      caf::anon_send_exit(core, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(spawner, caf::exit_reason::user_shutdown);
      sys.await_all_actors_done();
      kj.stop();
      return fail(joy::message_of(err));
    }
    ncfg.bridge = bridge.url();
  }

  // Steps 3 and 4 of the shutdown order: end the actors (hosts are linked
  // to the node and go with it), then join the kj thread.
  joy::node_actor node;
  auto end_actors_and_kj = [&] {
    bridge.stop();
    if (node)
      caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    if (head && cluster)
      caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(core, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(spawner, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    kj.stop();
  };

  self_entry.address = advertised;
  ncfg.listen = advertised;
  if (head) {
    joy::cluster_config clcfg;
    clcfg.self = self_entry;
    clcfg.detector.expected_interval
      = std::chrono::milliseconds{static_cast<int64_t>(heartbeat_s * 1000)};
    clcfg.detector.acceptable_pause = std::chrono::milliseconds{
      static_cast<int64_t>(acceptable_pause_s * 1000)};
    clcfg.detector.threshold = phi_threshold;
    clcfg.on_down = kj.gateway();
    clcfg.registry = registry;
    clcfg.known = joy::nodes_from_json(known_nodes);
    cluster = joy::spawn_cluster(sys, std::move(clcfg));
  }
  joy::cluster_links_config lcfg2;
  lcfg2.dial.node_id = node_id;
  lcfg2.dial.token = token;
  lcfg2.dial.tls = tls.get();
  lcfg2.head = join;
  lcfg2.self = self_entry;
  lcfg2.heartbeat = static_cast<int64_t>(heartbeat_s * 1000) * kj::MILLISECONDS;
  lcfg2.head_timeout
    = static_cast<int64_t>((heartbeat_s + acceptable_pause_s + 1) * 1000)
      * kj::MILLISECONDS;
  node = joy::spawn_node(sys, kj, registry, spawner, core, cluster, ncfg,
                         std::move(*installed));
  lcfg2.node = caf::actor_cast<caf::actor>(node);
  lcfg2.remote = routes.remote;
  ccfg.node = node;
  ccfg.cluster = cluster;
  std::promise<caf::error> listening;
  kj.post([&listening, server_id, links_id, ccfg = std::move(ccfg),
           tcp = std::make_shared<joy::unique_fd>(std::move(tcp)),
           lcfg2 = std::move(lcfg2)](joy::kj_context& ctx) mutable {
    // Function values passed through this node can be called from here.
    joy::serve_remote_functions(ctx);
    // The bridge writes relayed arrays into msgpack for browsers.
    joy::serve_readable_values(ctx);
    joy::start_cluster_links(ctx, links_id, std::move(lcfg2));
    listening.set_value(joy::start_control_server(
      ctx, server_id, std::move(ccfg), std::move(*tcp)));
  });
  if (auto err = listening.get_future().get()) {
    end_actors_and_kj();
    return fail(joy::message_of(err));
  }
  bridge.run(node);
  joy::log(joy::log_level::info, "joyd", "node ", node_id, " (Joy ",
           joy::version(), ") listening on ", socket,
           advertised.empty()
             ? std::string{}
             : " and " + advertised
                 + (tls.get() != nullptr ? " (mutual TLS)" : " (plaintext)"),
           head ? ", the cluster's head" : ", joining the head at " + join,
           "; sandbox: ", sandbox_description,
           bridge.url().empty() ? std::string{}
                                : "; browser core at " + bridge.url());

  // -- run until told to stop -------------------------------------------------
  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
    // retry
  }
  joy::log(joy::log_level::info, "joyd", "stopping (", sigabbrev_np(sig), ")");

  // 0. A worker tells its head that it leaves (the head forgets it, where
  // one that went silent stays listed as down).
  if (!head) {
    caf::scoped_actor self{sys};
    self
      ->request(kj.gateway(), std::chrono::seconds{3}, joy::peer_atom_v,
                joy::leave_atom_v)
      .receive(
        [](bool left) {
          if (left)
            joy::log(joy::log_level::info, "joyd", "left the cluster");
        },
        [](caf::error&) {
          // Not joined, or the head is gone: nothing to tell.
        });
  }
  // 1. Stop accepting: drop the bridge, the control server and their
  // connections.
  bridge.stop();
  kj.post([server_id, links_id](joy::kj_context& ctx) {
    ctx.drop(server_id);
    ctx.drop(links_id);
  });
  // 2. Stop every plugin.
  {
    caf::scoped_actor self{sys};
    self
      ->request(node, ncfg.stop_grace + std::chrono::seconds{30},
                joy::shutdown_atom_v)
      .receive([](bool) {},
               [](caf::error& err) {
                 joy::log(joy::log_level::warning, "joyd",
                          "plugins did not all stop: ", joy::message_of(err));
               });
  }
  // 3. End the actors; 4. join the kj thread; 5. the actor_system goes
  // last, on return.
  end_actors_and_kj();
  joy::log(joy::log_level::info, "joyd", "stopped");
  return 0;
}
