// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/cluster/tls.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "runtime/errc.hpp"
#include "runtime/unique_fd.hpp"

namespace joy {

namespace {

/// PEM files are a few KiB; the cap keeps a path to /dev/zero or a log file
/// from being read whole.
constexpr off_t max_pem_size = 1 << 20;

/// Reads a whole PEM file, with errors that say which file and what to do.
caf::expected<std::string> read_pem(const std::string& path) {
  auto fail = [&](int err) {
    auto what = "cannot read " + path + ": " + std::strerror(err);
    switch (err) {
      case ENOENT:
        return make_error(errc::not_found,
                          what + " (make them with `joy cert`)");
      case EACCES:
      case EPERM:
        return make_error(errc::permission_denied, what);
      default:
        return make_error(errc::io_error, what);
    }
  };
  unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0)
    return fail(errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return fail(errno);
  if (!S_ISREG(st.st_mode))
    return make_error(errc::invalid_argument,
                      "cannot read " + path + ": not a regular file");
  if (st.st_size > max_pem_size)
    return make_error(errc::too_large, path + " is too large for a PEM file ("
                                         + std::to_string(st.st_size)
                                         + " bytes)");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    auto n = ::read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail(errno);
    if (n == 0)
      break; // shrank while we read: take what is there
    done += static_cast<std::size_t>(n);
  }
  text.resize(done);
  return text;
}

/// The reason of an OpenSSL error line "error:0A000086:SSL
/// routines::certificate verify failed" (the part after the fourth ':').
std::string openssl_reason(const std::string& line) {
  auto pos = std::string::npos;
  std::size_t start = 0;
  for (int i = 0; i < 4; ++i) {
    pos = line.find(':', start);
    if (pos == std::string::npos)
      return line;
    start = pos + 1;
  }
  return line.substr(start);
}

/// kj's description of a failure without its "OpenSSL error; message = "
/// wrapping, reduced to OpenSSL's reasons when it holds error lines.
std::string reasons_of(const kj::Exception& ex) {
  std::string text{ex.getDescription().cStr()};
  std::vector<std::string> reasons;
  std::size_t start = 0;
  while ((start = text.find("error:", start)) != std::string::npos) {
    auto end = text.find('\n', start);
    auto line = text.substr(start, end == std::string::npos ? std::string::npos
                                                            : end - start);
    reasons.push_back(openssl_reason(line));
    start = end == std::string::npos ? text.size() : end;
  }
  if (reasons.empty()) {
    // kj's KJ_REQUIRE messages read "expected ...; <what>; reason = <why>".
    for (auto prefix :
         {"OpenSSL error; message = ", "requirement not met: ", "failed: "})
      if (auto at = text.find(prefix); at != std::string::npos)
        text = text.substr(at + std::strlen(prefix));
    return text;
  }
  std::string out;
  for (auto& reason : reasons) {
    if (!out.empty())
      out += "; ";
    out += reason;
  }
  return out;
}

/// Runs `f` (which builds a kj-tls object and may throw kj::Exception) and
/// turns a failure into invalid_argument naming `path`.
template <class F>
caf::error parse_pem(const std::string& path, const char* what, F&& f) {
  KJ_IF_MAYBE (ex, kj::runCatchingExceptions(std::forward<F>(f))) {
    return make_error(errc::invalid_argument,
                      path + " is not " + what + " (" + reasons_of(*ex) + ")");
  }
  return {};
}

// -- OpenSSL handles ----------------------------------------------------------

struct openssl_free {
  void operator()(BIO* p) const noexcept {
    BIO_free(p);
  }
  void operator()(X509* p) const noexcept {
    X509_free(p);
  }
  void operator()(EVP_PKEY* p) const noexcept {
    EVP_PKEY_free(p);
  }
  void operator()(X509_STORE* p) const noexcept {
    X509_STORE_free(p);
  }
  void operator()(X509_STORE_CTX* p) const noexcept {
    X509_STORE_CTX_free(p);
  }
  void operator()(STACK_OF(X509) * p) const noexcept {
    sk_X509_pop_free(p, X509_free);
  }
};

template <class T>
using ossl_ptr = std::unique_ptr<T, openssl_free>;

ossl_ptr<BIO> bio_of(const std::string& pem) {
  return ossl_ptr<BIO>{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
}

/// Every certificate of a PEM file, leaf first (the formats were checked by
/// kj-tls already).
std::vector<ossl_ptr<X509>> certs_of(const std::string& pem) {
  std::vector<ossl_ptr<X509>> out;
  auto bio = bio_of(pem);
  while (auto* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    out.emplace_back(cert);
  ERR_clear_error(); // the read that ended the loop left "no start line"
  return out;
}

/// The checks kj-tls would otherwise surface as opaque handshake failures
/// on every connection. Why these three? A key that does not match its
/// certificate is dropped silently by SSL_CTX_use_certificate, so the node
/// would serve no certificate at all; a certificate from an earlier CA, or
/// an expired one, is refused by every peer; and without the cluster name,
/// every client refuses the server.
caf::error check_fit(const tls_files& files, const std::string& ca_pem,
                     const std::string& cert_pem, const std::string& key_pem) {
  auto cas = certs_of(ca_pem);
  auto chain = certs_of(cert_pem);
  ossl_ptr<EVP_PKEY> key{
    PEM_read_bio_PrivateKey(bio_of(key_pem).get(), nullptr, nullptr, nullptr)};
  ERR_clear_error();
  if (cas.empty() || chain.empty() || !key)
    return make_error(errc::invalid_argument, "cannot parse " + files.ca + ", "
                                                + files.cert + " or "
                                                + files.key);
  auto& cert = chain.front();
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return make_error(errc::failed_precondition,
                      files.key + " is not the private key of " + files.cert
                        + " (remake both with `joy cert node`)");
  }
  // kj-tls trusts only the first certificate of `trustedCertificates`
  // entries, so the check does too; intermediates may follow the leaf.
  ossl_ptr<X509_STORE> store{X509_STORE_new()};
  ossl_ptr<STACK_OF(X509)> untrusted{sk_X509_new_null()};
  ossl_ptr<X509_STORE_CTX> ctx{X509_STORE_CTX_new()};
  if (!store || !untrusted || !ctx
      || X509_STORE_add_cert(store.get(), cas.front().get()) != 1)
    return make_error(errc::internal, "out of memory checking " + files.cert);
  for (std::size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].get()) <= 0)
      return make_error(errc::internal, "out of memory checking " + files.cert);
    chain[i].release(); // owned by `untrusted` now
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), untrusted.get())
      != 1)
    return make_error(errc::internal, "cannot check " + files.cert);
  if (X509_verify_cert(ctx.get()) != 1) {
    auto code = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return make_error(errc::failed_precondition,
                      files.cert + " does not verify against " + files.ca + ": "
                        + X509_verify_cert_error_string(code)
                        + " (make a new one with `joy cert node`)");
  }
  for (auto purpose : {X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT})
    if (X509_check_purpose(cert.get(), purpose, 0) != 1) {
      ERR_clear_error();
      return make_error(errc::failed_precondition,
                        files.cert
                          + " is not for TLS servers and clients both (it "
                            "needs extendedKeyUsage serverAuth, clientAuth)");
    }
  if (X509_check_host(cert.get(), cluster_server_name, 0, 0, nullptr) != 1) {
    ERR_clear_error();
    return make_error(errc::failed_precondition,
                      files.cert + " does not name " + cluster_server_name
                        + " (make a new one with `joy cert node`)");
  }
  return {};
}

} // namespace

tls_files tls_files_in(const std::string& dir) {
  return {dir + "/ca.pem", dir + "/node.pem", dir + "/node-key.pem"};
}

caf::expected<kj::Own<kj::TlsContext>>
make_tls_context(const tls_files& files, kj::Maybe<kj::Timer&> timer) {
  auto ca_pem = read_pem(files.ca);
  if (!ca_pem)
    return ca_pem.error();
  auto cert_pem = read_pem(files.cert);
  if (!cert_pem)
    return cert_pem.error();
  auto key_pem = read_pem(files.key);
  if (!key_pem)
    return key_pem.error();
  // The kj objects copy what they parse: the strings may go after this.
  kj::Own<kj::TlsCertificate> ca;
  kj::Own<kj::TlsCertificate> cert;
  kj::Own<kj::TlsPrivateKey> key;
  if (auto err = parse_pem(files.ca, "a PEM certificate", [&] {
        ca = kj::heap<kj::TlsCertificate>(ca_pem->c_str());
      }))
    return err;
  if (auto err = parse_pem(files.cert, "a PEM certificate", [&] {
        cert = kj::heap<kj::TlsCertificate>(cert_pem->c_str());
      }))
    return err;
  if (auto err = parse_pem(files.key, "an unencrypted PEM private key", [&] {
        key = kj::heap<kj::TlsPrivateKey>(key_pem->c_str());
      }))
    return err;
  if (auto err = check_fit(files, *ca_pem, *cert_pem, *key_pem))
    return err;
  // The context takes its own references; these may go when it is made.
  kj::TlsKeypair keypair{*key, *cert};
  kj::TlsContext::Options options;
  options.useSystemTrustStore = false;
  options.verifyClients = true;
  options.trustedCertificates = kj::arrayPtr(ca.get(), 1);
  options.defaultKeypair = keypair;
  options.minVersion = kj::TlsVersion::TLS_1_2;
  KJ_IF_MAYBE (t, timer) {
    options.timer = *t;
    options.acceptTimeout = tls_accept_timeout;
  }
  kj::Own<kj::TlsContext> context;
  KJ_IF_MAYBE (ex, kj::runCatchingExceptions([&] {
                 context = kj::heap<kj::TlsContext>(kj::mv(options));
               })) {
    return make_error(errc::invalid_argument, "cannot use " + files.cert
                                                + " and " + files.key + ": "
                                                + reasons_of(*ex));
  }
  return context;
}

std::string describe_tls_failure(const kj::Exception& ex) {
  return reasons_of(ex);
}

caf::error make_tls_error(const kj::Exception& ex) {
  auto reason = reasons_of(ex);
  auto has
    = [&](const char* what) { return reason.find(what) != std::string::npos; };
  switch (ex.getType()) {
    case kj::Exception::Type::OVERLOADED:
      if (has("timed out"))
        return make_error(errc::timeout, "TLS handshake timed out");
      return make_error(errc::overloaded, "TLS: " + reason);
    case kj::Exception::Type::DISCONNECTED:
      return make_error(errc::disconnected, "TLS: " + reason);
    default:
      break;
  }
  // Ours ("certificate verify failed", "peer did not return a certificate")
  // or the peer's alert about our certificate ("tlsv1 alert unknown ca").
  if (has("certificate") || has("alert unknown ca") || has("not trusted"))
    return make_error(errc::permission_denied, "TLS: " + reason);
  return make_error(errc::protocol_error, "TLS: " + reason);
}

} // namespace joy
