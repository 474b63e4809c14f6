// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/manifest.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "runtime/errc.hpp"

namespace joy {

namespace {

/// ImJoy's types; the node runs the first three, and refuses the browser's
/// own (web-worker, web-python) as unimplemented, not as unknown.
constexpr std::array<std::string_view, 5> plugin_types{
  "native", "native-python", "window", "web-worker", "web-python"};

constexpr std::array<std::string_view, 3> plugin_flags{
  "single-instance", "allow-detach", "engine-instance"};

constexpr std::size_t max_name_size = 64;
constexpr std::size_t max_version_size = 32;

/// Longest excerpt of a string value quoted in an error message.
constexpr std::size_t max_quoted_size = 64;

caf::error field_error(const std::string& field, const std::string& reason) {
  return make_error(errc::invalid_argument, field + ": " + reason);
}

/// Cuts `text` to at most `n` bytes without splitting a UTF-8 sequence.
std::string truncated(const std::string& text, std::size_t n) {
  if (text.size() <= n)
    return text;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;
  return text.substr(0, n) + "...";
}

/// Renders a JSON value for "got ..." in error messages.
std::string describe(const json& x) {
  switch (x.type()) {
    case json::value_t::string:
      return "'" + truncated(x.get_ref<const std::string&>(), max_quoted_size)
             + "'";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::binary:
      return "binary data";
    default:
      return x.dump();
  }
}

template <std::size_t N>
std::string join(const std::array<std::string_view, N>& xs) {
  std::string out;
  for (auto x : xs) {
    if (!out.empty())
      out += ", ";
    out += x;
  }
  return out;
}

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& xs, std::string_view x) {
  for (auto y : xs)
    if (y == x)
      return true;
  return false;
}

bool is_ascii_alnum(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
         || (c >= 'a' && c <= 'z');
}

caf::error require_string(const json& x, const std::string& field) {
  if (!x.is_string())
    return field_error(field, "must be a string, got " + describe(x));
  return {};
}

/// A list of strings; copied to `out` if given.
caf::error require_string_list(const json& x, const std::string& field,
                               std::vector<std::string>* out = nullptr) {
  if (!x.is_array())
    return field_error(field, "must be a list of strings, got " + describe(x));
  for (std::size_t i = 0; i < x.size(); ++i) {
    auto& item = x[i];
    if (!item.is_string())
      return field_error(field + "[" + std::to_string(i) + "]",
                         "must be a string, got " + describe(item));
    if (out)
      out->push_back(item.get<std::string>());
  }
  return {};
}

caf::error require_string_or_list(const json& x, const std::string& field) {
  if (x.is_string())
    return {};
  if (!x.is_array())
    return field_error(field, "must be a string or a list of strings, got "
                                + describe(x));
  return require_string_list(x, field);
}

caf::error check_name(const json& x, std::string& out) {
  if (auto err = require_string(x, "name"))
    return err;
  auto& name = x.get_ref<const std::string&>();
  if (name.empty() || name.size() > max_name_size)
    return field_error("name", "must be 1 to " + std::to_string(max_name_size)
                                 + " characters long, got "
                                 + std::to_string(name.size()));
  // The name becomes a directory name: no separators, no "." or "..".
  if (name == "." || name == ".." || name.find('/') != std::string::npos)
    return field_error("name", "must not be '.', '..' or contain '/', got "
                                 + describe(x));
  if (!is_ascii_alnum(name.front()))
    return field_error("name", "must start with a letter or a digit, got "
                                 + describe(x));
  for (char c : name)
    if (!is_ascii_alnum(c) && c != ' ' && c != '_' && c != '.' && c != '-')
      return field_error("name", "may contain only letters, digits, spaces, "
                                 "'_', '.' and '-', got "
                                   + describe(x));
  out = name;
  return {};
}

caf::error check_version(const json& x, std::string& out) {
  if (auto err = require_string(x, "version"))
    return err;
  auto& version = x.get_ref<const std::string&>();
  if (version.empty() || version.size() > max_version_size)
    return field_error(
      "version", "must be 1 to " + std::to_string(max_version_size)
                   + " characters long, got " + std::to_string(version.size()));
  // The version becomes a directory name too.
  if (version.front() == '.')
    return field_error("version", "must not start with '.'");
  for (char c : version)
    if (!is_ascii_alnum(c) && c != '.' && c != '+' && c != '_' && c != '-')
      return field_error("version", "may contain only letters, digits, "
                                    "'.', '+', '_' and '-', got "
                                      + describe(x));
  out = version;
  return {};
}

caf::error check_entry(const json& x, std::string& out) {
  if (auto err = require_string(x, "entry"))
    return err;
  auto& entry = x.get_ref<const std::string&>();
  if (entry.empty())
    return field_error("entry", "must not be empty");
  if (entry.find('\0') != std::string::npos)
    return field_error("entry", "must not contain NUL characters");
  if (entry.front() == '/')
    return field_error("entry", "must be a path relative to the plugin "
                                "folder, got "
                                  + describe(x));
  std::size_t begin = 0;
  for (;;) {
    auto end = entry.find('/', begin);
    auto part = std::string_view{entry}.substr(
      begin, end == std::string::npos ? std::string::npos : end - begin);
    if (part == "..")
      return field_error("entry", "must stay inside the plugin folder "
                                  "(no '..'), got "
                                    + describe(x));
    if (end == std::string::npos)
      break;
    begin = end + 1;
  }
  out = entry;
  return {};
}

/// parse_memory_size without the field name in the message.
caf::expected<uint64_t> memory_size(const json& x) {
  if (x.is_number_unsigned())
    return x.get<uint64_t>();
  if (x.is_number_integer()) {
    auto n = x.get<int64_t>();
    if (n < 0)
      return make_error(errc::invalid_argument,
                        "must not be negative, got " + describe(x));
    return static_cast<uint64_t>(n);
  }
  if (!x.is_string())
    return make_error(errc::invalid_argument,
                      "must be a whole number of bytes or a string such as "
                      "'512MiB', got "
                        + describe(x));
  auto& text = x.get_ref<const std::string&>();
  auto cannot_parse = [&] {
    return make_error(errc::invalid_argument,
                      "cannot parse " + describe(x)
                        + " as a size (examples: 1024, 100k, 512MiB, 2GB, "
                          "1.5 GiB)");
  };
  auto too_large = [&] {
    return make_error(errc::invalid_argument,
                      describe(x) + " does not fit in 64 bits");
  };
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  std::size_t i = 0;
  auto n = text.size();
  while (i < n && is_space(text[i]))
    ++i;
  if (i == n || !is_digit(text[i]))
    return cannot_parse();
  uint64_t whole = 0;
  bool overflow = false;
  for (; i < n && is_digit(text[i]); ++i) {
    auto digit = static_cast<uint64_t>(text[i] - '0');
    if (whole > (std::numeric_limits<uint64_t>::max() - digit) / 10)
      overflow = true;
    else
      whole = whole * 10 + digit;
  }
  // The fraction, to 18 digits; the result is rounded down anyway.
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
  if (i < n && text[i] == '.') {
    ++i;
    if (i == n || !is_digit(text[i]))
      return cannot_parse();
    for (; i < n && is_digit(text[i]); ++i) {
      if (fraction_scale < 1'000'000'000'000'000'000ULL) {
        fraction = fraction * 10 + static_cast<uint64_t>(text[i] - '0');
        fraction_scale *= 10;
      }
    }
  }
  while (i < n && is_space(text[i]))
    ++i;
  auto end = n;
  while (end > i && is_space(text[end - 1]))
    --end;
  auto unit = std::string_view{text}.substr(i, end - i);
  // [kKmMgGtT][i]?[bB]? or just [bB]?
  uint64_t multiplier = 1;
  if (!unit.empty() && unit.front() != 'b' && unit.front() != 'B') {
    int power = 0;
    switch (unit.front()) {
      case 'k':
      case 'K':
        power = 1;
        break;
      case 'm':
      case 'M':
        power = 2;
        break;
      case 'g':
      case 'G':
        power = 3;
        break;
      case 't':
      case 'T':
        power = 4;
        break;
      default:
        return cannot_parse();
    }
    unit.remove_prefix(1);
    uint64_t base = 1000;
    if (!unit.empty() && (unit.front() == 'i' || unit.front() == 'I')) {
      base = 1024;
      unit.remove_prefix(1);
    }
    for (int k = 0; k < power; ++k)
      multiplier *= base;
  }
  if (unit == "b" || unit == "B")
    unit.remove_prefix(1);
  if (!unit.empty())
    return cannot_parse();
  if (overflow)
    return too_large();
  using wide = unsigned __int128;
  auto result = static_cast<wide>(whole) * multiplier
                + static_cast<wide>(fraction) * multiplier / fraction_scale;
  if (result > std::numeric_limits<uint64_t>::max())
    return too_large();
  return static_cast<uint64_t>(result);
}

/// Strict: a sandbox field Joy does not know must not be silently ignored.
caf::error check_sandbox(const json& x, plugin_sandbox& out) {
  if (!x.is_object())
    return field_error("sandbox", "must be an object, got " + describe(x));
  for (auto i = x.begin(); i != x.end(); ++i) {
    auto field = "sandbox." + i.key();
    if (i.key() == "network") {
      if (!i.value().is_boolean())
        return field_error(field,
                           "must be true or false, got " + describe(i.value()));
      out.network = i.value().get<bool>();
    } else {
      return field_error(truncated(field, max_quoted_size), "unknown field");
    }
  }
  return caf::none;
}

caf::error check_resources(const json& x, plugin_resources& out) {
  if (!x.is_object())
    return field_error("resources", "must be an object, got " + describe(x));
  for (auto i = x.begin(); i != x.end(); ++i) {
    auto& key = i.key();
    auto& val = i.value();
    auto field = "resources." + key;
    if (key == "cpus") {
      if (!val.is_number() || !(val.get<double>() > 0)
          || !std::isfinite(val.get<double>()))
        return field_error(field, "must be a number > 0, got " + describe(val));
      out.cpus = val.get<double>();
    } else if (key == "memory") {
      auto bytes = memory_size(val);
      if (!bytes)
        return make_error(code_of(bytes.error()),
                          field + ": " + message_of(bytes.error()));
      out.memory_bytes = *bytes;
    } else if (key == "gpus") {
      bool ok = val.is_number_unsigned()
                || (val.is_number_integer() && val.get<int64_t>() >= 0);
      if (!ok)
        return field_error(field,
                           "must be an integer >= 0, got " + describe(val));
      auto n = val.get<uint64_t>();
      if (n > std::numeric_limits<uint32_t>::max())
        return field_error(
          field, "must be at most "
                   + std::to_string(std::numeric_limits<uint32_t>::max())
                   + ", got " + describe(val));
      out.gpus = static_cast<uint32_t>(n);
    } else if (key == "pids") {
      bool ok = val.is_number_integer() && val.get<int64_t>() >= 1
                && val.get<int64_t>() <= 1 << 22;
      if (!ok)
        return field_error(field, "must be an integer from 1 to 4194304, got "
                                    + describe(val));
      out.pids = static_cast<uint32_t>(val.get<int64_t>());
    } else if (key == "disk") {
      auto bytes = memory_size(val);
      if (!bytes)
        return make_error(code_of(bytes.error()),
                          field + ": " + message_of(bytes.error()));
      out.disk_bytes = *bytes;
    } else {
      return field_error(truncated(field, max_quoted_size), "unknown field");
    }
  }
  return {};
}

} // namespace

caf::expected<plugin_manifest> parse_manifest(std::string_view text) {
  auto doc = parse_json(text);
  if (!doc)
    return doc.error();
  return validate_manifest(*doc);
}

caf::expected<plugin_manifest> validate_manifest(const json& doc) {
  if (!doc.is_object())
    return make_error(errc::invalid_argument,
                      "manifest: must be a JSON object, got " + describe(doc));
  plugin_manifest result;
  auto field = [&](const char* key) -> const json* {
    auto i = doc.find(key);
    return i == doc.end() ? nullptr : &*i;
  };
  if (auto x = field("name")) {
    if (auto err = check_name(*x, result.name))
      return err;
  } else {
    return field_error("name", "is required");
  }
  if (auto x = field("type")) {
    if (!x->is_string()
        || !contains(plugin_types, x->get_ref<const std::string&>()))
      return field_error("type", "must be one of " + join(plugin_types)
                                   + ", got " + describe(*x));
    result.type = x->get<std::string>();
  } else {
    return field_error("type", "is required");
  }
  if (auto x = field("version"))
    if (auto err = check_version(*x, result.version))
      return err;
  if (auto x = field("api_version")) {
    if (auto err = require_string(*x, "api_version"))
      return err;
    result.api_version = x->get<std::string>();
  }
  if (auto x = field("description")) {
    if (auto err = require_string(*x, "description"))
      return err;
    result.description = x->get<std::string>();
  }
  if (auto x = field("ui"))
    if (auto err = require_string(*x, "ui"))
      return err;
  if (auto x = field("tags"))
    if (auto err = require_string_list(*x, "tags", &result.tags))
      return err;
  if (auto x = field("dependencies"))
    if (auto err = require_string_list(*x, "dependencies"))
      return err;
  if (auto x = field("flags")) {
    if (auto err = require_string_list(*x, "flags", &result.flags))
      return err;
    for (std::size_t i = 0; i < result.flags.size(); ++i)
      if (!contains(plugin_flags, result.flags[i]))
        return field_error("flags[" + std::to_string(i) + "]",
                           "must be one of " + join(plugin_flags) + ", got "
                             + describe((*x)[i]));
  }
  for (auto key : {"requirements", "env", "icon", "cover"})
    if (auto x = field(key))
      if (auto err = require_string_or_list(*x, key))
        return err;
  if (auto x = field("runnable"); x && !x->is_boolean())
    return field_error("runnable",
                       "must be true or false, got " + describe(*x));
  if (auto x = field("entry")) {
    if (auto err = check_entry(*x, result.entry))
      return err;
  } else if (result.type == "native") {
    return field_error("entry", "is required for native plugins");
  }
  if (auto x = field("resources"))
    if (auto err = check_resources(*x, result.resources))
      return err;
  if (auto x = field("sandbox"))
    if (auto err = check_sandbox(*x, result.sandbox))
      return err;
  result.document = doc;
  if (!doc.contains("version"))
    result.document["version"] = result.version;
  if (!doc.contains("api_version"))
    result.document["api_version"] = result.api_version;
  return result;
}

caf::expected<uint64_t> parse_memory_size(const json& x) {
  auto result = memory_size(x);
  if (!result)
    return make_error(code_of(result.error()),
                      "memory: " + message_of(result.error()));
  return result;
}

} // namespace joy
