// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/imjoy_file.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "runtime/errc.hpp"
#include "runtime/yaml_config.hpp"

namespace joy {

namespace {

constexpr std::array<std::string_view, 6> kinds{
  {"config", "script", "window", "style", "docs", "attachment"}};

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/// True if `text` at `pos` starts with `word`, ignoring case.
bool starts_with_ci(std::string_view text, std::size_t pos,
                    std::string_view word) {
  if (pos + word.size() > text.size())
    return false;
  for (std::size_t k = 0; k < word.size(); ++k)
    if (lower(text[pos + k]) != lower(word[k]))
      return false;
  return true;
}

std::size_t line_of(std::string_view text, std::size_t pos) {
  return 1
         + static_cast<std::size_t>(
           std::count(text.begin(), text.begin() + pos, '\n'));
}

/// Parses the attributes of an opening tag from `pos` up to its `>`;
/// returns the position after it, or npos if the tag never closes.
std::size_t parse_attrs(std::string_view text, std::size_t pos,
                        std::map<std::string, std::string>& attrs) {
  while (pos < text.size()) {
    while (pos < text.size() && is_space(text[pos]))
      ++pos;
    if (pos >= text.size())
      break;
    if (text[pos] == '>')
      return pos + 1;
    if (text[pos] == '/') {
      ++pos;
      continue;
    }
    auto start = pos;
    while (pos < text.size() && !is_space(text[pos]) && text[pos] != '='
           && text[pos] != '>' && text[pos] != '/')
      ++pos;
    std::string key;
    for (auto k = start; k < pos; ++k)
      key += lower(text[k]);
    while (pos < text.size() && is_space(text[pos]))
      ++pos;
    std::string val;
    if (pos < text.size() && text[pos] == '=') {
      ++pos;
      while (pos < text.size() && is_space(text[pos]))
        ++pos;
      if (pos < text.size() && (text[pos] == '"' || text[pos] == '\'')) {
        auto quote = text[pos++];
        auto end = text.find(quote, pos);
        if (end == std::string_view::npos)
          return std::string_view::npos;
        val = std::string{text.substr(pos, end - pos)};
        pos = end + 1;
      } else {
        auto v = pos;
        while (pos < text.size() && !is_space(text[pos]) && text[pos] != '>')
          ++pos;
        val = std::string{text.substr(v, pos - v)};
      }
    }
    if (!key.empty())
      attrs[key] = std::move(val);
  }
  return std::string_view::npos;
}

/// The position of `</kind>` (any case, spaces before `>` allowed) at or
/// after `pos`, and the position after it.
std::pair<std::size_t, std::size_t>
find_close(std::string_view text, std::size_t pos, std::string_view kind) {
  for (;;) {
    auto at = text.find("</", pos);
    if (at == std::string_view::npos)
      return {at, at};
    auto after = at + 2;
    if (starts_with_ci(text, after, kind)) {
      auto k = after + kind.size();
      while (k < text.size() && is_space(text[k]))
        ++k;
      if (k < text.size() && text[k] == '>')
        return {at, k + 1};
    }
    pos = at + 2;
  }
}

/// Picks the variant `tag` of a config field: an object whose keys are all
/// tags of the file stands for one value per variant.
void pick_variant(json& config, const std::vector<std::string>& tags,
                  const std::string& tag) {
  if (tags.empty())
    return;
  for (auto& [key, val] : config.items()) {
    if (key == "tags" || !val.is_object() || val.empty())
      continue;
    bool per_tag = true;
    for (auto& [k, v] : val.items())
      if (std::find(tags.begin(), tags.end(), k) == tags.end())
        per_tag = false;
    if (!per_tag)
      continue;
    if (val.contains(tag)) {
      json picked = val[tag];
      val = std::move(picked);
    } else {
      val = nullptr;
    }
  }
}

} // namespace

std::string imjoy_block::attr(const std::string& key,
                              std::string fallback) const {
  auto i = attrs.find(key);
  return i != attrs.end() ? i->second : fallback;
}

bool is_imjoy_file_name(std::string_view path) noexcept {
  constexpr std::string_view suffix = ".imjoy.html";
  auto end = path.find_first_of("?#");
  if (end != std::string_view::npos)
    path = path.substr(0, end);
  return path.size() > suffix.size()
         && starts_with_ci(path, path.size() - suffix.size(), suffix);
}

caf::expected<std::vector<imjoy_block>>
parse_imjoy_blocks(std::string_view text) {
  std::vector<imjoy_block> out;
  std::size_t pos = 0;
  while ((pos = text.find('<', pos)) != std::string_view::npos) {
    if (starts_with_ci(text, pos, "<!--")) {
      auto end = text.find("-->", pos + 4);
      if (end == std::string_view::npos)
        return make_error(errc::invalid_argument,
                          "a comment opened on line "
                            + std::to_string(line_of(text, pos))
                            + " is never closed");
      pos = end + 3;
      continue;
    }
    std::string_view kind;
    for (auto k : kinds) {
      auto after = pos + 1 + k.size();
      if (starts_with_ci(text, pos + 1, k) && after < text.size()
          && (is_space(text[after]) || text[after] == '>'
              || text[after] == '/')) {
        kind = k;
        break;
      }
    }
    if (kind.empty()) {
      ++pos;
      continue;
    }
    imjoy_block block;
    block.kind = std::string{kind};
    auto body = parse_attrs(text, pos + 1 + kind.size(), block.attrs);
    if (body == std::string_view::npos)
      return make_error(errc::invalid_argument,
                        "the <" + block.kind + "> tag on line "
                          + std::to_string(line_of(text, pos))
                          + " is never closed");
    auto [close, after] = find_close(text, body, kind);
    if (close == std::string_view::npos)
      return make_error(errc::invalid_argument,
                        "<" + block.kind + "> on line "
                          + std::to_string(line_of(text, pos)) + " has no </"
                          + block.kind + ">");
    block.content = std::string{text.substr(body, close - body)};
    out.push_back(std::move(block));
    pos = after;
  }
  return out;
}

caf::expected<imjoy_file> parse_imjoy_file(std::string_view text,
                                           const std::string& tag) {
  if (text.size() > max_imjoy_file_size)
    return make_error(errc::too_large, "an ImJoy plugin file may have at most "
                                         + std::to_string(max_imjoy_file_size)
                                         + " bytes, got "
                                         + std::to_string(text.size()));
  auto blocks = parse_imjoy_blocks(text);
  if (!blocks)
    return blocks.error();
  const imjoy_block* config_block = nullptr;
  for (auto& b : *blocks)
    if (b.kind == "config") {
      if (config_block != nullptr)
        return make_error(errc::invalid_argument,
                          "the file has more than one <config>");
      config_block = &b;
    }
  if (config_block == nullptr)
    return make_error(errc::invalid_argument,
                      "the file has no <config> block: it is not an ImJoy "
                      "plugin");
  auto lang = config_block->attr("lang", "json");
  std::transform(lang.begin(), lang.end(), lang.begin(), lower);
  if (lang != "json" && lang != "yaml" && lang != "yml")
    return make_error(errc::invalid_argument,
                      "<config lang=\"" + lang + "\">: must be json or yaml");
  auto doc = lang == "json" ? parse_json(config_block->content)
                            : parse_yaml_config(config_block->content);
  if (!doc)
    return make_error(errc::invalid_argument,
                      "<config>: " + message_of(doc.error()));
  if (!doc->is_object())
    return make_error(errc::invalid_argument,
                      "<config>: must be a JSON object");
  imjoy_file out;
  out.config = std::move(*doc);
  std::vector<std::string> tags;
  if (auto i = out.config.find("tags"); i != out.config.end()) {
    if (!i->is_array())
      return make_error(errc::invalid_argument,
                        "<config>: tags must be a list of strings");
    for (auto& t : *i) {
      if (!t.is_string())
        return make_error(errc::invalid_argument,
                          "<config>: tags must be a list of strings");
      tags.push_back(t.get<std::string>());
    }
  }
  out.tag = tag;
  if (out.tag.empty() && !tags.empty())
    out.tag = tags.front();
  if (!out.tag.empty()
      && std::find(tags.begin(), tags.end(), out.tag) == tags.end())
    return make_error(errc::invalid_argument,
                      "the file has no variant '" + out.tag + "'"
                        + (tags.empty() ? std::string{" (it lists no tags)"}
                                        : std::string{" (tags: "}
                                            + out.config["tags"].dump() + ")"));
  pick_variant(out.config, tags, out.tag);
  bool have_script = false;
  for (auto& b : *blocks) {
    // A block without a tag belongs to every variant.
    auto btag = b.attr("tag");
    if (!btag.empty() && btag != out.tag)
      continue;
    if (b.kind == "script") {
      if (have_script)
        return make_error(
          errc::invalid_argument,
          "the file has two <script> blocks for "
            + (out.tag.empty() ? std::string{"it"} : "tag '" + out.tag + "'")
            + "; give each a tag");
      have_script = true;
      out.script = b.content;
      out.script_lang = b.attr("lang", "javascript");
    } else if (b.kind == "window") {
      out.window += b.content;
    } else if (b.kind == "style") {
      out.style += b.content;
    } else if (b.kind == "docs") {
      out.docs += b.content;
    } else if (b.kind == "attachment") {
      out.attachments[b.attr("name")] = b.content;
    }
  }
  return out;
}

} // namespace joy
