// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/node/installer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

#include <openssl/evp.h>

#include "runtime/errc.hpp"
#include "runtime/imjoy_file.hpp"

namespace fs = std::filesystem;

namespace joy {

namespace {

/// plugin.json larger than this is refused before parsing.
constexpr std::size_t max_manifest_size = std::size_t{1} << 20;

constexpr std::size_t chunk_size = 64 * 1024;

/// How paths appear in messages.
std::string display(const fs::path& p) {
  return p.string();
}

caf::error io_error(const std::string& what, int errnum) {
  return make_error(errc::io_error, what + ": " + std::strerror(errnum));
}

caf::error io_error(const std::string& what, const std::error_code& ec) {
  return make_error(errc::io_error, what + ": " + ec.message());
}

/// Closes a file descriptor on scope exit.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const noexcept {
    EVP_MD_CTX_free(ctx);
  }
};

using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;

/// Writes all of `data` to `fd`, retrying after EINTR and short writes.
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

caf::error fsync_path(const fs::path& p, int flags) {
  fd_guard fd{::open(p.c_str(), flags | O_CLOEXEC)};
  if (fd.fd < 0)
    return io_error("cannot open " + display(p), errno);
  if (::fsync(fd.fd) != 0)
    return io_error("cannot sync " + display(p), errno);
  return {};
}

/// True if `p` lies within `root` (both canonical).
bool is_within(const fs::path& root, const fs::path& p) {
  auto [r, q] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return r == root.end();
}

/// What a plugin folder holds, in hash order: relative generic paths.
struct folder_listing {
  std::vector<std::string> dirs;
  std::vector<std::string> files;
};

/// Checks that `dir` exists and is (or links to) a directory.
caf::error require_directory(const fs::path& dir) {
  std::error_code ec;
  auto st = fs::status(dir, ec);
  if (ec && st.type() != fs::file_type::not_found)
    return io_error("cannot access " + display(dir), ec);
  if (!fs::exists(st))
    return make_error(errc::not_found, display(dir) + " does not exist");
  if (!fs::is_directory(st))
    return make_error(errc::invalid_argument,
                      display(dir) + " is not a directory");
  return {};
}

/// Lists `dir` recursively, refusing symlinks and special files.
caf::expected<folder_listing> list_folder(const fs::path& dir) {
  if (auto err = require_directory(dir))
    return err;
  std::error_code ec;
  folder_listing result;
  fs::recursive_directory_iterator i{dir, ec};
  if (ec)
    return io_error("cannot read " + display(dir), ec);
  for (fs::recursive_directory_iterator end; i != end; i.increment(ec)) {
    if (ec)
      return io_error("cannot read " + display(dir), ec);
    auto rel = i->path().lexically_relative(dir).generic_string();
    auto kind = i->symlink_status(ec);
    if (ec)
      return io_error("cannot read " + display(i->path()), ec);
    if (fs::is_symlink(kind))
      return make_error(errc::invalid_argument,
                        rel
                          + " is a symlink; plugin folders may not contain "
                            "symlinks");
    if (fs::is_directory(kind))
      result.dirs.push_back(std::move(rel));
    else if (fs::is_regular_file(kind))
      result.files.push_back(std::move(rel));
    else
      return make_error(errc::invalid_argument,
                        rel + " is not a regular file or directory");
  }
  if (ec)
    return io_error("cannot read " + display(dir), ec);
  // std::string compares like memcmp: byte order.
  std::sort(result.dirs.begin(), result.dirs.end());
  std::sort(result.files.begin(), result.files.end());
  return result;
}

/// Feeds every file of `listing` into a sha256 (see the header for the
/// format) and, if `copy_to` is set, writes each file below it with its
/// permission bits and syncs it. Returns the hex digest.
caf::expected<std::string> digest_files(const fs::path& dir,
                                        const folder_listing& listing,
                                        const fs::path* copy_to) {
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return make_error(errc::internal, "cannot initialize sha256");
  auto update = [&](const void* data, std::size_t size) {
    return EVP_DigestUpdate(ctx.get(), data, size) == 1;
  };
  std::vector<char> buf(chunk_size);
  for (auto& rel : listing.files) {
    auto src_path = dir / rel;
    // O_NOFOLLOW: a file swapped for a symlink since the listing is refused.
    fd_guard src{::open(src_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
    if (src.fd < 0)
      return io_error("cannot read " + display(src_path), errno);
    struct stat st;
    if (::fstat(src.fd, &st) != 0)
      return io_error("cannot read " + display(src_path), errno);
    if (!S_ISREG(st.st_mode))
      return make_error(errc::invalid_argument, rel + " is not a regular file");
    auto size = static_cast<uint64_t>(st.st_size);
    std::array<unsigned char, 8> size_le;
    for (std::size_t k = 0; k < size_le.size(); ++k)
      size_le[k] = static_cast<unsigned char>(size >> (8 * k));
    if (!update(rel.data(), rel.size()) || !update("\0", 1)
        || !update(size_le.data(), size_le.size()))
      return make_error(errc::internal, "sha256 failed");
    fd_guard dst;
    fs::path dst_path;
    if (copy_to) {
      dst_path = *copy_to / rel;
      dst.fd
        = ::open(dst_path.c_str(),
                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (dst.fd < 0)
        return io_error("cannot create " + display(dst_path), errno);
      // Installed code is read-only, and readable by the uid plugins run as
      // in their sandbox; executables stay executable. No setuid, setgid or
      // sticky bits.
      if (::fchmod(dst.fd, (st.st_mode & 0111) != 0 ? 0755 : 0644) != 0)
        return io_error("cannot set permissions of " + display(dst_path),
                        errno);
    }
    uint64_t done = 0;
    for (;;) {
      auto n = ::read(src.fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return io_error("cannot read " + display(src_path), errno);
      }
      if (n == 0)
        break;
      auto count = static_cast<std::size_t>(n);
      done += count;
      if (done > size)
        break;
      if (!update(buf.data(), count))
        return make_error(errc::internal, "sha256 failed");
      if (copy_to && !write_all(dst.fd, buf.data(), count))
        return io_error("cannot write " + display(dst_path), errno);
    }
    if (done != size)
      return make_error(errc::io_error,
                        display(src_path) + " changed while being read");
    if (copy_to && ::fsync(dst.fd) != 0)
      return io_error("cannot sync " + display(dst_path), errno);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int digest_size = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &digest_size) != 1)
    return make_error(errc::internal, "sha256 failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string result;
  result.reserve(digest_size * 2);
  for (unsigned int k = 0; k < digest_size; ++k) {
    result += hex[digest[k] >> 4];
    result += hex[digest[k] & 0x0F];
  }
  return result;
}

caf::error make_dir(const fs::path& p) {
  if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST)
    return io_error("cannot create " + display(p), errno);
  return {};
}

/// Creates `p` and its missing parents with mode 0755.
caf::error make_dirs(const fs::path& p) {
  fs::path current;
  for (auto& part : p) {
    current /= part;
    if (current == current.root_path())
      continue;
    if (auto err = make_dir(current))
      return err;
  }
  std::error_code ec;
  if (!fs::is_directory(p, ec))
    return make_error(errc::io_error,
                      "cannot create " + display(p) + ": not a directory");
  return {};
}

std::string random_suffix() {
  std::random_device rd;
  std::uniform_int_distribution<uint32_t> dist;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", dist(rd));
  return buf;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Moves the finished copy `tmp` to `target`, replacing an older copy.
caf::error move_into_place(const fs::path& tmp, const fs::path& target) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target, ec))) {
    // Swap atomically where the filesystem can, so that `target` never
    // disappears; `tmp` then holds the old copy.
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(),
                    RENAME_EXCHANGE)
        == 0) {
      fs::remove_all(tmp, ec);
      return {};
    }
    fs::remove_all(target, ec);
    if (ec)
      return io_error("cannot remove " + display(target), ec);
  }
  fs::rename(tmp, target, ec);
  if (ec)
    return io_error("cannot rename " + display(tmp) + " to " + display(target),
                    ec);
  return {};
}

/// Copies the listed folder into a new directory `tmp`; returns the hash of
/// what was written.
caf::expected<std::string> copy_folder(const fs::path& source,
                                       const folder_listing& listing,
                                       const fs::path& tmp) {
  if (::mkdir(tmp.c_str(), 0755) != 0)
    return io_error("cannot create " + display(tmp), errno);
  // Sorted, so every parent comes before its children.
  for (auto& rel : listing.dirs)
    if (auto err = make_dir(tmp / rel))
      return err;
  auto hash = digest_files(source, listing, &tmp);
  if (!hash)
    return hash;
  // The files are synced; their directory entries must be too.
  for (auto& rel : listing.dirs)
    if (auto err = fsync_path(tmp / rel, O_RDONLY | O_DIRECTORY))
      return err;
  if (auto err = fsync_path(tmp, O_RDONLY | O_DIRECTORY))
    return err;
  return hash;
}

/// Reads the regular file `path` (not through a symlink), refusing more
/// than `limit` bytes; `what` names it in errors.
caf::expected<std::string> read_bounded(const fs::path& path, std::size_t limit,
                                        const std::string& what) {
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  if (fd.fd < 0)
    return io_error("cannot read " + display(path), errno);
  std::string text;
  std::vector<char> buf(chunk_size);
  for (;;) {
    auto n = ::read(fd.fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return io_error("cannot read " + display(path), errno);
    }
    if (n == 0)
      break;
    text.append(buf.data(), static_cast<std::size_t>(n));
    if (text.size() > limit)
      return make_error(errc::too_large, what + ": larger than "
                                           + std::to_string(limit) + " bytes");
  }
  return text;
}

/// A plugin run from an ImJoy file (window, web-worker, native-python):
/// its `entry` is that file, inside the folder, and it parses.
caf::expected<plugin_manifest> check_imjoy_entry(const fs::path& dir,
                                                 plugin_manifest manifest) {
  if (manifest.entry.empty())
    return make_error(errc::invalid_argument,
                      "entry: a " + manifest.type + " plugin names its "
                        + (manifest.type == "native-python"
                             ? ".imjoy.html file or .py script"
                             : ".imjoy.html file"));
  auto path = dir / manifest.entry;
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  if (ec || !fs::is_regular_file(st))
    return make_error(errc::invalid_argument, "entry: " + manifest.entry
                                                + " is not a regular file in "
                                                + display(dir));
  auto text = read_bounded(path, max_imjoy_file_size, manifest.entry);
  if (!text)
    return text.error();
  auto python = manifest.type == "native-python";
  // A Python plugin may also be a plain script next to its plugin.json.
  if (python && path.extension() == ".py")
    return manifest;
  std::string tag;
  if (auto i = manifest.document.find("tag");
      i != manifest.document.end() && i->is_string())
    tag = i->get<std::string>();
  auto file = parse_imjoy_file(*text, tag);
  if (!file)
    return make_error(code_of(file.error()),
                      manifest.entry + ": " + message_of(file.error()));
  if (file->script.empty())
    return make_error(errc::invalid_argument,
                      manifest.entry + ": has no <script>");
  if (python && file->script_lang != "python")
    return make_error(errc::invalid_argument,
                      manifest.entry
                        + ": a native-python plugin's <script> "
                          "has lang=\"python\" (this one is "
                        + file->script_lang + ")");
  return manifest;
}

} // namespace

caf::expected<plugin_manifest> load_plugin_folder(const fs::path& dir) {
  if (auto err = require_directory(dir))
    return err;
  std::error_code ec;
  auto manifest_path = dir / "plugin.json";
  auto manifest_st = fs::symlink_status(manifest_path, ec);
  if (!fs::exists(manifest_st))
    return make_error(errc::not_found, "no plugin.json in " + display(dir));
  if (!fs::is_regular_file(manifest_st))
    return make_error(errc::invalid_argument,
                      "plugin.json: " + display(manifest_path)
                        + " is not a regular file");
  auto text = read_bounded(manifest_path, max_manifest_size, "plugin.json");
  if (!text)
    return text.error();
  auto manifest = parse_manifest(*text);
  if (!manifest)
    return make_error(code_of(manifest.error()),
                      "plugin.json: " + message_of(manifest.error()));
  if (manifest->type != "native")
    return check_imjoy_entry(dir, std::move(*manifest));
  // The entry must resolve, through any symlinks, to an executable regular
  // file inside the folder.
  auto root = fs::canonical(dir, ec);
  if (ec)
    return io_error("cannot resolve " + display(dir), ec);
  auto& entry = manifest->entry;
  auto entry_path = fs::canonical(root / entry, ec);
  if (ec)
    return make_error(errc::invalid_argument, "entry: " + entry
                                                + " does not exist in "
                                                + display(root));
  if (!is_within(root, entry_path))
    return make_error(errc::invalid_argument,
                      "entry: " + entry + " leads outside the plugin folder");
  auto entry_st = fs::status(entry_path, ec);
  if (ec || !fs::is_regular_file(entry_st))
    return make_error(errc::invalid_argument,
                      "entry: " + entry + " is not a regular file");
  constexpr auto any_exec
    = fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  if ((entry_st.permissions() & any_exec) == fs::perms::none
      || ::access(entry_path.c_str(), X_OK) != 0)
    return make_error(errc::invalid_argument,
                      "entry: " + entry + " is not executable");
  return manifest;
}

caf::expected<std::string> hash_plugin_folder(const fs::path& dir) {
  auto listing = list_folder(dir);
  if (!listing)
    return listing.error();
  return digest_files(dir, *listing, nullptr);
}

caf::expected<plugin_record>
install_plugin_folder(const fs::path& source, const fs::path& plugins_dir) {
  auto manifest = load_plugin_folder(source);
  if (!manifest)
    return manifest.error();
  std::error_code ec;
  auto src = fs::canonical(source, ec);
  if (ec)
    return io_error("cannot resolve " + display(source), ec);
  // Listing refuses symlinks and special files before anything is written.
  auto listing = list_folder(src);
  if (!listing)
    return listing.error();
  auto parent = fs::absolute(plugins_dir, ec);
  if (ec)
    return io_error("cannot resolve " + display(plugins_dir), ec);
  parent = parent.lexically_normal() / manifest->name;
  if (auto err = make_dirs(parent))
    return err;
  // A new <name> directory must itself survive a crash.
  if (auto err = fsync_path(parent.parent_path(), O_RDONLY | O_DIRECTORY))
    return err;
  // Installs of a node run one at a time (the node actor queues them), so
  // a temporary copy found here was left by a crash: sweep it.
  for (auto& entry : fs::directory_iterator{parent, ec})
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  auto target = parent / manifest->version;
  auto tmp = parent / (".tmp-" + manifest->version + "-" + random_suffix());
  auto fail = [&](caf::error err) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return err;
  };
  // The copy is hashed and validated as written, so the record describes
  // exactly what was installed even if the source changes meanwhile.
  auto hash = copy_folder(src, *listing, tmp);
  if (!hash)
    return fail(hash.error());
  auto copied = load_plugin_folder(tmp);
  if (!copied)
    return fail(copied.error());
  if (copied->name != manifest->name || copied->version != manifest->version)
    return fail(make_error(errc::io_error,
                           display(src) + " changed while being installed"));
  if (auto err = move_into_place(tmp, target))
    return fail(err);
  if (auto err = fsync_path(parent, O_RDONLY | O_DIRECTORY))
    return err;
  plugin_record rec;
  rec.name = copied->name;
  rec.version = copied->version;
  rec.type = copied->type;
  rec.source = src.string();
  rec.manifest
    = copied->document.dump(-1, ' ', false, json::error_handler_t::replace);
  rec.sha256 = std::move(*hash);
  rec.path = target.string();
  rec.installed_at = now_ns();
  rec.updated_at = rec.installed_at;
  return rec;
}

caf::expected<plugin_record> builtin_record(const fs::path& dir) {
  auto manifest = load_plugin_folder(dir);
  if (!manifest)
    return manifest.error();
  auto hash = hash_plugin_folder(dir);
  if (!hash)
    return hash.error();
  plugin_record rec;
  rec.name = manifest->name;
  rec.version = manifest->version;
  rec.type = manifest->type;
  rec.source = "built-in";
  rec.manifest
    = manifest->document.dump(-1, ' ', false, json::error_handler_t::replace);
  rec.sha256 = std::move(*hash);
  rec.path = dir.string();
  rec.installed_at = now_ns();
  rec.updated_at = rec.installed_at;
  return rec;
}

caf::error imjoy_file_to_folder(const std::string& text, const fs::path& into,
                                const std::string& tag) {
  auto file = parse_imjoy_file(text, tag);
  if (!file)
    return file.error();
  auto doc = file->config;
  if (auto i = doc.find("type"); i != doc.end() && *i == "native")
    return make_error(errc::invalid_argument,
                      "type: a native plugin is a folder with its binary, not "
                      "an .imjoy.html file");
  doc["entry"] = std::string{imjoy_entry_name};
  doc["tag"] = file->tag;
  auto manifest = validate_manifest(doc);
  if (!manifest)
    return make_error(code_of(manifest.error()),
                      "<config>: " + message_of(manifest.error()));
  std::error_code ec;
  fs::create_directories(into, ec);
  if (ec)
    return io_error("cannot create " + display(into), ec);
  auto write = [&](const fs::path& path, const std::string& bytes) {
    std::ofstream out{path, std::ios::binary | std::ios::trunc};
    out << bytes;
    out.close();
    return out ? caf::error{}
               : io_error("cannot write " + display(path), errno);
  };
  if (auto err = write(into / "plugin.json", manifest->document.dump(2)))
    return err;
  return write(into / imjoy_entry_name, text);
}

} // namespace joy
