// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/node/plugin_source.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/node/installer.hpp"
#include "runtime/errc.hpp"
#include "runtime/imjoy_file.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace joy {

namespace {

constexpr const char* forms
  = "expected an absolute folder or .imjoy.html path, an http(s) URL of a "
    ".tar.gz or an .imjoy.html, or a "
    "manifest reference user/repo[@ref]:Name[@tag]";

/// Manifests are small; anything larger is not one.
constexpr uint64_t max_manifest_bytes = uint64_t{4} << 20;

bool is_url(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

std::string read_small_file(const fs::path& p) {
  std::ifstream in{p};
  std::ostringstream out;
  out << in.rdbuf();
  auto text = out.str();
  if (text.size() > 2000)
    text = "..." + text.substr(text.size() - 2000);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

} // namespace

caf::expected<plugin_source> parse_plugin_source(const std::string& text) {
  plugin_source out;
  out.text = text;
  out.where = text;
  // ImJoy's `<file>.imjoy.html@TAG`.
  auto split_tag = [&out] {
    static const std::regex tagged{R"(^(.*\.imjoy\.html)@([^@/\s]+)$)"};
    std::smatch m;
    if (std::regex_match(out.text, m, tagged)) {
      out.where = m[1];
      out.tag = m[2];
    }
  };
  if (!text.empty() && text[0] == '/') {
    out.kind = plugin_source::folder;
    split_tag();
    return out;
  }
  if (is_url(text)) {
    out.kind = plugin_source::archive_url;
    split_tag();
    return out;
  }
  // user and repo as GitHub allows them; the plugin name may hold spaces
  // (ImJoy's "Image Viewer"); the tag is whatever follows its last '@'.
  static const std::regex ref{
    R"(^([A-Za-z0-9][A-Za-z0-9_.-]*)/([A-Za-z0-9_.-]+)(?:@([^:/\s]+))?:([^@]+)(?:@([^@\s]+))?$)"};
  std::smatch m;
  if (!std::regex_match(text, m, ref))
    return make_error(errc::invalid_argument,
                      "cannot install '" + text + "': " + forms);
  out.kind = plugin_source::manifest_ref;
  out.user = m[1];
  out.repo = m[2];
  out.name = m[4];
  std::string repo_ref = m[3];
  out.ref = !repo_ref.empty() ? repo_ref : "HEAD";
  out.tag = m[5];
  return out;
}

std::string manifest_url(const plugin_source& src, const std::string& base) {
  auto root = base;
  while (!root.empty() && root.back() == '/')
    root.pop_back();
  return root + "/" + src.user + "/" + src.repo + "/" + src.ref
         + "/manifest.imjoy.json";
}

caf::expected<std::string> pick_from_manifest(const std::string& manifest_text,
                                              const std::string& url,
                                              const std::string& name) {
  auto doc = nlohmann::json::parse(manifest_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("plugins")
      || !doc["plugins"].is_array())
    return make_error(errc::invalid_argument,
                      url + " is not an ImJoy manifest (no \"plugins\" list)");
  std::string known;
  for (auto& entry : doc["plugins"]) {
    if (!entry.is_object() || !entry.contains("name")
        || !entry["name"].is_string())
      continue;
    auto entry_name = entry["name"].get<std::string>();
    if (entry_name != name) {
      known += (known.empty() ? "" : ", ") + entry_name;
      continue;
    }
    if (!entry.contains("uri") || !entry["uri"].is_string()
        || entry["uri"].get<std::string>().empty())
      return make_error(errc::invalid_argument,
                        "plugin '" + name + "' in " + url + " has no \"uri\"");
    auto uri = entry["uri"].get<std::string>();
    auto base = url;
    if (doc.contains("uri_root") && doc["uri_root"].is_string()
        && !doc["uri_root"].get<std::string>().empty()) {
      base = resolve_url(url, doc["uri_root"].get<std::string>());
      if (base.back() != '/')
        base += '/';
    }
    return resolve_url(base, uri);
  }
  return make_error(errc::not_found,
                    url + " lists no plugin named '" + name + "'"
                      + (known.empty() ? std::string{" (it lists none)"}
                                       : " (it lists: " + known + ")"));
}

namespace {

/// Runs GNU tar with `args`; its output (errors) goes to `err_file`, and
/// comes back as the error's text.
caf::expected<int> run_tar(std::vector<std::string> args,
                           const fs::path& err_file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, err_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  args.insert(args.begin(), "tar");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  auto rc
    = ::posix_spawnp(&pid, "tar", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return make_error(errc::io_error,
                      std::string{"cannot run tar: "} + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto output = read_small_file(err_file);
  std::error_code ignored;
  fs::remove(err_file, ignored);
  // An error is one line: tar's (and gzip's) lines joined.
  for (std::size_t at = 0; (at = output.find('\n', at)) != std::string::npos;)
    output.replace(at, 1, "; ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(errc::io_error,
                      output.empty() ? std::string{"tar failed"} : output);
  return 0;
}

} // namespace

caf::error pack_plugin_folder(const fs::path& folder, const fs::path& archive) {
  // Owners and modes as a plain user would see them; the receiver
  // restores neither anyway.
  auto done = run_tar({"--create", "--gzip", "--owner=0", "--group=0",
                       "--numeric-owner", "--file", archive.string(),
                       "--directory", folder.string(), "."},
                      archive.string() + ".tar-err");
  if (!done)
    return make_error(code_of(done.error()), "cannot pack " + folder.string()
                                               + ": "
                                               + message_of(done.error()));
  return caf::none;
}

caf::expected<fs::path> unpack_plugin_archive(const fs::path& archive,
                                              const fs::path& into) {
  auto err_file = into.parent_path() / (into.filename().string() + ".tar-err");
  // --no-same-owner and --no-same-permissions: a downloaded archive chooses
  // neither who owns its files nor setuid bits, even when joyd runs as root.
  // GNU tar already refuses members with ".." or absolute names.
  auto done = run_tar({"--extract", "--gzip", "--no-same-owner",
                       "--no-same-permissions", "--file", archive.string(),
                       "--directory", into.string()},
                      err_file);
  if (!done)
    return make_error(errc::invalid_argument,
                      "cannot unpack the download (a gzipped tarball is "
                      "expected): "
                        + message_of(done.error()));
  if (fs::exists(into / "plugin.json"))
    return into;
  std::vector<fs::path> entries;
  for (auto& e : fs::directory_iterator{into})
    entries.push_back(e.path());
  if (entries.size() == 1 && fs::is_directory(fs::symlink_status(entries[0]))
      && fs::exists(entries[0] / "plugin.json"))
    return entries[0];
  return make_error(errc::invalid_argument,
                    "the archive holds no plugin.json, neither at its top nor "
                    "in its one top-level folder");
}

caf::expected<fs::path> materialize(const plugin_source& src,
                                    const fs::path& scratch,
                                    const remote_config& cfg) {
  // An ImJoy file becomes a plugin folder in the scratch space.
  auto from_imjoy_text
    = [&](caf::expected<std::string> text,
          const std::string& where) -> caf::expected<fs::path> {
    if (!text)
      return std::move(text.error());
    auto folder = scratch / "plugin";
    if (auto err = imjoy_file_to_folder(*text, folder, src.tag))
      return make_error(code_of(err), where + ": " + message_of(err));
    return folder;
  };
  auto untagged = [&](const std::string& what) {
    return make_error(errc::invalid_argument,
                      "only ImJoy files (.imjoy.html) have tags to pick, and "
                        + what + " is not one");
  };
  if (src.kind == plugin_source::folder) {
    if (!is_imjoy_file_name(src.where)) {
      if (!src.tag.empty())
        return untagged(src.where);
      return fs::path{src.where};
    }
    std::ifstream in{src.where, std::ios::binary};
    if (!in)
      return make_error(errc::not_found, "cannot read " + src.where);
    std::string text;
    text.resize(max_imjoy_file_size + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad())
      return make_error(errc::io_error, "cannot read " + src.where);
    return from_imjoy_text(std::move(text), src.where);
  }
  auto archive_url = src.where;
  if (src.kind == plugin_source::manifest_ref) {
    auto url = manifest_url(src, cfg.manifest_base);
    auto limits = cfg.limits;
    limits.max_bytes = std::min(limits.max_bytes, max_manifest_bytes);
    auto text = fetch_text(url, limits);
    if (!text)
      return std::move(text.error());
    auto picked = pick_from_manifest(*text, url, src.name);
    if (!picked)
      return std::move(picked.error());
    archive_url = std::move(*picked);
  }
  if (is_imjoy_file_name(archive_url)) {
    auto limits = cfg.limits;
    limits.max_bytes
      = std::min<uint64_t>(limits.max_bytes, max_imjoy_file_size);
    return from_imjoy_text(fetch_text(archive_url, limits), archive_url);
  }
  if (!src.tag.empty()) {
    auto err = untagged(archive_url);
    if (src.kind != plugin_source::manifest_ref)
      return err;
    // `user/repo:Name@v1` meant the git ref v1 before Joy read @ as ImJoy
    // does.
    return make_error(errc::invalid_argument,
                      message_of(err) + "; for the git ref '" + src.tag
                        + "', write " + src.user + "/" + src.repo + "@"
                        + src.tag + ":" + src.name);
  }
  auto archive = scratch / "plugin.tar.gz";
  if (auto err = fetch_to_file(archive_url, archive, cfg.limits))
    return err;
  auto unpacked = scratch / "plugin";
  std::error_code ec;
  fs::create_directory(unpacked, ec);
  if (ec)
    return make_error(errc::io_error, "cannot create " + unpacked.string()
                                        + ": " + ec.message());
  auto folder = unpack_plugin_archive(archive, unpacked);
  if (!folder)
    return make_error(code_of(folder.error()),
                      archive_url + ": " + message_of(folder.error()));
  return folder;
}

} // namespace joy
