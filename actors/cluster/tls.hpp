// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// TLS material of a cluster and the kj-tls context made from it: nodes talk
/// to each other over mutual TLS, each presenting a certificate issued by the
/// cluster's own CA (`joy cert ca`, `joy cert node NAME`).
///
/// One context serves both directions of a node's links:
///
/// ```
/// auto tls = joy::make_tls_context(joy::tls_files_in(home + "/tls"),
///                                  io.provider->getTimer());
/// if (!tls)
///   return tls.error();
/// auto in = (*tls)->wrapServer(kj::mv(accepted));
/// auto out = (*tls)->wrapClient(kj::mv(connected),
///                               joy::cluster_server_name);
/// ```
#pragma once

#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <kj/async.h>
#include <kj/compat/tls.h>
#include <kj/exception.h>
#include <kj/memory.h>
#include <kj/time.h>
#include <kj/timer.h>

namespace joy {

/// Paths of the PEM files a node needs for cluster TLS.
struct tls_files {
  /// The cluster CA's certificate: the only issuer a node trusts, for peers
  /// in both directions.
  std::string ca;
  /// This node's certificate, issued by that CA.
  std::string cert;
  /// This node's private key (unencrypted: the daemon starts unattended, so
  /// the key is protected by its file mode, 0600).
  std::string key;
};

/// The layout `joy cert node` writes: `dir/ca.pem`, `dir/node.pem`,
/// `dir/node-key.pem`.
tls_files tls_files_in(const std::string& dir);

/// The DNS name every node certificate carries as a subjectAltName, and the
/// name a client verifies the server against, whatever address it dialed.
///
/// Why not verify the peer's address or node name? kj-tls 0.9.2 checks the
/// server with `X509_VERIFY_PARAM_set1_host`, which matches DNS names only
/// (never IP SANs), and nodes are usually dialed by IP. Nor would a per-node
/// name add much: in a private-CA cluster the CA is the trust boundary, and
/// any certificate it issued belongs to a member. What a peer claims to be
/// beyond that (its node id) is checked by the cluster protocol, not by TLS.
constexpr const char* cluster_server_name = "joy-cluster";

/// How long a server waits for a client to finish its handshake before
/// dropping the connection, so that half-open or silent peers cannot pin
/// connections forever.
constexpr kj::Duration tls_accept_timeout = 10 * kj::SECONDS;

/// Reads and checks the files, then makes a context that trusts only the
/// cluster CA (not the system's store), requires a client certificate from
/// the same CA, presents this node's certificate in both roles, and speaks
/// TLS 1.2 or newer (1.2 is the newest floor kj 0.9.2 can express; OpenSSL
/// still negotiates 1.3). With a `timer`, a server handshake fails after
/// `tls_accept_timeout`; the timer must outlive the context.
///
/// Checked here rather than at the first handshake, where each mistake would
/// be an opaque OpenSSL error on every connection: the key belongs to the
/// certificate, the certificate was issued by the CA and is valid now, and
/// it names `cluster_server_name`.
///
/// Errors: not_found (a file is missing; make them with `joy cert`),
/// permission_denied, io_error, too_large (reading); invalid_argument (not
/// a PEM certificate or unencrypted PEM key); failed_precondition (the files
/// do not fit together, or the certificate is expired or not yet valid).
caf::expected<kj::Own<kj::TlsContext>>
make_tls_context(const tls_files& files, kj::Maybe<kj::Timer&> timer = nullptr);

/// A one-line reason for a failed handshake or TLS I/O, for logs and errors:
/// OpenSSL's reason ("certificate verify failed", "wrong version number",
/// "tlsv1 alert unknown ca") without kj's source locations and error codes.
std::string describe_tls_failure(const kj::Exception& ex);

/// `ex` of a TLS handshake or TLS I/O as a Joy error: timeout when the
/// accept timeout struck, disconnected when the peer went away,
/// permission_denied when a certificate was refused (the peer's by us, or
/// ours by the peer), protocol_error otherwise (the peer does not speak TLS).
caf::error make_tls_error(const kj::Exception& ex);

} // namespace joy
