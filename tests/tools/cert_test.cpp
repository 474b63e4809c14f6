// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// `joy cert` and the cluster's TLS contexts: what the certificates say, how
// the keys are kept, and real kj-tls handshakes over a socketpair, with the
// denials (another CA, no certificate, plaintext, silence).

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <kj/async-io.h>
#include <kj/compat/tls.h>
#include <kj/timer.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "actors/cluster/tls.hpp"
#include "runtime/errc.hpp"
#include "tests/support/temp_dir.hpp"
#include "tools/joy/cert.hpp"

using namespace joy;
using joy::test::temp_dir;

namespace {

// -- certificates -------------------------------------------------------------

struct x509_free {
  void operator()(X509* p) const noexcept {
    X509_free(p);
  }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;

x509_ptr load_cert(const std::string& path) {
  auto pem = joy::test::read_file(path);
  auto* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  x509_ptr cert{PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)};
  BIO_free(bio);
  return cert;
}

/// OpenSSL's verdict on `cert_path` with `ca_path` as the only trust
/// anchor: X509_V_OK or the reason it fails.
int verify(const std::string& ca_path, const std::string& cert_path) {
  auto ca = load_cert(ca_path);
  auto cert = load_cert(cert_path);
  REQUIRE(ca);
  REQUIRE(cert);
  auto* store = X509_STORE_new();
  auto* ctx = X509_STORE_CTX_new();
  X509_STORE_add_cert(store, ca.get());
  X509_STORE_CTX_init(ctx, store, cert.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  int result
    = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return result;
}

/// The DNS subjectAltNames of a certificate.
std::vector<std::string> dns_names(X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(
    X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    auto* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS)
      out.emplace_back(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
        static_cast<std::size_t>(ASN1_STRING_length(name->d.dNSName)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

unsigned mode_of(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

/// A CA in `root/<name>-ca` and node TLS directories `root/<node>` issued
/// by it.
struct cluster {
  std::string ca_dir;

  cluster(const temp_dir& root, const std::string& name)
    : ca_dir((root / (name + "-ca")).string()) {
    REQUIRE_FALSE(cli::make_cluster_ca(ca_dir));
  }

  /// A node's TLS directory.
  std::string node(const temp_dir& root, const std::string& name) const {
    auto dir = (root / name).string();
    REQUIRE_FALSE(cli::make_node_cert(ca_dir, dir, name));
    return dir;
  }
};

kj::Own<kj::TlsContext> context_of(const std::string& dir,
                                   kj::Maybe<kj::Timer&> timer = nullptr) {
  auto ctx = make_tls_context(tls_files_in(dir), timer);
  if (!ctx)
    FAIL(message_of(ctx.error()));
  return std::move(*ctx);
}

// -- handshakes ---------------------------------------------------------------

/// How one end of a connection ended: what it read, or why it failed.
struct outcome {
  bool ok = false;
  std::string got;
  caf::error error;
};

/// The failure of a side as an outcome (kj wants a functor, not a function).
constexpr auto failed = [](kj::Exception&& ex) {
  return outcome{false, {}, make_tls_error(ex)};
};

/// Writes `say` on `stream`, then reads `expect_bytes` bytes.
kj::Promise<outcome> talk(kj::Own<kj::AsyncIoStream> stream, std::string say,
                          std::size_t expect_bytes) {
  auto& ref = *stream;
  auto text = kj::heapString(say.c_str());
  auto write = ref.write(text.begin(), text.size()).attach(kj::mv(text));
  return write
    .then([&ref, expect_bytes] {
      auto buf = kj::heapArray<char>(expect_bytes);
      auto* into = buf.begin();
      return ref.read(into, expect_bytes).then([buf = kj::mv(buf)]() mutable {
        return outcome{true, std::string(buf.begin(), buf.size()), {}};
      });
    })
    .attach(kj::mv(stream));
}

/// Both ends of a socketpair on one kj event loop; every wait is bounded.
struct socket_pair {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::Own<kj::AsyncIoStream> server_end;
  kj::Own<kj::AsyncIoStream> client_end;

  socket_pair() {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    auto flags = kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP;
    server_end = io.lowLevelProvider->wrapSocketFd(sv[0], flags);
    client_end = io.lowLevelProvider->wrapSocketFd(sv[1], flags);
  }

  /// `side` as an outcome within five seconds (a timeout is a failure, not
  /// a hang).
  kj::Promise<outcome> bounded(kj::Promise<outcome> side) {
    return io.provider->getTimer()
      .timeoutAfter(5 * kj::SECONDS, kj::mv(side))
      .catch_(failed);
  }

  /// The server end through `server`, the client end through `client`;
  /// each writes a greeting and reads the other's.
  std::pair<outcome, outcome> handshake(kj::TlsContext& server,
                                        kj::TlsContext& client) {
    auto s = server.wrapServer(kj::mv(server_end))
               .then([](kj::Own<kj::AsyncIoStream> tls) {
                 return talk(kj::mv(tls), "hello from server", 17);
               });
    auto c = client.wrapClient(kj::mv(client_end), cluster_server_name)
               .then([](kj::Own<kj::AsyncIoStream> tls) {
                 return talk(kj::mv(tls), "hello from client", 17);
               });
    return run(kj::mv(s), kj::mv(c));
  }

  std::pair<outcome, outcome> run(kj::Promise<outcome> s,
                                  kj::Promise<outcome> c) {
    auto both = kj::heapArrayBuilder<kj::Promise<outcome>>(2);
    both.add(bounded(kj::mv(s)));
    both.add(bounded(kj::mv(c)));
    auto results = kj::joinPromises(both.finish()).wait(io.waitScope);
    return {kj::mv(results[0]), kj::mv(results[1])};
  }
};

} // namespace

// -- joy cert -----------------------------------------------------------------

TEST_CASE("a node certificate made by joy cert verifies against its CA and "
          "names the cluster",
          "[tools][cert]") {
  temp_dir root;
  cluster c{root, "one"};
  auto dir = c.node(root, "node-1.lab");
  auto files = tls_files_in(dir);
  CHECK(verify(c.ca_dir + "/ca.pem", files.cert) == X509_V_OK);
  // The copy of the CA in the node's directory is the CA.
  CHECK(joy::test::read_file(files.ca)
        == joy::test::read_file(c.ca_dir + "/ca.pem"));
  auto cert = load_cert(files.cert);
  REQUIRE(cert);
  auto names = dns_names(cert.get());
  CHECK(names == std::vector<std::string>{cluster_server_name, "node-1.lab"});
  CHECK(X509_check_host(cert.get(), cluster_server_name, 0, 0, nullptr) == 1);
  CHECK(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0) == 1);
  CHECK(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0) == 1);
  CHECK(X509_check_ca(cert.get()) == 0);
  auto ca = load_cert(c.ca_dir + "/ca.pem");
  REQUIRE(ca);
  CHECK(X509_check_ca(ca.get()) >= 1);
}

TEST_CASE("a node certificate from another CA does not verify",
          "[tools][cert]") {
  temp_dir root;
  cluster ours{root, "ours"};
  cluster theirs{root, "theirs"};
  auto stranger = theirs.node(root, "stranger");
  CHECK(verify(ours.ca_dir + "/ca.pem", tls_files_in(stranger).cert)
        != X509_V_OK);
  // Nor will a node start with it.
  auto mixed = tls_files_in(stranger);
  mixed.ca = ours.ca_dir + "/ca.pem";
  auto ctx = make_tls_context(mixed);
  REQUIRE_FALSE(ctx);
  CHECK(code_of(ctx.error()) == errc::failed_precondition);
  CHECK_THAT(message_of(ctx.error()), Catch::Contains("does not verify"));
}

TEST_CASE("private keys are written 0600 and never overwritten unless forced",
          "[tools][cert]") {
  temp_dir root;
  auto ca_dir = root / "home/ca";
  REQUIRE_FALSE(cli::make_cluster_ca(ca_dir.string()));
  CHECK(mode_of(ca_dir) == 0700);
  CHECK(mode_of(ca_dir / "ca-key.pem") == 0600);
  CHECK(mode_of(ca_dir / "ca.pem") == 0644);

  auto ca_key = joy::test::read_file(ca_dir / "ca-key.pem");
  auto again = cli::make_cluster_ca(ca_dir.string());
  CHECK(code_of(again) == errc::already_exists);
  CHECK_THAT(message_of(again), Catch::Contains("exists already"));
  CHECK(joy::test::read_file(ca_dir / "ca-key.pem") == ca_key);

  auto out = root / "tls";
  REQUIRE_FALSE(cli::make_node_cert(ca_dir.string(), out.string(), "n1"));
  CHECK(mode_of(out) == 0700);
  CHECK(mode_of(out / "node-key.pem") == 0600);
  auto node_key = joy::test::read_file(out / "node-key.pem");
  auto node_cert = joy::test::read_file(out / "node.pem");
  auto refused = cli::make_node_cert(ca_dir.string(), out.string(), "n1");
  CHECK(code_of(refused) == errc::already_exists);
  CHECK_THAT(message_of(refused), Catch::Contains("--force"));
  CHECK(joy::test::read_file(out / "node-key.pem") == node_key);
  CHECK(joy::test::read_file(out / "node.pem") == node_cert);

  REQUIRE_FALSE(
    cli::make_node_cert(ca_dir.string(), out.string(), "n1", 825, true));
  CHECK(joy::test::read_file(out / "node-key.pem") != node_key);
  CHECK(mode_of(out / "node-key.pem") == 0600);
  // No temporary files are left behind.
  std::size_t files = 0;
  for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator{out})
    ++files;
  CHECK(files == 3);
}

TEST_CASE("node names that cannot be a DNS name are refused", "[tools][cert]") {
  temp_dir root;
  cluster c{root, "c"};
  for (std::string name : std::vector<std::string>{
         "", "-lead", ".lead", "has space", "a,DNS:evil", "under_score",
         "ünïcode", std::string(64, 'a')}) {
    INFO("name: " << name);
    auto err = cli::make_node_cert(c.ca_dir, (root / "out").string(), name);
    CHECK(code_of(err) == errc::invalid_argument);
  }
  CHECK_FALSE(std::filesystem::exists(root / "out"));
  CHECK_FALSE(cli::make_node_cert(c.ca_dir, (root / "ok").string(),
                                  std::string(63, 'a')));
}

TEST_CASE("a node certificate needs a CA made first", "[tools][cert]") {
  temp_dir root;
  auto err = cli::make_node_cert((root / "none").string(),
                                 (root / "out").string(), "n1");
  CHECK(code_of(err) == errc::not_found);
  CHECK_THAT(message_of(err), Catch::Contains("joy cert ca"));
}

TEST_CASE("joy cert ca and joy cert node write under the home by default",
          "[tools][cert]") {
  temp_dir root;
  auto home = (root / "home").string();
  std::string out;
  std::string err;
  // Runs `joy cert ...` from parsing on, into `out` and `err`.
  auto run = [&](std::vector<std::string> argv) {
    CLI::App app{"joy"};
    cli::cert_args args;
    auto* cert = cli::add_cert_command(app, args);
    std::reverse(argv.begin(), argv.end());
    app.parse(argv);
    REQUIRE(cert->parsed());
    std::ostringstream captured;
    std::ostringstream errors;
    auto* old_out = std::cout.rdbuf(captured.rdbuf());
    auto* old_err = std::cerr.rdbuf(errors.rdbuf());
    int rc = cli::run_cert_command(args, home);
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    out = captured.str();
    err = errors.str();
    return rc;
  };
  REQUIRE(run({"cert", "ca"}) == 0);
  CHECK(out
        == "wrote " + home + "/ca/ca.pem\nwrote " + home + "/ca/ca-key.pem\n");
  REQUIRE(run({"cert", "node", "n1"}) == 0);
  CHECK(out
        == "wrote " + home + "/tls/node.pem\nwrote " + home
             + "/tls/node-key.pem\nwrote " + home + "/tls/ca.pem\n");
  CHECK(make_tls_context(tls_files_in(home + "/tls")));
  CHECK(run({"cert", "node", "n1"}) == 1);
  CHECK(out.empty());
  CHECK_THAT(err, Catch::StartsWith("joy: error (already_exists): "));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

// -- TLS contexts -------------------------------------------------------------

TEST_CASE("a TLS context needs all three files and says which one is wrong",
          "[tools][cert]") {
  temp_dir root;
  cluster c{root, "c"};
  auto dir = c.node(root, "n1");
  auto other = c.node(root, "n2");

  auto missing = make_tls_context(tls_files_in((root / "nowhere").string()));
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
  CHECK_THAT(message_of(missing.error()), Catch::Contains("joy cert"));

  auto garbage = tls_files_in(dir);
  garbage.cert = (root / "garbage.pem").string();
  joy::test::write_file(garbage.cert, "not a certificate\n");
  auto bad_cert = make_tls_context(garbage);
  REQUIRE_FALSE(bad_cert);
  CHECK(code_of(bad_cert.error()) == errc::invalid_argument);
  CHECK_THAT(message_of(bad_cert.error()), Catch::Contains(garbage.cert));

  auto swapped = tls_files_in(dir);
  swapped.key = swapped.cert; // a certificate where the key should be
  auto bad_key = make_tls_context(swapped);
  REQUIRE_FALSE(bad_key);
  CHECK(code_of(bad_key.error()) == errc::invalid_argument);
  CHECK_THAT(message_of(bad_key.error()), Catch::Contains(swapped.key));

  auto foreign_key = tls_files_in(dir);
  foreign_key.key = tls_files_in(other).key;
  auto mismatch = make_tls_context(foreign_key);
  REQUIRE_FALSE(mismatch);
  CHECK(code_of(mismatch.error()) == errc::failed_precondition);
  CHECK_THAT(message_of(mismatch.error()), Catch::Contains("not the private"));
}

TEST_CASE("two nodes of one cluster complete a mutual TLS handshake and talk "
          "both ways",
          "[tools][cert]") {
  temp_dir root;
  cluster c{root, "c"};
  socket_pair l;
  auto server = context_of(c.node(root, "n1"), l.io.provider->getTimer());
  auto client = context_of(c.node(root, "n2"));
  auto [s, cl] = l.handshake(*server, *client);
  CHECK(s.ok);
  CHECK(s.got == "hello from client");
  CHECK(cl.ok);
  CHECK(cl.got == "hello from server");
}

TEST_CASE("a client with a certificate from another CA is refused",
          "[tools][cert]") {
  temp_dir root;
  cluster ours{root, "ours"};
  cluster theirs{root, "theirs"};
  socket_pair l;
  auto server = context_of(ours.node(root, "n1"), l.io.provider->getTimer());
  auto client = context_of(theirs.node(root, "stranger"));
  auto [s, cl] = l.handshake(*server, *client);
  CHECK_FALSE(s.ok);
  CHECK(code_of(s.error) == errc::permission_denied);
  CHECK_FALSE(cl.ok);
  INFO("server: " << message_of(s.error)
                  << "; client: " << message_of(cl.error));
  CHECK(code_of(cl.error) != errc::timeout);
}

TEST_CASE("a client without a certificate is refused", "[tools][cert]") {
  temp_dir root;
  cluster c{root, "c"};
  socket_pair l;
  auto server = context_of(c.node(root, "n1"), l.io.provider->getTimer());
  // Trusts the cluster's CA, presents nothing.
  kj::TlsCertificate ca{joy::test::read_file(c.ca_dir + "/ca.pem").c_str()};
  kj::TlsContext::Options options;
  options.useSystemTrustStore = false;
  options.trustedCertificates = kj::arrayPtr(&ca, 1);
  kj::TlsContext anonymous{kj::mv(options)};
  auto [s, cl] = l.handshake(*server, anonymous);
  CHECK_FALSE(s.ok);
  CHECK(code_of(s.error) == errc::permission_denied);
  CHECK_FALSE(cl.ok);
}

TEST_CASE("a server with a certificate from another CA is refused by the "
          "client",
          "[tools][cert]") {
  temp_dir root;
  cluster ours{root, "ours"};
  cluster theirs{root, "theirs"};
  socket_pair l;
  auto server = context_of(theirs.node(root, "impostor"));
  auto client = context_of(ours.node(root, "n1"));
  auto [s, cl] = l.handshake(*server, *client);
  CHECK_FALSE(cl.ok);
  CHECK(code_of(cl.error) == errc::permission_denied);
  CHECK_FALSE(s.ok);
}

TEST_CASE("a client that speaks plaintext fails the server's handshake",
          "[tools][cert]") {
  temp_dir root;
  cluster c{root, "c"};
  socket_pair l;
  auto server = context_of(c.node(root, "n1"), l.io.provider->getTimer());
  auto s = server->wrapServer(kj::mv(l.server_end))
             .then([](kj::Own<kj::AsyncIoStream> tls) {
               return talk(kj::mv(tls), "hello from server", 17);
             });
  // Says hello in plaintext, and nothing more.
  auto cl = l.client_end->write("hello", 5).then([] {
    return outcome{true, {}, {}};
  });
  auto [so, co] = l.run(kj::mv(s), kj::mv(cl));
  CHECK_FALSE(so.ok);
  INFO("server: " << message_of(so.error));
  CHECK(code_of(so.error) == errc::protocol_error);
}

TEST_CASE("a silent client is dropped after the accept timeout",
          "[tools][cert]") {
  temp_dir root;
  cluster c{root, "c"};
  socket_pair l;
  // Time is injected: the server's accept timeout runs on a manual clock.
  kj::TimerImpl clock{kj::origin<kj::TimePoint>()};
  auto server = context_of(c.node(root, "n1"), clock);
  auto s = server->wrapServer(kj::mv(l.server_end))
             .then([](kj::Own<kj::AsyncIoStream>) {
               return outcome{true, {}, {}};
             })
             .catch_(failed);
  CHECK_FALSE(s.poll(l.io.waitScope));
  clock.advanceTo(clock.now() + tls_accept_timeout - 1 * kj::SECONDS);
  CHECK_FALSE(s.poll(l.io.waitScope));
  clock.advanceTo(clock.now() + 2 * kj::SECONDS);
  REQUIRE(s.poll(l.io.waitScope));
  auto result = s.wait(l.io.waitScope);
  CHECK_FALSE(result.ok);
  CHECK(code_of(result.error) == errc::timeout);
}
