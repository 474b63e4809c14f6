// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/value_json.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_set>
#include <vector>

#include <kj/encoding.h>

namespace joy {

namespace {

// -- helpers ------------------------------------------------------------------

std::string base64(const buffer& data) {
  auto text = kj::encodeBase64(
    kj::arrayPtr(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
  return std::string{text.cStr(), text.size()};
}

caf::error not_readable(const buffer& b, const std::string& path) {
  return make_error(errc::too_large,
                    std::to_string(b.size()) + " bytes of binary data at "
                      + path
                      + " stayed in a plugin's shared memory or stream; "
                        "JSON carries only bytes in this process");
}

caf::expected<buffer> unbase64(const json& doc, std::string_view what) {
  if (!doc.is_string())
    return make_error(errc::invalid_argument,
                      std::string{what} + ": _rvalue must be a base64 string");
  auto& text = doc.get_ref<const std::string&>();
  auto bytes = kj::decodeBase64(kj::arrayPtr(text.data(), text.size()));
  if (bytes.hadErrors)
    return make_error(errc::invalid_argument,
                      std::string{what} + ": _rvalue is not valid base64");
  return buffer::copy_of(bytes.begin(), bytes.size());
}

bool has_reserved_key(const value_map& m) {
  for (auto& [k, v] : m)
    if (k.size() >= 2 && k[0] == '_' && k[1] == 'r')
      return true;
  return false;
}

std::string path_join(const std::string& path, std::string_view key) {
  return path + "." + std::string{key};
}

// -- writing ------------------------------------------------------------------

class writer {
public:
  caf::expected<json> write(const value& x) {
    json out;
    if (auto err = write(x, out, 0, "$"))
      return err;
    return out;
  }

private:
  caf::error write(const value& x, json& out, std::size_t level,
                   const std::string& path) {
    switch (x.type()) {
      case value::kind::null:
        out = nullptr;
        return caf::none;
      case value::kind::boolean:
        out = *x.as_bool();
        return caf::none;
      case value::kind::int64:
        out = *x.as_int64();
        return caf::none;
      case value::kind::uint64:
        out = *x.as_uint64();
        return caf::none;
      case value::kind::float64: {
        auto f = *x.as_float64();
        if (std::isfinite(f)) {
          out = f;
        } else {
          out = json::object();
          out["_rtype"] = "float";
          out["_rvalue"] = std::isnan(f) ? "nan" : (f > 0 ? "inf" : "-inf");
        }
        return caf::none;
      }
      case value::kind::string: {
        auto& s = *x.as_string();
        if (!is_valid_utf8(s))
          return make_error(errc::invalid_argument,
                            "string at " + path
                              + " is not valid UTF-8; send binary data as "
                                "bytes");
        out = s;
        return caf::none;
      }
      case value::kind::bytes:
        if (!x.as_bytes()->readable())
          return not_readable(*x.as_bytes(), path);
        out = json::object();
        out["_rtype"] = "memoryview";
        out["_rvalue"] = base64(*x.as_bytes());
        return caf::none;
      case value::kind::list: {
        if (level >= max_value_depth)
          return too_deep(path);
        out = json::array();
        auto& xs = *x.as_list();
        for (std::size_t i = 0; i < xs.size(); ++i) {
          json item;
          if (auto err = write(xs[i], item, level + 1,
                               path + "[" + std::to_string(i) + "]"))
            return err;
          out.push_back(std::move(item));
        }
        return caf::none;
      }
      case value::kind::map: {
        if (level >= max_value_depth)
          return too_deep(path);
        auto& m = *x.as_map();
        json obj = json::object();
        for (auto& [k, v] : m) {
          if (!is_valid_utf8(k))
            return make_error(errc::invalid_argument,
                              "a key at " + path + " is not valid UTF-8");
          json item;
          if (auto err = write(v, item, level + 1, path_join(path, k)))
            return err;
          obj[k] = std::move(item);
        }
        if (has_reserved_key(m)) {
          out = json::object();
          out["_rtype"] = "map";
          out["_rvalue"] = std::move(obj);
        } else {
          out = std::move(obj);
        }
        return caf::none;
      }
      case value::kind::ndarray: {
        auto& a = *x.as_ndarray();
        if (auto err = a.validate())
          return make_error(code_of(err), message_of(err) + " at " + path);
        out = json::object();
        out["_rtype"] = a.typed_array ? "typedarray" : "ndarray";
        out["_rdtype"] = std::string{to_string(a.type)};
        if (!a.typed_array)
          out["_rshape"] = a.shape;
        if (!a.data.readable())
          return not_readable(a.data, path);
        out["_rvalue"] = base64(a.data);
        return caf::none;
      }
      case value::kind::timestamp:
        out = json::object();
        out["_rtype"] = "timestamp";
        out["_rvalue"] = format_iso8601(*x.as_timestamp());
        return caf::none;
      case value::kind::function:
        out = json::object();
        out["_rtype"] = "method";
        // Like error messages: a binary name must not make dump() throw.
        out["_rname"] = is_valid_utf8(x.as_function()->name)
                          ? x.as_function()->name
                          : "<binary>";
        return caf::none;
      case value::kind::error: {
        auto& e = *x.as_error();
        out = json::object();
        out["_rtype"] = "error";
        out["_rcode"] = std::string{to_string(e.code)};
        out["_rvalue"] = is_valid_utf8(e.message) ? e.message : "<binary>";
        if (!e.trace.empty() && is_valid_utf8(e.trace))
          out["_rtrace"] = e.trace;
        return caf::none;
      }
    }
    return make_error(errc::internal, "unknown value kind");
  }

  static caf::error too_deep(const std::string& path) {
    return make_error(errc::too_large, "value nesting exceeds "
                                         + std::to_string(max_value_depth)
                                         + " levels at " + path);
  }
};

// -- reading ------------------------------------------------------------------

class reader {
public:
  caf::expected<value> read(const json& doc) {
    return read(doc, 0, "$");
  }

private:
  caf::expected<value> read(const json& doc, std::size_t level,
                            const std::string& path) {
    switch (doc.type()) {
      case json::value_t::null:
        return value{};
      case json::value_t::boolean:
        return value{doc.get<bool>()};
      case json::value_t::number_integer:
        return value{doc.get<int64_t>()};
      case json::value_t::number_unsigned: {
        auto u = doc.get<uint64_t>();
        if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          return value{static_cast<int64_t>(u)};
        return value{u};
      }
      case json::value_t::number_float:
        return value{doc.get<double>()};
      case json::value_t::string:
        return value{doc.get<std::string>()};
      case json::value_t::array: {
        if (level >= max_value_depth)
          return too_deep(path);
        value_list xs;
        xs.reserve(doc.size());
        std::size_t i = 0;
        for (auto& item : doc) {
          auto x
            = read(item, level + 1, path + "[" + std::to_string(i++) + "]");
          if (!x)
            return x;
          xs.push_back(std::move(*x));
        }
        return value{std::move(xs)};
      }
      case json::value_t::object:
        return read_object(doc, level, path);
      case json::value_t::binary:
      case json::value_t::discarded:
        break;
    }
    return make_error(errc::invalid_argument, "unsupported JSON at " + path);
  }

  caf::expected<value> read_plain_map(const json& doc, std::size_t level,
                                      const std::string& path) {
    if (level >= max_value_depth)
      return too_deep(path);
    value_map m;
    m.reserve(doc.size());
    for (auto& [k, v] : doc.items()) {
      auto x = read(v, level + 1, path_join(path, k));
      if (!x)
        return x;
      m.append_unchecked(k, std::move(*x));
    }
    return value{std::move(m)};
  }

  caf::expected<value> read_object(const json& doc, std::size_t level,
                                   const std::string& path) {
    auto rtype = doc.find("_rtype");
    if (rtype == doc.end()) {
      for (auto& [k, v] : doc.items())
        if (k.size() >= 2 && k[0] == '_' && k[1] == 'r')
          return make_error(errc::invalid_argument,
                            "key '" + k + "' at " + path
                              + " is reserved: a map with keys starting with "
                                "_r must be wrapped as "
                                "{\"_rtype\":\"map\",\"_rvalue\":{...}}");
      return read_plain_map(doc, level, path);
    }
    if (!rtype->is_string())
      return make_error(errc::invalid_argument,
                        "_rtype at " + path + " must be a string");
    auto& kind = rtype->get_ref<const std::string&>();
    auto where = "_rtype '" + kind + "' at " + path;
    auto expect_keys = [&](std::initializer_list<std::string_view> required,
                           std::initializer_list<std::string_view> optional
                           = {}) -> caf::error {
      for (auto key : required)
        if (doc.find(std::string{key}) == doc.end())
          return make_error(errc::invalid_argument,
                            where + " lacks " + std::string{key});
      for (auto& [k, v] : doc.items()) {
        bool known = k == "_rtype";
        for (auto key : required)
          known = known || k == key;
        for (auto key : optional)
          known = known || k == key;
        if (!known)
          return make_error(errc::invalid_argument,
                            where + " has unexpected key '" + k + "'");
      }
      return caf::none;
    };
    if (kind == "map") {
      if (auto err = expect_keys({"_rvalue"}))
        return err;
      auto& inner = doc["_rvalue"];
      if (!inner.is_object())
        return make_error(errc::invalid_argument,
                          where + ": _rvalue must be an object");
      return read_plain_map(inner, level, path);
    }
    if (kind == "float") {
      if (auto err = expect_keys({"_rvalue"}))
        return err;
      auto& v = doc["_rvalue"];
      if (v == "nan")
        return value{std::numeric_limits<double>::quiet_NaN()};
      if (v == "inf")
        return value{std::numeric_limits<double>::infinity()};
      if (v == "-inf")
        return value{-std::numeric_limits<double>::infinity()};
      return make_error(errc::invalid_argument,
                        where
                          + ": _rvalue must be \"nan\", \"inf\" or \"-inf\"");
    }
    if (kind == "memoryview") {
      if (auto err = expect_keys({"_rvalue"}))
        return err;
      auto bytes = unbase64(doc["_rvalue"], where);
      if (!bytes)
        return bytes.error();
      return value{std::move(*bytes)};
    }
    if (kind == "ndarray" || kind == "typedarray") {
      bool typed = kind == "typedarray";
      if (auto err = typed ? expect_keys({"_rdtype", "_rvalue"})
                           : expect_keys({"_rdtype", "_rshape", "_rvalue"}))
        return err;
      auto& dt = doc["_rdtype"];
      auto type = dt.is_string() ? dtype_from_string(dt.get<std::string>())
                                 : std::nullopt;
      if (!type)
        return make_error(errc::invalid_argument,
                          where + ": unknown _rdtype " + dt.dump());
      auto bytes = unbase64(doc["_rvalue"], where);
      if (!bytes)
        return bytes.error();
      ndarray a;
      a.type = *type;
      a.typed_array = typed;
      a.data = std::move(*bytes);
      if (typed) {
        a.shape = {a.data.size() / itemsize(a.type)};
      } else {
        auto& shape = doc["_rshape"];
        if (!shape.is_array())
          return make_error(errc::invalid_argument,
                            where + ": _rshape must be a list of integers");
        for (auto& dim : shape) {
          if (!dim.is_number_unsigned()
              && !(dim.is_number_integer() && dim.get<int64_t>() >= 0))
            return make_error(errc::invalid_argument,
                              where
                                + ": _rshape must be a list of integers >= 0");
          a.shape.push_back(dim.get<uint64_t>());
        }
      }
      if (auto err = a.validate())
        return make_error(code_of(err), where + ": " + message_of(err));
      return value{std::move(a)};
    }
    if (kind == "timestamp") {
      if (auto err = expect_keys({"_rvalue"}))
        return err;
      auto& v = doc["_rvalue"];
      if (!v.is_string())
        return make_error(errc::invalid_argument,
                          where + ": _rvalue must be an ISO 8601 string");
      auto t = parse_iso8601(v.get_ref<const std::string&>());
      if (!t)
        return make_error(errc::invalid_argument,
                          where + ": " + message_of(t.error()));
      return value{*t};
    }
    if (kind == "error") {
      if (auto err = expect_keys({"_rcode", "_rvalue"}, {"_rtrace"}))
        return err;
      auto& code = doc["_rcode"];
      auto c = code.is_string() ? errc_from_string(code.get<std::string>())
                                : std::nullopt;
      if (!c)
        return make_error(errc::invalid_argument,
                          where + ": unknown _rcode " + code.dump());
      auto& msg = doc["_rvalue"];
      if (!msg.is_string())
        return make_error(errc::invalid_argument,
                          where + ": _rvalue must be a string");
      error_value e{*c, msg.get<std::string>(), {}};
      if (auto i = doc.find("_rtrace"); i != doc.end()) {
        if (!i->is_string())
          return make_error(errc::invalid_argument,
                            where + ": _rtrace must be a string");
        e.trace = i->get<std::string>();
      }
      return value{std::move(e)};
    }
    if (kind == "method")
      return make_error(errc::invalid_argument,
                        "a function (" + where
                          + ") cannot be read from JSON; functions travel "
                            "only between live plugins");
    return make_error(errc::invalid_argument, "unknown " + where);
  }

  static caf::error too_deep(const std::string& path) {
    return make_error(errc::too_large, "value nesting exceeds "
                                         + std::to_string(max_value_depth)
                                         + " levels at " + path);
  }
};

// -- parsing ------------------------------------------------------------------

/// Builds the document like nlohmann's own DOM parser, plus a nesting cap and
/// a refusal of integer literals that do not fit 64 bits (nlohmann would turn
/// them into floats silently).
class checked_sax : public nlohmann::detail::json_sax_dom_parser<json> {
public:
  using base = nlohmann::detail::json_sax_dom_parser<json>;

  checked_sax(json& root, std::size_t max_depth)
    : base(root, false), max_depth_(max_depth) {
    // nop
  }

  bool start_object(std::size_t n) {
    if (++depth_ > max_depth_)
      return fail(errc::too_large, "JSON nesting exceeds "
                                     + std::to_string(max_depth_) + " levels");
    keys_.emplace_back();
    return base::start_object(n);
  }

  bool key(std::string& name) {
    if (!keys_.back().insert(name).second)
      return fail(errc::invalid_argument,
                  "key '" + name + "' appears twice in one object");
    return base::key(name);
  }

  bool end_object() {
    --depth_;
    keys_.pop_back();
    return base::end_object();
  }

  bool start_array(std::size_t n) {
    if (++depth_ > max_depth_)
      return fail(errc::too_large, "JSON nesting exceeds "
                                     + std::to_string(max_depth_) + " levels");
    return base::start_array(n);
  }

  bool end_array() {
    --depth_;
    return base::end_array();
  }

  bool number_float(double x, const std::string& literal) {
    if (literal.find_first_of(".eE") == std::string::npos)
      return fail(errc::invalid_argument,
                  "integer " + literal + " does not fit in 64 bits");
    return base::number_float(x, literal);
  }

  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& ex) {
    std::string what = ex.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    if (auto pos = what.find("] "); pos != std::string::npos)
      what.erase(0, pos + 2);
    return fail(errc::invalid_argument, "invalid JSON: " + what);
  }

  caf::error error;

private:
  bool fail(errc code, std::string msg) {
    if (!error)
      error = make_error(code, std::move(msg));
    return false;
  }

  std::size_t depth_ = 0;
  std::size_t max_depth_;
  /// Keys seen in each open object.
  std::vector<std::unordered_set<std::string>> keys_;
};

// -- calendar -----------------------------------------------------------------

// Howard Hinnant's days_from_civil / civil_from_days (public domain
// algorithms), valid for the whole int64 nanosecond range.
constexpr int64_t days_from_civil(int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct civil {
  int64_t y;
  unsigned m;
  unsigned d;
};

constexpr civil civil_from_days(int64_t z) noexcept {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

bool is_leap(int64_t y) noexcept {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) noexcept {
  static constexpr unsigned days[]
    = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

} // namespace

// -- public API ---------------------------------------------------------------

caf::expected<json> to_json_tree(const value& x) {
  return writer{}.write(x);
}

caf::expected<std::string> to_json(const value& x) {
  auto doc = to_json_tree(x);
  if (!doc)
    return doc.error();
  return doc->dump();
}

caf::expected<json> parse_json(std::string_view text, std::size_t max_depth) {
  json doc;
  checked_sax sax{doc, max_depth};
  auto ok = json::sax_parse(text.begin(), text.end(), &sax,
                            nlohmann::detail::input_format_t::json, true);
  if (!ok || sax.error) {
    if (sax.error)
      return std::move(sax.error);
    return make_error(errc::invalid_argument, "invalid JSON");
  }
  return doc;
}

caf::expected<value> from_json(std::string_view text) {
  auto doc = parse_json(text);
  if (!doc)
    return doc.error();
  return from_json_tree(*doc);
}

caf::expected<value> from_json_tree(const json& doc) {
  return reader{}.read(doc);
}

std::string format_iso8601(timestamp t) {
  constexpr int64_t ns_per_day = int64_t{86400} * 1'000'000'000;
  int64_t days = t.ns / ns_per_day;
  int64_t rem = t.ns % ns_per_day;
  if (rem < 0) {
    rem += ns_per_day;
    --days;
  }
  auto date = civil_from_days(days);
  auto secs = rem / 1'000'000'000;
  auto frac = rem % 1'000'000'000;
  char buf[64];
  int n = std::snprintf(
    buf, sizeof(buf), "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
    static_cast<long long>(date.y), date.m, date.d,
    static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
    static_cast<long long>(secs % 60));
  std::string out(buf, static_cast<std::size_t>(n));
  if (frac != 0) {
    char fbuf[16];
    std::snprintf(fbuf, sizeof(fbuf), ".%09lld", static_cast<long long>(frac));
    std::string f = fbuf;
    // Shortest of milli-, micro- or nanoseconds that keeps every digit.
    if (frac % 1'000'000 == 0)
      f.resize(4);
    else if (frac % 1'000 == 0)
      f.resize(7);
    out += f;
  }
  out += 'Z';
  return out;
}

caf::expected<timestamp> parse_iso8601(std::string_view s) {
  auto bad = [&](std::string why) {
    return make_error(errc::invalid_argument,
                      "'" + std::string{s}
                        + "' is not an ISO 8601 time: " + why);
  };
  std::size_t i = 0;
  auto digits = [&](std::size_t n, int64_t& out) {
    if (i + n > s.size())
      return false;
    out = 0;
    for (std::size_t k = 0; k < n; ++k) {
      char c = s[i + k];
      if (c < '0' || c > '9')
        return false;
      out = out * 10 + (c - '0');
    }
    i += n;
    return true;
  };
  auto expect = [&](char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  int64_t year, month, day, hour, minute, second;
  if (!digits(4, year) || !expect('-') || !digits(2, month) || !expect('-')
      || !digits(2, day))
    return bad("expected YYYY-MM-DD");
  if (!(expect('T') || expect('t') || expect(' ')))
    return bad("expected 'T' after the date");
  if (!digits(2, hour) || !expect(':') || !digits(2, minute) || !expect(':')
      || !digits(2, second))
    return bad("expected hh:mm:ss");
  if (month < 1 || month > 12 || day < 1
      || day > days_in_month(year, static_cast<unsigned>(month)))
    return bad("no such date");
  if (hour > 23 || minute > 59 || second > 59)
    return bad("no such time of day");
  int64_t frac = 0;
  if (expect('.') || expect(',')) {
    std::size_t n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n < 9)
        frac = frac * 10 + (s[i] - '0');
      else if (s[i] != '0')
        return bad("more precision than nanoseconds");
      ++n;
      ++i;
    }
    if (n == 0)
      return bad("empty fraction");
    for (; n < 9; ++n)
      frac *= 10;
  }
  int64_t offset_minutes = 0;
  if (expect('Z') || expect('z')) {
    // UTC
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int64_t oh, om;
    if (!digits(2, oh) || !(expect(':'), true) || !digits(2, om) || oh > 23
        || om > 59)
      return bad("bad UTC offset");
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return bad("missing time zone (Z or ±hh:mm)");
  }
  if (i != s.size())
    return bad("trailing characters");
  // Compute in __int128 so that out-of-range years are caught, not wrapped.
  __int128 days = days_from_civil(year, static_cast<unsigned>(month),
                                  static_cast<unsigned>(day));
  __int128 secs
    = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  __int128 ns = secs * 1'000'000'000 + frac;
  if (ns > std::numeric_limits<int64_t>::max()
      || ns < std::numeric_limits<int64_t>::min())
    return bad("outside the representable range (1677-09-21 to 2262-04-11)");
  return timestamp{static_cast<int64_t>(ns)};
}

bool is_valid_utf8(std::string_view text) noexcept {
  auto* p = reinterpret_cast<const unsigned char*>(text.data());
  auto* end = p + text.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n)
      return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((p[k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (p[k] & 0x3F);
    }
    static constexpr uint32_t min_for_len[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

} // namespace joy
