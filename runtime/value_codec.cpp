// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/value_codec.hpp"

#include "runtime/function.hpp"

namespace joy {

namespace {

/// Calls of a remote caller wait as long as the caller does: it cancels
/// them by dropping them. This only bounds an owner that never answers.
constexpr auto unbounded = 24 * 3600 * kj::SECONDS;

/// The capability for a local function: its calls run in the owner.
class local_callable final : public wire::Callable::Server {
public:
  local_callable(kj_context& ctx, function_ref f)
    : ctx_(ctx), f_(std::move(f)) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    context.allowCancellation();
    value_codec codec{ctx_};
    auto params = context.getParams();
    auto args = read_list(params.getArgs(), &codec);
    auto kwargs = read_map(params.getKwargs(), &codec);
    if (!args || !kwargs) {
      write_error(!args ? args.error() : kwargs.error(),
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    return ctx_
      .request(f_.impl->target(), unbounded, invoke_atom_v, f_,
               std::move(*args), std::move(*kwargs))
      .then([this, context](caf::message msg) mutable {
        value_codec codec{ctx_};
        auto out = context.getResults().initResult();
        if (msg.match_elements<value>())
          write_result(msg.get_as<value>(0), out, &codec);
        else if (msg.match_elements<caf::error>())
          write_error(msg.get_as<caf::error>(0), out.initErr());
        else
          write_error(errc::internal, "unexpected answer from a function", {},
                      out.initErr());
      });
  }

private:
  kj_context& ctx_;
  function_ref f_;
};

} // namespace

caf::error error_from_exception(const kj::Exception& ex,
                                const std::string& what) {
  switch (ex.getType()) {
    case kj::Exception::Type::DISCONNECTED:
      return make_error(errc::disconnected,
                        what + " went away during the call");
    case kj::Exception::Type::OVERLOADED:
      return make_error(errc::overloaded, what + " is overloaded");
    case kj::Exception::Type::UNIMPLEMENTED:
      return make_error(errc::unimplemented, what + " does not implement this: "
                                               + ex.getDescription().cStr());
    default:
      return make_error(errc::plugin_error,
                        what + " failed: " + ex.getDescription().cStr());
  }
}

caf::expected<wire::Callable::Client> callable_for(kj_context& ctx,
                                                   const function_ref& f) {
  if (auto* remote = dynamic_cast<const remote_function*>(f.impl.get())) {
    auto* cap = &remote->thread() == &ctx.thread()
                  ? ctx.capability(remote->capability())
                  : nullptr;
    if (cap == nullptr)
      return make_error(errc::disconnected,
                        "function '" + f.name + "' is no longer reachable");
    return cap->castAs<wire::Callable>();
  }
  if (dynamic_cast<const local_function*>(f.impl.get()) != nullptr)
    return wire::Callable::Client{kj::heap<local_callable>(ctx, f)};
  return make_error(errc::invalid_argument,
                    "function '" + f.name
                      + "' cannot be sent to another process");
}

caf::error value_codec::write_function(const function_ref& f,
                                       wire::Function::Builder out) {
  auto cap = callable_for(ctx_, f);
  if (!cap)
    return cap.error();
  out.setName(f.name);
  out.setCallable(kj::mv(*cap));
  return caf::none;
}

caf::expected<function_ref>
value_codec::read_function(wire::Function::Reader in) {
  auto id = ctx_.keep(in.getCallable());
  return function_ref{
    std::make_shared<const remote_function>(ctx_.thread(), id), in.getName()};
}

void serve_remote_functions(kj_context& ctx) {
  ctx.on_request([](kj_context& ctx, caf::message& msg, reply_handle& reply) {
    if (!msg.match_elements<invoke_atom, function_ref, value_list, value_map>())
      return false;
    auto f = msg.get_as<function_ref>(1);
    auto* remote = dynamic_cast<const remote_function*>(f.impl.get());
    auto* cap = remote != nullptr && &remote->thread() == &ctx.thread()
                  ? ctx.capability(remote->capability())
                  : nullptr;
    if (cap == nullptr) {
      reply.deliver(
        make_error(errc::disconnected,
                   "function '" + f.name + "' is no longer reachable"));
      return true;
    }
    value_codec codec{ctx};
    auto req = cap->castAs<wire::Callable>().callRequest();
    auto& args = msg.get_as<value_list>(2);
    auto& kwargs = msg.get_as<value_map>(3);
    if (auto err = write_list(
          args, req.initArgs(static_cast<unsigned>(args.size())), &codec)) {
      reply.deliver(std::move(err));
      return true;
    }
    if (auto err = write_map(
          kwargs, req.initKwargs(static_cast<unsigned>(kwargs.size())),
          &codec)) {
      reply.deliver(std::move(err));
      return true;
    }
    auto name = f.name;
    ctx.tasks().add(
      req.send()
        .then(
          [&ctx](capnp::Response<wire::Callable::CallResults> resp) {
            value_codec codec{ctx};
            return read_result(resp.getResult(), &codec);
          },
          [name](kj::Exception&& ex) -> caf::expected<value> {
            return error_from_exception(ex, "function '" + name + "'");
          })
        .then([reply = std::move(reply)](caf::expected<value> res) mutable {
          if (res)
            reply.deliver_value(std::move(*res));
          else
            reply.deliver(std::move(res.error()));
        }));
    return true;
  });
}

} // namespace joy
