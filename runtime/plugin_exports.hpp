// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Typed functions a plugin exports (the C++ SDK's equivalent of ImJoy's
/// `api.export`). Each function's parameters and result convert by the rules
/// of value_convert.hpp; a wrong argument count or type is an
/// `errc::invalid_argument` error for the caller that names the argument,
/// and an exception thrown by the function is an `errc::plugin_error`.
///
/// ```
/// joy::plugin_exports exports;
/// exports.add("add", [](int64_t a, int64_t b) { return a + b; }, {"a", "b"});
/// exports.add("echo", [](joy::value x) { return x; });
/// ```
#pragma once

#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/future.hpp"
#include "runtime/value.hpp"
#include "runtime/value_convert.hpp"

namespace joy {

class context;

namespace detail {

template <class... Ts>
struct args_info {
  static constexpr bool takes_context = false;
  using args = std::tuple<std::decay_t<Ts>...>;
  static constexpr std::size_t arity = sizeof...(Ts);
};

/// A leading `joy::context&` is the call's context, not an argument.
template <class... Ts>
struct args_info<context&, Ts...> {
  static constexpr bool takes_context = true;
  using args = std::tuple<std::decay_t<Ts>...>;
  static constexpr std::size_t arity = sizeof...(Ts);
};

template <class F>
struct callable_traits : callable_traits<decltype(&F::operator())> {};

template <class R, class... Args>
struct callable_traits<R (*)(Args...)> : args_info<Args...> {
  using result = R;
};

template <class R, class... Args>
struct callable_traits<R(Args...)> : callable_traits<R (*)(Args...)> {};

template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...) const>
  : callable_traits<R (*)(Args...)> {};

template <class C, class R, class... Args>
struct callable_traits<R (C::*)(Args...)> : callable_traits<R (*)(Args...)> {};

/// "argument 2 (b)" or "argument 2".
std::string argument_label(std::size_t index,
                           const std::vector<std::string>& names);

} // namespace detail

/// An exported function after type erasure.
struct exported_function {
  std::string name;
  std::vector<std::string> params; // may be empty: positions only
  std::size_t arity = 0;
  /// Runs it; a plain result comes back as a ready future.
  std::function<future<value>(context&, const value_list&, const value_map&)>
    invoke;
};

class plugin_exports {
public:
  /// Exports `fn` as `name`. `fn` may take a leading `joy::context&` (the
  /// call's view of the plugin, see plugin_api.hpp) and may return a value,
  /// a `caf::expected`, a `joy::future`, or nothing. `params` names the
  /// parameters for error messages and keyword arguments; it may be empty.
  template <class F>
  plugin_exports& add(std::string name, F fn,
                      std::vector<std::string> params = {}) {
    auto ef = make(name, std::move(fn), std::move(params));
    functions_[std::move(name)] = std::move(ef);
    return *this;
  }

  /// Adapts `fn` like `add` does, without exporting it.
  template <class F>
  static exported_function make(std::string name, F fn,
                                std::vector<std::string> params = {}) {
    using traits = detail::callable_traits<std::decay_t<F>>;
    using args_tuple = typename traits::args;
    constexpr auto arity = traits::arity;
    exported_function ef;
    ef.name = name;
    ef.params = params;
    ef.arity = arity;
    ef.invoke = [fn = std::move(fn), name,
                 params](context& ctx, const value_list& args,
                         const value_map& kwargs) -> future<value> {
      args_tuple converted;
      caf::error failure;
      if (kwargs.empty()) {
        // The common case converts straight from the caller's list.
        if (args.size() != arity)
          return count_error(name, arity, args.size());
        convert_all(name, params, args, converted, failure,
                    std::make_index_sequence<arity>{});
      } else {
        auto bound = bind_arguments(name, params, arity, args, kwargs);
        if (!bound)
          return std::move(bound.error());
        convert_all(name, params, *bound, converted, failure,
                    std::make_index_sequence<arity>{});
      }
      if (failure)
        return failure;
      return call<traits::takes_context>(name, fn, ctx, converted,
                                         std::make_index_sequence<arity>{});
    };
    return ef;
  }

  /// The function named `name`, or nullptr.
  const exported_function* find(const std::string& name) const;

  /// Names in alphabetical order.
  std::vector<std::string> names() const;

  /// `{name: {"params": [...], "arity": n}, ...}` for `describe`.
  value describe() const;

private:
  /// "f takes 2 arguments, got 3".
  static caf::error count_error(const std::string& fn, std::size_t arity,
                                std::size_t got);

  /// Puts positional and keyword arguments in parameter order; checks the
  /// count.
  static caf::expected<value_list>
  bind_arguments(const std::string& fn, const std::vector<std::string>& params,
                 std::size_t arity, const value_list& args,
                 const value_map& kwargs);

  template <class Tuple, std::size_t... Is>
  static void convert_all(const std::string& fn,
                          const std::vector<std::string>& params,
                          const value_list& args, Tuple& out,
                          caf::error& failure, std::index_sequence<Is...>) {
    (convert_one(fn, params, Is, args[Is], std::get<Is>(out), failure), ...);
  }

  template <class T>
  static void
  convert_one(const std::string& fn, const std::vector<std::string>& params,
              std::size_t index, const value& in, T& out, caf::error& failure) {
    if (failure)
      return;
    if (auto err = from_value(in, out))
      failure
        = make_error(errc::invalid_argument,
                     fn + ": " + detail::argument_label(index, params)
                       + ": expected " + err->expected + ", got " + err->got);
  }

  template <bool TakesContext, class F, class Tuple, std::size_t... Is>
  static future<value> call(const std::string& fn, const F& f, context& ctx,
                            Tuple& args, std::index_sequence<Is...>) {
    auto run = [&]() -> decltype(auto) {
      if constexpr (TakesContext)
        return f(ctx, std::move(std::get<Is>(args))...);
      else
        return f(std::move(std::get<Is>(args))...);
    };
    using R = decltype(run());
    try {
      if constexpr (std::is_void_v<R>) {
        run();
        return value{};
      } else if constexpr (detail::is_future<R>::value) {
        return run().then(
          [](typename R::value_type x) { return to_value(std::move(x)); });
      } else if constexpr (detail::is_caf_expected<R>::value) {
        auto res = run();
        if (!res)
          return std::move(res.error());
        return to_value(std::move(*res));
      } else {
        return to_value(run());
      }
    } catch (const std::exception& ex) {
      return make_error(errc::plugin_error, fn + " failed: " + ex.what());
    } catch (...) {
      return make_error(errc::plugin_error,
                        fn + " failed with an unknown exception");
    }
  }

  std::map<std::string, exported_function> functions_;
};

} // namespace joy
