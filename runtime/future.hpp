// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy::future<T>`: the result of an asynchronous call inside a plugin —
/// ImJoy's promises for the C++ SDK. A future belongs to the plugin's actor:
/// it is completed and its continuations run there, one at a time, so
/// nothing in it needs a lock; do not share one with other threads.
///
/// ```
/// return ctx.api().prompt("Your name?").then([](std::string name) {
///   return "hello " + name;
/// });
/// auto both = joy::when_all(std::vector{api.call("a", "f"), api.call("b",
/// "g")});
/// ```
///
/// A continuation may return a plain value, a `caf::expected`, another
/// future, or nothing (the result is then null); an error skips the
/// continuations up to the next `recover`. An exception thrown by a
/// continuation becomes an `errc::plugin_error`.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/errc.hpp"
#include "runtime/value.hpp"

namespace joy {

template <class T>
class future;

template <class T>
class promise;

namespace detail {

template <class T>
struct future_state {
  std::optional<caf::expected<T>> result;
  std::function<void(caf::expected<T>)> continuation;
  /// The work of a deferred future, run by its first consumer.
  std::function<void()> start;

  void complete(caf::expected<T> x) {
    if (result)
      return; // completed already: the first outcome wins
    if (continuation) {
      auto f = std::move(continuation);
      continuation = nullptr;
      result.emplace(make_error(errc::internal, "consumed"));
      f(std::move(x));
    } else {
      result.emplace(std::move(x));
    }
  }
};

/// A `future<U>` or a class derived from one (`service_future`).
template <class T, class = void>
struct is_future : std::false_type {};

template <class T>
struct is_future<T, std::void_t<typename T::value_type>>
  : std::is_base_of<future<typename T::value_type>, T> {};

template <class T>
struct is_caf_expected : std::false_type {};

template <class T>
struct is_caf_expected<caf::expected<T>> : std::true_type {};

/// What a continuation returning R makes the future hold.
template <class R, class = void>
struct unwrap {
  using type = R;
};

template <>
struct unwrap<void> {
  using type = value;
};

template <class R>
struct unwrap<R, std::enable_if_t<is_future<R>::value>> {
  using type = typename R::value_type;
};

template <class U>
struct unwrap<caf::expected<U>> {
  using type = U;
};

caf::error error_from_current_exception(const char* where);

} // namespace detail

/// Completes a future, once.
template <class T>
class promise {
public:
  promise() : state_(std::make_shared<detail::future_state<T>>()) {
    // nop
  }

  future<T> get_future() const {
    return future<T>{state_};
  }

  void set_value(T x) {
    state_->complete(caf::expected<T>{std::move(x)});
  }

  void set_error(caf::error err) {
    state_->complete(caf::expected<T>{std::move(err)});
  }

  void set(caf::expected<T> x) {
    state_->complete(std::move(x));
  }

  bool pending() const noexcept {
    return !state_->result;
  }

private:
  std::shared_ptr<detail::future_state<T>> state_;
};

template <class T>
class future {
public:
  using value_type = T;

  future() = default;

  /// A future that holds `x` already.
  future(T x) : state_(std::make_shared<detail::future_state<T>>()) {
    state_->result.emplace(std::move(x));
  }

  /// A future that failed already.
  future(caf::error err) : state_(std::make_shared<detail::future_state<T>>()) {
    state_->result.emplace(std::move(err));
  }

  explicit future(std::shared_ptr<detail::future_state<T>> state)
    : state_(std::move(state)) {
    // nop
  }

  /// A future whose work starts only when someone waits for it (`then`,
  /// `recover`, `on_complete`, `when_all`): `make` runs then, once. Lets a
  /// caller skip work nobody needs (`service_future::call`).
  static future deferred(std::function<future<T>()> make) {
    auto state = std::make_shared<detail::future_state<T>>();
    std::weak_ptr<detail::future_state<T>> weak = state;
    state->start = [weak, make = std::move(make)] {
      // Runs from a consumer holding the state; the work keeps it alive.
      auto self = weak.lock();
      future<T> work;
      try {
        work = make();
      } catch (...) {
        self->complete(detail::error_from_current_exception("a deferred call"));
        return;
      }
      work.on_complete(
        [self](caf::expected<T> x) { self->complete(std::move(x)); });
    };
    return future{std::move(state)};
  }

  bool valid() const noexcept {
    return state_ != nullptr;
  }

  /// True when the outcome is there and no continuation took it yet.
  bool is_ready() const noexcept {
    return state_ && state_->result && !state_->continuation;
  }

  /// Takes the outcome of a ready future.
  caf::expected<T> take() {
    auto x = std::move(*state_->result);
    state_->result.emplace(make_error(errc::internal, "consumed"));
    return x;
  }

  /// Calls `f` with the outcome (value or error) once it is there; at most
  /// one consumer per future.
  void on_complete(std::function<void(caf::expected<T>)> f) {
    if (state_->start) {
      auto start = std::move(state_->start);
      state_->start = nullptr;
      start();
    }
    if (state_->result) {
      f(take());
      return;
    }
    state_->continuation = std::move(f);
  }

  /// Continues with the value; errors pass through. See the file comment.
  template <class F>
  auto then(F f)
    -> future<typename detail::unwrap<std::invoke_result_t<F, T&&>>::type> {
    using R = std::invoke_result_t<F, T&&>;
    using U = typename detail::unwrap<R>::type;
    promise<U> p;
    auto out = p.get_future();
    on_complete([p, f = std::move(f)](caf::expected<T> x) mutable {
      if (!x) {
        p.set_error(std::move(x.error()));
        return;
      }
      try {
        if constexpr (std::is_void_v<R>) {
          f(std::move(*x));
          p.set_value(value{});
        } else if constexpr (detail::is_future<R>::value) {
          f(std::move(*x)).on_complete([p](caf::expected<U> u) mutable {
            p.set(std::move(u));
          });
        } else if constexpr (detail::is_caf_expected<R>::value) {
          p.set(f(std::move(*x)));
        } else {
          p.set_value(f(std::move(*x)));
        }
      } catch (...) {
        p.set_error(detail::error_from_current_exception("a continuation"));
      }
    });
    return out;
  }

  /// Turns an error into a value (or another error): `f(caf::error)` returns
  /// T, `caf::expected<T>` or `future<T>`.
  template <class F>
  future<T> recover(F f) {
    using R = std::invoke_result_t<F, caf::error&&>;
    promise<T> p;
    auto out = p.get_future();
    on_complete([p, f = std::move(f)](caf::expected<T> x) mutable {
      if (x) {
        p.set(std::move(x));
        return;
      }
      try {
        if constexpr (detail::is_future<R>::value) {
          f(std::move(x.error())).on_complete([p](caf::expected<T> u) mutable {
            p.set(std::move(u));
          });
        } else if constexpr (detail::is_caf_expected<R>::value) {
          p.set(f(std::move(x.error())));
        } else {
          p.set_value(f(std::move(x.error())));
        }
      } catch (...) {
        p.set_error(detail::error_from_current_exception("an error handler"));
      }
    });
    return out;
  }

private:
  std::shared_ptr<detail::future_state<T>> state_;
};

/// Completes with every value, in order, once all are there; fails with the
/// first error as soon as one fails (ImJoy's `Promise.all`).
template <class T>
future<std::vector<T>> when_all(std::vector<future<T>> xs) {
  if (xs.empty())
    return future<std::vector<T>>{std::vector<T>{}};
  struct gather {
    std::vector<std::optional<T>> values;
    std::size_t left;
    promise<std::vector<T>> done;
  };
  auto g = std::make_shared<gather>();
  g->values.resize(xs.size());
  g->left = xs.size();
  auto out = g->done.get_future();
  for (std::size_t i = 0; i < xs.size(); ++i)
    xs[i].on_complete([g, i](caf::expected<T> x) {
      if (!g->done.pending())
        return;
      if (!x) {
        g->done.set_error(std::move(x.error()));
        return;
      }
      g->values[i] = std::move(*x);
      if (--g->left == 0) {
        std::vector<T> all;
        all.reserve(g->values.size());
        for (auto& v : g->values)
          all.push_back(std::move(*v));
        g->done.set_value(std::move(all));
      }
    });
  return out;
}

} // namespace joy
