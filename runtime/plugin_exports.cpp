// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/plugin_exports.hpp"

namespace joy {

namespace detail {

std::string argument_label(std::size_t index,
                           const std::vector<std::string>& names) {
  auto label = "argument " + std::to_string(index + 1);
  if (index < names.size() && !names[index].empty())
    label += " (" + names[index] + ")";
  return label;
}

} // namespace detail

const exported_function* plugin_exports::find(const std::string& name) const {
  auto i = functions_.find(name);
  return i != functions_.end() ? &i->second : nullptr;
}

std::vector<std::string> plugin_exports::names() const {
  std::vector<std::string> result;
  result.reserve(functions_.size());
  for (auto& [name, fn] : functions_)
    result.push_back(name);
  return result;
}

value plugin_exports::describe() const {
  value_map out;
  for (auto& [name, fn] : functions_) {
    value_list params;
    for (auto& p : fn.params)
      params.emplace_back(p);
    out.insert(name, value_map{{"arity", value{static_cast<int64_t>(fn.arity)}},
                               {"params", value{std::move(params)}}});
  }
  return value{std::move(out)};
}

caf::error plugin_exports::count_error(const std::string& fn, std::size_t arity,
                                       std::size_t got) {
  return make_error(errc::invalid_argument,
                    fn + " takes " + std::to_string(arity) + " argument"
                      + (arity == 1 ? "" : "s") + ", got "
                      + std::to_string(got));
}

caf::expected<value_list> plugin_exports::bind_arguments(
  const std::string& fn, const std::vector<std::string>& params,
  std::size_t arity, const value_list& args, const value_map& kwargs) {
  if (args.size() > arity)
    return count_error(fn, arity, args.size() + kwargs.size());
  value_list bound = args;
  bound.resize(arity);
  std::vector<bool> filled(arity, false);
  for (std::size_t i = 0; i < args.size(); ++i)
    filled[i] = true;
  for (auto& [key, val] : kwargs) {
    std::size_t pos = arity; // not found (params may name fewer than arity)
    for (std::size_t i = 0; i < params.size() && i < arity; ++i)
      if (params[i] == key)
        pos = i;
    if (pos >= arity)
      return make_error(errc::invalid_argument,
                        fn + " has no parameter named '" + key + "'");
    if (filled[pos])
      return make_error(errc::invalid_argument,
                        fn + ": " + detail::argument_label(pos, params)
                          + " given twice");
    bound[pos] = val;
    filled[pos] = true;
  }
  for (std::size_t i = 0; i < arity; ++i)
    if (!filled[i])
      return make_error(errc::invalid_argument,
                        fn + ": " + detail::argument_label(i, params)
                          + " is missing");
  return bound;
}

} // namespace joy
