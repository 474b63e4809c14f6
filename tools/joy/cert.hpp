// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy cert`: the cluster's private CA and the node certificates it issues,
/// the material of node-to-node mutual TLS (actors/cluster/tls.hpp).
///
///   joy cert ca [--dir DIR]              DIR/ca.pem, DIR/ca-key.pem
///   joy cert node NAME [--ca DIR] [--out DIR] [--force]
///                                        OUT/node.pem, OUT/node-key.pem,
///                                        OUT/ca.pem (a copy)
///
/// Keys are P-256, certificates SHA-256-signed X.509 v3. Private keys are
/// written unencrypted with mode 0600 (a daemon starts unattended), each file
/// through a temporary one so that no reader sees half a file; a key is
/// never overwritten unless asked.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <caf/error.hpp>

namespace joy::cli {

/// Writes a new cluster CA into `dir` (made 0700 if missing): `ca.pem`, a
/// self-signed CA certificate (CN "Joy cluster CA", CA:TRUE, keyCertSign and
/// cRLSign) valid for `days`, and `ca-key.pem`, its key (0600). Copy
/// ca-key.pem nowhere: whoever holds it can join the cluster.
///
/// Errors: already_exists (`dir` holds a CA already: replacing it would
/// orphan every node certificate it issued), invalid_argument (days < 1),
/// io_error.
caf::error make_cluster_ca(const std::string& dir, int days = 3650);

/// Issues a certificate for the node `node_name` from the CA in `ca_dir`
/// and writes `out_dir` (made 0700 if missing) as a complete TLS directory
/// for `tls_files_in`: `node.pem` (CN and DNS SAN `node_name`, DNS SAN
/// `cluster_server_name`, serverAuth and clientAuth, CA:FALSE), `node-key.pem`
/// (a new key, 0600) and `ca.pem` (a copy of the CA certificate).
///
/// Errors: invalid_argument (`node_name` is not
/// `[A-Za-z0-9][A-Za-z0-9.-]{0,62}`, days < 1, unreadable PEM), not_found
/// (no CA in `ca_dir`), failed_precondition (ca-key.pem is not the key of
/// ca.pem, or ca.pem is not a CA), already_exists (`out_dir` has a
/// node-key.pem and not `force`), io_error, permission_denied.
caf::error make_node_cert(const std::string& ca_dir, const std::string& out_dir,
                          const std::string& node_name, int days = 825,
                          bool force = false);

/// What `joy cert` parsed; lives as long as the `CLI::App` it was added to.
struct cert_args {
  CLI::App* ca = nullptr;
  CLI::App* node = nullptr;
  /// `cert ca --dir`: empty means HOME/ca.
  std::string ca_dir;
  /// `cert node --ca`: empty means HOME/ca.
  std::string node_ca_dir;
  /// `cert node --out`: empty means HOME/tls.
  std::string out_dir;
  std::string node_name;
  int days = 0; // 0: the default of each subcommand
  bool force = false;
};

/// Adds `cert` with its subcommands `ca` and `node` to `app`, binding their
/// options to `args`; returns the `cert` command.
CLI::App* add_cert_command(CLI::App& app, cert_args& args);

/// Runs the subcommand `args` holds (after `app.parse`), with defaults
/// under `home`. Prints "wrote PATH" per file on stdout, or one line
/// "joy: error (<code>): <message>" on stderr. Returns the exit code.
int run_cert_command(const cert_args& args, const std::string& home);

} // namespace joy::cli
