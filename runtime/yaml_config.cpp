// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/yaml_config.hpp"

#include <yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <regex>
#include <string>

#include "runtime/errc.hpp"

namespace joy {

namespace {

constexpr std::size_t max_depth = 64;
/// Aliases let a small file name a huge tree ("billion laughs").
constexpr std::size_t max_values = 1000000;

/// What the values of a config may add up to, aliases expanded.
constexpr std::size_t max_bytes = std::size_t{16} << 20;

/// A plain scalar as the YAML 1.2 core schema reads it.
json resolve_plain(const std::string& s) {
  // No number or keyword is this long; libstdc++'s regex recurses per
  // character and would overflow the stack on a huge one.
  if (s.size() > 64)
    return s;
  static const std::regex null_re{"^(null|Null|NULL|~|)$"};
  static const std::regex true_re{"^(true|True|TRUE)$"};
  static const std::regex false_re{"^(false|False|FALSE)$"};
  static const std::regex int_re{"^[-+]?[0-9]+$"};
  static const std::regex oct_re{"^0o[0-7]+$"};
  static const std::regex hex_re{"^0x[0-9a-fA-F]+$"};
  static const std::regex float_re{
    R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)"};
  static const std::regex inf_re{R"(^[-+]?\.(inf|Inf|INF)$)"};
  static const std::regex nan_re{R"(^\.(nan|NaN|NAN)$)"};
  if (std::regex_match(s, null_re))
    return nullptr;
  if (std::regex_match(s, true_re))
    return true;
  if (std::regex_match(s, false_re))
    return false;
  auto integer = [&](const char* digits, int base) -> json {
    errno = 0;
    char* end = nullptr;
    auto x = std::strtoll(digits, &end, base);
    if (errno == ERANGE)
      return std::strtod(s.c_str(), nullptr);
    return static_cast<int64_t>(x);
  };
  if (std::regex_match(s, int_re))
    return integer(s.c_str(), 10);
  if (std::regex_match(s, oct_re))
    return integer(s.c_str() + 2, 8);
  if (std::regex_match(s, hex_re))
    return integer(s.c_str() + 2, 16);
  if (std::regex_match(s, float_re))
    return std::strtod(s.c_str(), nullptr);
  if (std::regex_match(s, inf_re))
    return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  if (std::regex_match(s, nan_re))
    return std::numeric_limits<double>::quiet_NaN();
  return s;
}

struct converter {
  yaml_document_t* doc;
  std::size_t values = 0;
  std::size_t bytes = 0;

  caf::expected<json> convert(yaml_node_t* node, std::size_t depth) {
    if (node == nullptr)
      return json(nullptr);
    if (depth > max_depth)
      return make_error(errc::invalid_argument,
                        "YAML config: nested deeper than "
                          + std::to_string(max_depth) + " levels");
    if (++values > max_values)
      return make_error(errc::invalid_argument,
                        "YAML config: more than a million values (aliases "
                        "that expand without end?)");
    switch (node->type) {
      case YAML_SCALAR_NODE: {
        bytes += node->data.scalar.length;
        if (bytes > max_bytes)
          return make_error(errc::invalid_argument,
                            "YAML config: more than 16 MiB of values (aliases "
                            "that expand without end?)");
        std::string text{reinterpret_cast<const char*>(node->data.scalar.value),
                         node->data.scalar.length};
        if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
          return json(text);
        return resolve_plain(text);
      }
      case YAML_SEQUENCE_NODE: {
        auto out = json::array();
        for (auto* item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; ++item) {
          auto x = convert(yaml_document_get_node(doc, *item), depth + 1);
          if (!x)
            return x;
          out.push_back(std::move(*x));
        }
        return out;
      }
      case YAML_MAPPING_NODE: {
        auto out = json::object();
        for (auto* pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; ++pair) {
          auto* key = yaml_document_get_node(doc, pair->key);
          if (key == nullptr || key->type != YAML_SCALAR_NODE)
            return make_error(errc::invalid_argument,
                              "YAML config: keys must be plain text");
          std::string k{reinterpret_cast<const char*>(key->data.scalar.value),
                        key->data.scalar.length};
          auto x = convert(yaml_document_get_node(doc, pair->value), depth + 1);
          if (!x)
            return x;
          out[k] = std::move(*x);
        }
        return out;
      }
      default:
        return json(nullptr);
    }
  }
};

} // namespace

caf::expected<json> parse_yaml_config(std::string_view text) {
  yaml_parser_t parser;
  if (yaml_parser_initialize(&parser) == 0)
    return make_error(errc::internal, "cannot start the YAML parser");
  yaml_parser_set_input_string(
    &parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  yaml_document_t doc;
  if (yaml_parser_load(&parser, &doc) == 0) {
    auto why
      = std::string{parser.problem != nullptr ? parser.problem : "not YAML"}
        + " on line " + std::to_string(parser.problem_mark.line + 1);
    yaml_parser_delete(&parser);
    return make_error(errc::invalid_argument, "YAML config: " + why);
  }
  converter c{&doc};
  auto out = c.convert(yaml_document_get_root_node(&doc), 0);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return out;
}

} // namespace joy
