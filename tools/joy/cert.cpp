// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tools/joy/cert.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <system_error>
#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "actors/cluster/tls.hpp"
#include "runtime/cli_checks.hpp"
#include "runtime/errc.hpp"
#include "runtime/unique_fd.hpp"

namespace fs = std::filesystem;

namespace joy::cli {

namespace {

// -- OpenSSL handles ----------------------------------------------------------

struct openssl_free {
  void operator()(BIO* p) const noexcept {
    BIO_free(p);
  }
  void operator()(BIGNUM* p) const noexcept {
    BN_free(p);
  }
  void operator()(EVP_PKEY* p) const noexcept {
    EVP_PKEY_free(p);
  }
  void operator()(X509* p) const noexcept {
    X509_free(p);
  }
  void operator()(X509_EXTENSION* p) const noexcept {
    X509_EXTENSION_free(p);
  }
};

template <class T>
using ossl_ptr = std::unique_ptr<T, openssl_free>;

/// OpenSSL's last error as text; empties its error queue.
std::string openssl_error() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    out = buf; // the last one is the most specific
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

/// A failure of OpenSSL itself (out of memory, a broken build): a bug or
/// the machine's, not the caller's.
caf::error openssl_failure(const std::string& what) {
  return make_error(errc::internal, what + ": " + openssl_error());
}

// -- files --------------------------------------------------------------------

/// Creates `dir` with mode 0700 when missing (it will hold private keys);
/// an existing one is left as it is.
caf::error make_private_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec))
    return {};
  fs::create_directories(dir, ec);
  if (!ec)
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec)
    return make_error(errc::io_error,
                      "cannot create " + dir + ": " + ec.message());
  return {};
}

/// Writes `text` to `path` with `mode`, through a temporary file in the same
/// directory: readers see the old file or the whole new one, never a part.
/// Without `replace`, the final link fails if `path` exists (also when it
/// appeared since the caller looked): already_exists.
caf::error write_file(const std::string& path, const std::string& text,
                      mode_t mode, bool replace) {
  auto fail = [&](const std::string& what, int err) {
    return make_error(
      err == EACCES || err == EPERM ? errc::permission_denied : errc::io_error,
      "cannot " + what + " " + path + ": " + std::strerror(err));
  };
  std::string tmp = path + ".tmp-XXXXXX";
  // mkstemp creates the file 0600: a key is never readable by others, not
  // even for a moment.
  unique_fd fd{::mkstemp(tmp.data())};
  if (!fd)
    return fail("write", errno);
  auto drop = [&](const std::string& what) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail(what, err);
  };
  if (::fchmod(fd.get(), mode) != 0)
    return drop("write");
  for (std::size_t done = 0; done < text.size();) {
    auto n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return drop("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0)
    return drop("write");
  if (replace) {
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      return drop("write");
    return {};
  }
  // Why link and not rename? rename replaces silently; link fails with
  // EEXIST, atomically.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST)
      return make_error(errc::already_exists,
                        path + " exists already; not replacing it");
    return fail("write", err);
  }
  ::unlink(tmp.c_str());
  return {};
}

/// Reads a PEM file of the CA; a missing one says how to make it.
caf::expected<std::string> read_ca_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    return make_error(errc::not_found, "cannot read " + path
                                         + ": no such file (make a CA with "
                                           "`joy cert ca`)");
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(::access(path.c_str(), R_OK) != 0 && errno == EACCES
                        ? errc::permission_denied
                        : errc::io_error,
                      "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return make_error(errc::io_error, "cannot read " + path);
  return text.str();
}

// -- PEM ----------------------------------------------------------------------

ossl_ptr<BIO> bio_of(const std::string& pem) {
  return ossl_ptr<BIO>{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
}

caf::expected<std::string> to_pem(X509* cert) {
  ossl_ptr<BIO> bio{BIO_new(BIO_s_mem())};
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    return openssl_failure("cannot encode a certificate");
  char* data = nullptr;
  auto size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

/// PKCS#8, unencrypted: the daemon must start without a passphrase.
caf::expected<std::string> to_pem(EVP_PKEY* key) {
  ossl_ptr<BIO> bio{BIO_new(BIO_s_mem())};
  if (!bio
      || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                  nullptr)
           != 1)
    return openssl_failure("cannot encode a private key");
  char* data = nullptr;
  auto size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// -- certificates -------------------------------------------------------------

caf::expected<ossl_ptr<EVP_PKEY>> new_key() {
  // Why P-256? Every TLS stack speaks it, and its keys and signatures are
  // small and fast next to RSA's.
  ossl_ptr<EVP_PKEY> key{EVP_EC_gen("P-256")};
  if (!key)
    return openssl_failure("cannot make a P-256 key");
  return key;
}

/// A random positive 127-bit serial: RFC 5280 asks for unique serials of at
/// most 20 bytes, and random ones need no state shared between issuers.
caf::error set_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1)
    return openssl_failure("cannot draw a serial number");
  bytes[0] &= 0x7f; // positive
  bytes[0] |= 0x40; // never zero, never a leading zero byte
  ossl_ptr<BIGNUM> bn{BN_bin2bn(bytes, sizeof(bytes), nullptr)};
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)))
    return openssl_failure("cannot set a serial number");
  return {};
}

struct extension {
  int nid;
  std::string value;
};

/// Makes a certificate for `key` named `common_name`, signed by
/// `issuer_key` on behalf of `issuer` (itself when null: self-signed).
caf::expected<ossl_ptr<X509>>
issue(EVP_PKEY* key, const std::string& common_name, X509* issuer,
      EVP_PKEY* issuer_key, int days, const std::vector<extension>& exts) {
  ossl_ptr<X509> cert{X509_new()};
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
    return openssl_failure("cannot make a certificate");
  if (auto err = set_serial(cert.get()))
    return err;
  // Valid from five minutes ago: clocks of the nodes may disagree a little,
  // and a certificate from the future is refused.
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -5 * 60)
      || !X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr))
    return openssl_failure("cannot set the validity");
  auto* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(
        name, "CN", MBSTRING_UTF8,
        reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0)
      != 1)
    return openssl_failure("cannot set the name");
  auto* issuer_name = issuer != nullptr ? X509_get_subject_name(issuer) : name;
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1
      || X509_set_pubkey(cert.get(), key) != 1)
    return openssl_failure("cannot make a certificate");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(),
                 nullptr, nullptr, 0);
  for (auto& ext : exts) {
    ossl_ptr<X509_EXTENSION> x{
      X509V3_EXT_conf_nid(nullptr, &ctx, ext.nid, ext.value.c_str())};
    if (!x || X509_add_ext(cert.get(), x.get(), -1) != 1)
      return openssl_failure(std::string{"cannot add "} + OBJ_nid2sn(ext.nid)
                             + " " + ext.value);
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0)
    return openssl_failure("cannot sign the certificate");
  return cert;
}

/// `[A-Za-z0-9][A-Za-z0-9.-]{0,62}`: a DNS label-ish name that fits a
/// subjectAltName and needs no escaping in OpenSSL's extension syntax.
bool valid_node_name(const std::string& name) {
  if (name.empty() || name.size() > 63)
    return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                 || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '-')))
      return false;
  }
  return true;
}

caf::error check_days(int days) {
  if (days < 1)
    return make_error(errc::invalid_argument,
                      "a certificate must be valid for at least one day, got "
                        + std::to_string(days));
  return {};
}

void print_error(const caf::error& err) {
  std::cerr << "joy: error (" << to_string(code_of(err))
            << "): " << message_of(err) << "\n";
}

} // namespace

caf::error make_cluster_ca(const std::string& dir, int days) {
  if (auto err = check_days(days))
    return err;
  auto cert_path = dir + "/ca.pem";
  auto key_path = dir + "/ca-key.pem";
  std::error_code ec;
  for (auto& path : {cert_path, key_path})
    if (fs::exists(fs::symlink_status(path, ec)))
      return make_error(errc::already_exists,
                        path
                          + " exists already; a new CA would orphan every "
                            "node certificate of the old one (remove "
                          + dir + " first if that is what you want)");
  if (auto err = make_private_dir(dir))
    return err;
  auto key = new_key();
  if (!key)
    return key.error();
  auto cert = issue(key->get(), "Joy cluster CA", nullptr, key->get(), days,
                    {{NID_basic_constraints, "critical,CA:TRUE"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"}});
  if (!cert)
    return cert.error();
  auto key_pem = to_pem(key->get());
  if (!key_pem)
    return key_pem.error();
  auto cert_pem = to_pem(cert->get());
  if (!cert_pem)
    return cert_pem.error();
  // The key first: a ca.pem without its key could not issue anything.
  if (auto err = write_file(key_path, *key_pem, 0600, false))
    return err;
  if (auto err = write_file(cert_path, *cert_pem, 0644, false)) {
    ::unlink(key_path.c_str());
    return err;
  }
  return {};
}

caf::error make_node_cert(const std::string& ca_dir, const std::string& out_dir,
                          const std::string& node_name, int days, bool force) {
  if (!valid_node_name(node_name))
    return make_error(errc::invalid_argument,
                      "a node name is 1 to 63 letters, digits, '.' and '-', "
                      "starting with a letter or digit; got '"
                        + node_name + "'");
  if (auto err = check_days(days))
    return err;
  auto files = tls_files_in(out_dir);
  std::error_code ec;
  if (!force && fs::exists(fs::symlink_status(files.key, ec)))
    return make_error(errc::already_exists,
                      files.key
                        + " exists already; pass --force to replace it "
                          "(its certificate stops working)");
  auto ca_cert_path = ca_dir + "/ca.pem";
  auto ca_key_path = ca_dir + "/ca-key.pem";
  auto ca_pem = read_ca_file(ca_cert_path);
  if (!ca_pem)
    return ca_pem.error();
  auto ca_key_pem = read_ca_file(ca_key_path);
  if (!ca_key_pem)
    return ca_key_pem.error();
  ossl_ptr<X509> ca{
    PEM_read_bio_X509(bio_of(*ca_pem).get(), nullptr, nullptr, nullptr)};
  if (!ca)
    return make_error(errc::invalid_argument, ca_cert_path
                                                + " is not a PEM certificate ("
                                                + openssl_error() + ")");
  ossl_ptr<EVP_PKEY> ca_key{PEM_read_bio_PrivateKey(bio_of(*ca_key_pem).get(),
                                                    nullptr, nullptr, nullptr)};
  if (!ca_key)
    return make_error(errc::invalid_argument,
                      ca_key_path + " is not an unencrypted PEM private key ("
                        + openssl_error() + ")");
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return make_error(errc::failed_precondition,
                      ca_key_path + " is not the key of " + ca_cert_path);
  }
  if (X509_check_ca(ca.get()) < 1)
    return make_error(errc::failed_precondition,
                      ca_cert_path + " is not a CA certificate");
  auto key = new_key();
  if (!key)
    return key.error();
  // Why the cluster name too? Clients verify every server against it, as
  // kj-tls cannot verify IP addresses (actors/cluster/tls.hpp).
  std::string san = std::string{"DNS:"} + cluster_server_name;
  if (node_name != cluster_server_name)
    san += ",DNS:" + node_name;
  auto cert = issue(key->get(), node_name, ca.get(), ca_key.get(), days,
                    {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, "serverAuth,clientAuth"},
                     {NID_subject_alt_name, san},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid"}});
  if (!cert)
    return cert.error();
  auto key_pem = to_pem(key->get());
  if (!key_pem)
    return key_pem.error();
  auto cert_pem = to_pem(cert->get());
  if (!cert_pem)
    return cert_pem.error();
  if (auto err = make_private_dir(out_dir))
    return err;
  // The key first, and only it refuses to replace: a node.pem or ca.pem left
  // over without its key is of no use to anyone.
  if (auto err = write_file(files.key, *key_pem, 0600, force))
    return err;
  if (auto err = write_file(files.cert, *cert_pem, 0644, true))
    return err;
  return write_file(files.ca, *ca_pem, 0644, true);
}

CLI::App* add_cert_command(CLI::App& app, cert_args& args) {
  auto* cert = app.add_subcommand(
    "cert", "Make the TLS certificates of a cluster: its CA, and one per node");
  cert->require_subcommand(1);
  args.ca = cert->add_subcommand(
    "ca", "Make the cluster's CA (ca.pem, ca-key.pem); keep ca-key.pem on "
          "one machine only");
  args.ca->add_option("--dir", args.ca_dir,
                      "Where to write it (default: HOME/ca)");
  args.ca->add_option("--days", args.days, "Validity (default 3650)")
    ->check(joy::cli_checks::positive);
  args.node = cert->add_subcommand(
    "node", "Issue a node's certificate: writes a TLS directory (node.pem, "
            "node-key.pem, ca.pem) to copy to that node's HOME/tls");
  args.node->add_option("name", args.node_name, "The node's name")->required();
  args.node->add_option("--ca", args.node_ca_dir,
                        "The CA's directory (default: HOME/ca)");
  args.node->add_option("--out", args.out_dir,
                        "Where to write it (default: HOME/tls)");
  args.node->add_option("--days", args.days, "Validity (default 825)")
    ->check(joy::cli_checks::positive);
  args.node->add_flag("--force", args.force,
                      "Replace an existing node-key.pem");
  return cert;
}

int run_cert_command(const cert_args& args, const std::string& home) {
  std::vector<std::string> written;
  caf::error err;
  if (args.ca != nullptr && args.ca->parsed()) {
    auto dir = args.ca_dir.empty() ? home + "/ca" : args.ca_dir;
    err = make_cluster_ca(dir, args.days > 0 ? args.days : 3650);
    written = {dir + "/ca.pem", dir + "/ca-key.pem"};
  } else if (args.node != nullptr && args.node->parsed()) {
    auto ca_dir = args.node_ca_dir.empty() ? home + "/ca" : args.node_ca_dir;
    auto out = args.out_dir.empty() ? home + "/tls" : args.out_dir;
    err = make_node_cert(ca_dir, out, args.node_name,
                         args.days > 0 ? args.days : 825, args.force);
    auto files = tls_files_in(out);
    written = {files.cert, files.key, files.ca};
  } else {
    err = make_error(errc::invalid_argument, "joy cert: say ca or node");
  }
  if (err) {
    print_error(err);
    return 1;
  }
  for (auto& path : written)
    std::cout << "wrote " << path << "\n";
  return 0;
}

} // namespace joy::cli
