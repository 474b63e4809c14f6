// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/python_host/plugin_script.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/errc.hpp"
#include "runtime/imjoy_file.hpp"

namespace fs = std::filesystem;

namespace joy::python {

namespace {

caf::expected<std::string> read_file(const fs::path& path, std::size_t limit) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(errc::not_found, "cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  auto text = out.str();
  if (text.size() > limit)
    return make_error(errc::too_large, path.string() + ": larger than "
                                         + std::to_string(limit) + " bytes");
  return text;
}

/// plugin.json next to the entry, or an empty object.
caf::expected<json> read_manifest(const fs::path& dir) {
  auto path = dir / "plugin.json";
  std::error_code ec;
  if (!fs::exists(path, ec))
    return json::object();
  auto text = read_file(path, max_imjoy_file_size);
  if (!text)
    return text.error();
  auto doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return make_error(errc::invalid_argument,
                      path.string() + ": not a JSON object");
  return doc;
}

caf::error read_requirements(plugin_script& out) {
  auto i = out.config.find("requirements");
  if (i != out.config.end() && !i->is_null()) {
    if (i->is_string()) {
      out.requirements.push_back(i->get<std::string>());
    } else if (i->is_array()) {
      for (auto& r : *i) {
        if (!r.is_string())
          return make_error(errc::invalid_argument,
                            "requirements: entries must be strings");
        out.requirements.push_back(r.get<std::string>());
      }
    } else {
      return make_error(errc::invalid_argument,
                        "requirements: a list of strings");
    }
  }
  auto env = out.config.find("env");
  if (env != out.config.end() && !env->is_null()
      && !(env->is_string() && env->get<std::string>().empty())
      && !(env->is_array() && env->empty()))
    return make_error(errc::invalid_argument,
                      "env: conda environments are not supported by Joy; "
                      "list pip packages under requirements instead");
  return caf::none;
}

} // namespace

caf::expected<plugin_script> load_plugin_script(const std::string& path) {
  fs::path entry{path};
  auto manifest = read_manifest(entry.parent_path());
  if (!manifest)
    return manifest.error();
  auto text = read_file(entry, max_imjoy_file_size);
  if (!text)
    return text.error();
  plugin_script out;
  out.file = entry.string();
  if (is_imjoy_file_name(path)) {
    std::string tag;
    if (auto t = manifest->find("tag"); t != manifest->end() && t->is_string())
      tag = t->get<std::string>();
    auto file = parse_imjoy_file(*text, tag);
    if (!file)
      return make_error(code_of(file.error()), entry.filename().string() + ": "
                                                 + message_of(file.error()));
    if (file->script.empty())
      return make_error(errc::invalid_argument,
                        entry.filename().string() + ": has no <script>");
    if (file->script_lang != "python")
      return make_error(errc::invalid_argument,
                        entry.filename().string()
                          + ": its <script> is not lang=\"python\" (it is "
                          + file->script_lang + ")");
    // Tracebacks give lines of the file: the script starts where it is.
    auto at = text->find(file->script);
    auto lines = at == std::string::npos
                   ? 0
                   : std::count(text->begin(), text->begin() + at, '\n');
    out.source
      = std::string(static_cast<std::size_t>(lines), '\n') + file->script;
    out.config = std::move(file->config);
    out.attachments = std::move(file->attachments);
    out.docs = std::move(file->docs);
  } else {
    out.source = std::move(*text);
    out.config = std::move(*manifest);
  }
  if (auto n = out.config.find("name"); n != out.config.end() && n->is_string())
    out.name = n->get<std::string>();
  if (auto err = read_requirements(out))
    return err;
  return out;
}

} // namespace joy::python
