// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/python_host/python_host.hpp"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include <kj/debug.h>

#include "runtime/api_op.hpp"
#include "runtime/call_control.hpp"
#include "runtime/function.hpp"
#include "runtime/log.hpp"
#include "runtime/plugin_connection.hpp"
#include "runtime/value_codec.hpp"
#include "runtime/value_wire.hpp"

namespace py = pybind11;

namespace joy::python {

namespace {

/// Python errors travel as their traceback, which ends with the summary;
/// a runaway one keeps its last part.
constexpr std::size_t max_trace = 16 * 1024;

std::string bounded_trace(std::string trace) {
  if (trace.size() <= max_trace)
    return trace;
  return "...\n" + trace.substr(trace.size() - max_trace);
}

caf::expected<value> outcome_of(python_host& host, bool ok, py::handle v,
                                const std::string& what) {
  if (ok) {
    auto res = from_python(host, v);
    if (!res)
      return make_error(
        code_of(res.error()),
        what + " returned what cannot be sent: " + message_of(res.error()));
    return res;
  }
  // (kind, summary, trace) from imjoy._invoke.
  auto t = py::reinterpret_borrow<py::tuple>(v);
  auto kind = t[0].cast<std::string>();
  if (kind == "cancelled")
    return make_error(errc::cancelled, what + " was cancelled");
  auto summary = t[1].cast<std::string>();
  if (kind == "invalid_argument")
    return make_error(errc::invalid_argument, summary);
  auto trace = t[2].cast<std::string>();
  // A traceback ends with a newline that would make an empty last line.
  while (!trace.empty() && (trace.back() == '\n' || trace.back() == ' '))
    trace.pop_back();
  // Every exception of plugin code, RemoteError included, is the plugin's
  // error; its text names what it was.
  return make_error(errc::plugin_error,
                    bounded_trace(trace.empty() ? summary : trace));
}

/// A Python callable sent as a function value: its calls come in on the kj
/// thread and run in Python.
class python_function final : public kj_callable_function {
public:
  python_function(python_host& host, py_ref fn)
    : host_(host), fn_(std::move(fn)) {
    // nop
  }

  wire::Callable::Client callable(kj_context& ctx) const override;

  const py_ref& fn() const noexcept {
    return fn_;
  }

private:
  python_host& host_;
  py_ref fn_;
};

class python_callable final : public wire::Callable::Server {
public:
  python_callable(kj_context& ctx, python_host& host, py_ref fn)
    : ctx_(ctx), host_(host), fn_(std::move(fn)) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    return serve_callable(ctx_, context, [this](arguments in) {
      return host_.invoke(fn_, std::move(in.args), std::move(in.kwargs));
    });
  }

private:
  kj_context& ctx_;
  python_host& host_;
  py_ref fn_;
};

wire::Callable::Client python_function::callable(kj_context& ctx) const {
  return kj::heap<python_callable>(ctx, host_, fn_);
}

/// The plugin's `Plugin` capability.
class python_plugin final : public wire::Plugin::Server {
public:
  python_plugin(kj_context& ctx, python_host& host) : ctx_(ctx), host_(host) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    context.allowCancellation();
    auto params = context.getParams();
    std::string service = params.getService();
    std::string method = params.getMethod();
    auto result = context.getResults().initResult();
    if (!service.empty() && service != "default") {
      write_error(errc::not_found,
                  "plugin '" + host_.name() + "' has no service '" + service
                    + "'",
                  {}, result.initErr());
      return kj::READY_NOW;
    }
    auto* fn = host_.find_export(method);
    if (fn == nullptr || method == "setup" || method == "exit") {
      write_error(errc::not_found,
                  "plugin '" + host_.name() + "' has no method '" + method
                    + "' (it exports: " + host_.known_methods() + ")",
                  {}, result.initErr());
      return kj::READY_NOW;
    }
    value_codec codec{ctx_};
    auto in = read_arguments(params.getArgs(), params.getKwargs(), &codec);
    return codec.finish(std::move(in))
      .then([this, context, f = fn->fn](
              caf::expected<arguments> in) mutable -> kj::Promise<void> {
        if (!in) {
          write_error(in.error(), context.getResults().initResult().initErr());
          return kj::READY_NOW;
        }
        return answer(
          host_.invoke(f, std::move(in->args), std::move(in->kwargs)), context);
      });
  }

  kj::Promise<void> setup(SetupContext context) override {
    context.allowCancellation();
    return lifecycle("setup", {}, context);
  }

  kj::Promise<void> run(RunContext context) override {
    context.allowCancellation();
    value_codec codec{ctx_};
    auto ctx = read_value(context.getParams().getCtx(), &codec);
    return codec.finish(std::move(ctx))
      .then([this,
             context](caf::expected<value> ctx) mutable -> kj::Promise<void> {
        if (!ctx) {
          write_error(ctx.error(), context.getResults().initResult().initErr());
          return kj::READY_NOW;
        }
        return lifecycle("run", {std::move(*ctx)}, context);
      });
  }

  kj::Promise<void> describe(DescribeContext context) override {
    value_codec codec{ctx_};
    write_result(host_.describe(), context.getResults().initResult(), &codec);
    return kj::READY_NOW;
  }

  kj::Promise<void> exit(ExitContext context) override {
    // Answered once the plugin's exit() finished (the node's grace period
    // bounds it); the process ends when the node closes the link.
    context.allowCancellation();
    auto* fn = host_.find_export("exit");
    if (fn == nullptr)
      return kj::READY_NOW;
    return host_.invoke(fn->fn, {}, {})
      .then([name = host_.name()](caf::expected<value> res) {
        if (!res)
          log(log_level::warning, name,
              "exit() failed: ", message_of(res.error()));
      });
  }

private:
  template <class Context>
  kj::Promise<void> lifecycle(const std::string& hook, value_list args,
                              Context context) {
    auto* fn = host_.find_export(hook);
    if (fn == nullptr) {
      value_codec codec{ctx_};
      write_result(value{}, context.getResults().initResult(), &codec);
      return kj::READY_NOW;
    }
    return answer(host_.invoke(fn->fn, std::move(args), {}), context);
  }

  template <class Context>
  kj::Promise<void> answer(kj::Promise<caf::expected<value>> res,
                           Context context) {
    return res.then([this, context](caf::expected<value> res) mutable {
      value_codec codec{ctx_};
      write_result(res, context.getResults().initResult(), &codec);
    });
  }

  kj_context& ctx_;
  python_host& host_;
};

/// Reads the answer of an api request or function call.
template <class Response>
kj::Promise<caf::expected<value>>
read_answer(kj_context& ctx, kj::Promise<Response> sent, std::string what) {
  return sent.then(
    [&ctx](Response resp) {
      value_codec codec{ctx};
      return codec.finish(read_result(resp.getResult(), &codec));
    },
    [what](kj::Exception&& ex) -> kj::Promise<caf::expected<value>> {
      return caf::expected<value>{error_from_exception(ex, what)};
    });
}

kj::Promise<caf::expected<value>> failed(caf::error err) {
  return caf::expected<value>{std::move(err)};
}

std::string camel(std::string_view snake) {
  std::string out;
  bool up = false;
  for (char c : snake) {
    if (c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(c - 'a' + 'A') : c;
    up = false;
  }
  return out;
}

} // namespace

python_host::python_host(std::string name, kj_thread& kj, uint64_t link)
  : name_(std::move(name)), kj_(kj), link_(link) {
  // nop
}

// -- kj thread ----------------------------------------------------------------

kj::Own<wire::Plugin::Server> python_host::make_server(kj_context& ctx) {
  return kj::heap<python_plugin>(ctx, *this);
}

kj::Promise<caf::expected<value>>
python_host::invoke(py_ref fn, value_list args, value_map kwargs) {
  auto id = ++next_call_;
  auto paf = kj::newPromiseAndFulfiller<caf::expected<value>>();
  calls_.emplace(id, kj::mv(paf.fulfiller));
  inbox_.post([this, id, fn = std::move(fn), args = std::move(args),
               kwargs = std::move(kwargs)]() mutable {
    start_call(id, std::move(fn), std::move(args), std::move(kwargs));
  });
  // Dropped before it finished: the caller gave up, so the task stops.
  return paf.promise.attach(kj::defer([this, id] {
    if (calls_.erase(id) > 0)
      inbox_.post([this, id] {
        if (closing_)
          return;
        try {
          module_.attr("_cancel")(id);
        } catch (py::error_already_set& e) {
          joy::log(log_level::warning, name_, "cancel failed: ", e.what());
        }
      });
  }));
}

void python_host::finish_call(uint64_t id, caf::expected<value> result) {
  auto i = calls_.find(id);
  if (i == calls_.end())
    return; // cancelled meanwhile
  auto fulfiller = kj::mv(i->second);
  calls_.erase(i);
  fulfiller->fulfill(std::move(result));
}

void python_host::drop_python() {
  closing_ = true;
  inbox_.drain();
  inbox_.close();
  exports_.clear();
  module_ = {};
}

const exported* python_host::find_export(const std::string& method) const {
  auto i = exports_.find(method);
  return i == exports_.end() ? nullptr : &i->second;
}

value python_host::describe() const {
  value_map methods;
  for (auto& [name, e] : exports_) {
    if (name == "setup" || name == "exit")
      continue;
    value_map m;
    if (e.params_known) {
      value_list params;
      for (auto& p : e.params)
        params.emplace_back(p);
      m.insert("arity", value{static_cast<int64_t>(e.params.size())});
      m.insert("params", value{std::move(params)});
    }
    methods.insert(name, value{std::move(m)});
  }
  return value{
    value_map{{"name", value{name_}}, {"methods", value{std::move(methods)}}}};
}

std::string python_host::known_methods() const {
  std::string out;
  for (auto& [name, e] : exports_)
    if (name != "setup" && name != "exit")
      out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "nothing" : out;
}

void python_host::answer_later(kj_context& ctx,
                               kj::Promise<caf::expected<value>> p,
                               py_ref done) {
  ctx.tasks().add(p.then([this, done](caf::expected<value> res) mutable {
    inbox_.post([this, done = std::move(done), res = std::move(res)]() mutable {
      deliver(done, std::move(res));
    });
  }));
}

// -- Python thread ------------------------------------------------------------

void python_host::start_call(uint64_t id, py_ref fn, value_list args,
                             value_map kwargs) {
  if (closing_)
    return;
  auto fail = [this, id](caf::error err) {
    kj_.post([this, id, err = std::move(err)](kj_context&) mutable {
      finish_call(id, std::move(err));
    });
  };
  py::list py_args;
  py::dict py_kwargs;
  try {
    for (auto& a : args)
      py_args.append(to_python(*this, a));
    for (auto& [k, v] : kwargs)
      py_kwargs[py::str(k)] = to_python(*this, v);
  } catch (std::exception& e) {
    fail(make_error(errc::invalid_argument,
                    std::string{"cannot pass the arguments to Python: "}
                      + e.what()));
    return;
  }
  std::string what = "the function";
  try {
    // Callable objects and partials may have no __name__.
    auto name = py::getattr(py::handle{fn.get()}, "__name__", py::none());
    if (py::isinstance<py::str>(name))
      what = name.cast<std::string>();
  } catch (std::exception&) {
    // keep the generic name
  }
  auto done = py::cpp_function([this, id, what](bool ok, py::object v) {
    // Whatever happens here, the call gets its answer.
    caf::expected<value> res{value{}};
    try {
      res = outcome_of(*this, ok, v, what + "()");
    } catch (std::exception& e) {
      res = make_error(errc::invalid_argument,
                       what + "() returned what cannot be sent: " + e.what());
    }
    kj_.post([this, id, res = std::move(res)](kj_context&) mutable {
      finish_call(id, std::move(res));
    });
  });
  try {
    module_.attr("_invoke")(id, py::handle{fn.get()}, py_args, py_kwargs, done);
  } catch (py::error_already_set& e) {
    fail(make_error(errc::internal,
                    std::string{"cannot start the call: "} + e.what()));
  }
}

void python_host::deliver(const py_ref& done, caf::expected<value> result) {
  if (closing_)
    return;
  py::handle fn{done.get()};
  try {
    if (result) {
      fn(true, to_python(*this, *result));
      return;
    }
    auto err = module_.attr("RemoteError")(
      std::string{to_string(code_of(result.error()))},
      message_of(result.error()));
    fn(false, err);
  } catch (py::error_already_set& e) {
    // A conversion failed (numpy missing, say): the awaiting code hears it.
    try {
      fn(false, e.value());
    } catch (py::error_already_set& inner) {
      joy::log(log_level::warning, name_,
               "cannot deliver an answer: ", inner.what());
    }
  } catch (std::exception& e) {
    joy::log(log_level::warning, name_, "cannot deliver an answer: ", e.what());
  }
}

void python_host::request(uint16_t op, value_list args, value_map kwargs,
                          py::object done) {
  py_ref d{inbox_, done.ptr()};
  kj_.post([this, op, args = std::move(args), kwargs = std::move(kwargs),
            d = std::move(d)](kj_context& ctx) mutable {
    auto* api = node_api(ctx, link_);
    if (api == nullptr) {
      answer_later(ctx,
                   failed(make_error(errc::unavailable,
                                     "this plugin is not connected to a node")),
                   std::move(d));
      return;
    }
    value_codec codec{ctx};
    auto req = api->requestRequest();
    req.setOp(static_cast<wire::ApiOp>(op));
    if (auto err = write_arguments(args, kwargs, req, &codec)) {
      answer_later(ctx, failed(std::move(err)), std::move(d));
      return;
    }
    answer_later(
      ctx,
      read_answer(ctx, req.send(), "the node")
        .exclusiveJoin(ctx.timer().afterDelay(unbounded_call).then([] {
          return caf::expected<value>{
            make_error(errc::timeout, "the node did not answer")};
        })),
      std::move(d));
  });
}

void python_host::call_remote(const function_ref& f, value_list args,
                              value_map kwargs, py::object done) {
  py_ref d{inbox_, done.ptr()};
  kj_.post([this, f, args = std::move(args), kwargs = std::move(kwargs),
            d = std::move(d)](kj_context& ctx) mutable {
    auto cap = callable_for(ctx, f);
    if (!cap) {
      answer_later(ctx, failed(std::move(cap.error())), std::move(d));
      return;
    }
    value_codec codec{ctx};
    auto req = cap->callRequest();
    if (auto err = write_arguments(args, kwargs, req, &codec)) {
      answer_later(ctx, failed(std::move(err)), std::move(d));
      return;
    }
    answer_later(ctx, read_answer(ctx, req.send(), "function '" + f.name + "'"),
                 std::move(d));
  });
}

void python_host::log(int level, std::string text) {
  // The plugin's own log (`joy logs`) has it, and the node's too.
  joy::log_line(static_cast<log_level>(level), "api", text);
  kj_.post([this, level, text = std::move(text)](kj_context& ctx) {
    auto* api = node_api(ctx, link_);
    if (api == nullptr)
      return;
    auto req = api->logRequest();
    req.setLevel(to_wire_log_level(level));
    req.setMessage(text);
    ctx.tasks().add(req.send().ignoreResult().catch_([](kj::Exception&&) {}));
  });
}

// -- the `_joy` module --------------------------------------------------------

namespace {

/// The host, kept in the module (`_joy._host`) by bind_host.
python_host& host() {
  auto* mod = PyImport_AddModule("_joy"); // borrowed
  auto cap = py::getattr(mod, "_host", py::none());
  if (cap.is_none())
    throw std::runtime_error("the Joy host is not running");
  return *static_cast<python_host*>(cap.cast<py::capsule>().get_pointer());
}

template <class T>
T checked(caf::expected<T> x) {
  if (!x)
    throw py::value_error(message_of(x.error()));
  return std::move(*x);
}

/// The remote function a Python callable wraps.
struct remote_callable {
  function_ref f;
};

} // namespace

/// Builds a Python callable for a function value (python_values.cpp).
py::object remote_to_python(python_host& h, const function_ref& f) {
  if (auto* own = dynamic_cast<const python_function*>(f.impl.get()))
    return py::reinterpret_borrow<py::object>(own->fn().get());
  return h.module().attr("_remote")(py::cast(remote_callable{f}));
}

value function_to_value(python_host& h, py::handle fn) {
  auto f = py::getattr(fn, "__joy_function__", py::none());
  if (!f.is_none() && py::isinstance<remote_callable>(f))
    return value{f.cast<remote_callable&>().f};
  std::string name = "function";
  if (auto n = py::getattr(fn, "__name__", py::none());
      py::isinstance<py::str>(n))
    name = n.cast<std::string>();
  std::vector<std::string> params;
  return value{function_ref{
    std::make_shared<python_function>(h, py_ref{h.inbox(), fn.ptr()}), name,
    params}};
}

/// The imjoy module's source (imjoy.py, embedded at build time).
extern const char* const imjoy_source;

py::module_ load_imjoy_module() {
  auto types = py::module_::import("types");
  auto mod = py::reinterpret_steal<py::module_>(
    types.attr("ModuleType")("imjoy").release());
  mod.attr("__file__") = "<joy>/imjoy.py";
  py::module_::import("sys").attr("modules")["imjoy"] = mod;
  auto builtins = py::module_::import("builtins");
  auto code = builtins.attr("compile")(imjoy_source, "<joy>/imjoy.py", "exec");
  builtins.attr("exec")(code, mod.attr("__dict__"));
  return mod;
}

void bind_host(python_host& h) {
  py::module_::import("_joy").attr("_host") = py::capsule(&h, "joy.host");
}

PYBIND11_EMBEDDED_MODULE(_joy, m) {
  m.doc() = "The Joy host's half of the imjoy module (joy-python-host).";
  py::class_<remote_callable>(m, "_Remote");
  m.def("ops", [] {
    std::vector<std::string> names;
    for (uint16_t i = 0;; ++i) {
      auto op = api_op_from_wire(i);
      if (!op)
        break;
      names.push_back(camel(to_string(*op)));
    }
    return names;
  });
  m.def("request", [](const std::string& name, py::list args, py::dict kwargs,
                      py::object done) {
    for (uint16_t i = 0;; ++i) {
      auto op = api_op_from_wire(i);
      if (!op)
        throw py::value_error("no api op '" + name + "'");
      if (camel(to_string(*op)) != name)
        continue;
      auto& h = host();
      host().request(i, checked(list_from_python(h, args)),
                     checked(map_from_python(h, kwargs)), std::move(done));
      return;
    }
  });
  m.def("call",
        [](py::handle fn, py::tuple args, py::dict kwargs, py::object done) {
          auto& h = host();
          h.call_remote(fn.cast<remote_callable&>().f,
                        checked(list_from_python(h, args)),
                        checked(map_from_python(h, kwargs)), std::move(done));
        });
  m.def("name_of",
        [](py::handle fn) { return fn.cast<remote_callable&>().f.name; });
  m.def("log", [](int level, std::string text) {
    host().log(level, std::move(text));
  });
  m.def("drain", [] { host().inbox().drain(); });
  m.def("shared_array",
        [](const std::string& dtype, const std::vector<uint64_t>& shape) {
          return shared_array(host(), dtype, shape);
        });
  m.def("export", [](py::dict members, py::dict params) {
    auto& h = host();
    std::map<std::string, exported> out;
    for (auto [k, v] : members) {
      exported e;
      e.fn = py_ref{h.inbox(), v.ptr()};
      auto p = params[k];
      if (!p.is_none()) {
        e.params = p.cast<std::vector<std::string>>();
        e.params_known = true;
      }
      out.emplace(k.cast<std::string>(), std::move(e));
    }
    h.set_exports(std::move(out));
  });
}

} // namespace joy::python
