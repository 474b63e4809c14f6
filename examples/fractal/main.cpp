// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// fractal: a plugin with a CUDA kernel of its own and a CPU fallback that
// gives the same image (fractal.hpp), plus a call into the node's built-in
// gpu service. On a node with GPUs, ask for one in plugin.json
// (`"resources": {"gpus": 1}`): the node then places it where a device is
// free and shows it that device alone (CUDA_VISIBLE_DEVICES); a plugin
// that asks for none sees none.
//
//   joy call fractal info
//   joy call fractal render 512 384 256
//   joy call fractal render_blurred 512 384 3.0

#include <cstdlib>
#include <string>

#include "fractal.hpp"
#include "runtime/plugin.hpp"

namespace {

constexpr int64_t max_side = 8192;

/// What CUDA offers this process, for `info` and the log.
struct cuda_view {
  bool built = false;
  int devices = 0;
  std::string reason;
};

cuda_view look_at_cuda() {
  cuda_view v;
#ifdef FRACTAL_WITH_CUDA
  v.built = true;
  v.devices = fractal::cuda_devices(v.reason);
#else
  v.reason = "built without CUDA";
#endif
  return v;
}

caf::expected<joy::value> render(joy::context& ctx, int64_t width,
                                 int64_t height, int64_t max_iter) {
  if (width < 1 || height < 1 || width > max_side || height > max_side)
    return joy::make_error(joy::errc::invalid_argument,
                           "render: width and height must be 1 to "
                             + std::to_string(max_side));
  if (max_iter < 1 || max_iter > 100000)
    return joy::make_error(joy::errc::invalid_argument,
                           "render: max_iter must be 1 to 100000");
  auto w = static_cast<int>(width), h = static_cast<int>(height);
  auto block = ctx.allocate(static_cast<std::size_t>(w) * h);
  if (!block)
    return block.error();
  auto* out = reinterpret_cast<uint8_t*>(block->data());
  std::string why;
  bool on_gpu = false;
#ifdef FRACTAL_WITH_CUDA
  on_gpu = fractal::render_cuda(out, w, h, static_cast<int>(max_iter), why);
#endif
  if (!on_gpu)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        out[static_cast<std::size_t>(y) * w + x]
          = fractal::pixel(x, y, w, h, static_cast<int>(max_iter));
  return joy::value{
    joy::ndarray{joy::dtype::uint8,
                 {static_cast<uint64_t>(h), static_cast<uint64_t>(w)},
                 std::move(*block).freeze()}};
}

} // namespace

int main(int argc, char** argv) {
  auto cuda = look_at_cuda();
  joy::plugin p{"fractal"};
  p.exports.add("info", [cuda] {
    joy::value_map out;
    out.insert("backend", joy::value{cuda.devices > 0 ? "cuda" : "cpu"});
    out.insert("cuda_built", joy::value{cuda.built});
    out.insert("devices", joy::value{int64_t{cuda.devices}});
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    out.insert("visible_devices",
               visible ? joy::value{std::string{visible}} : joy::value{});
    if (!cuda.reason.empty())
      out.insert("reason", joy::value{cuda.reason});
    return joy::value{std::move(out)};
  });
  p.exports.add("render", render, {"width", "height", "max_iter"});
  // Its own kernel, then the node's gpu service: the image never leaves
  // this machine's shared memory between the two.
  p.exports.add("render_blurred",
                [](joy::context& ctx, int64_t width, int64_t height,
                   double sigma) -> joy::future<joy::value> {
                  auto image = render(ctx, width, height, 256);
                  if (!image)
                    return image.error();
                  return ctx.api().call("gpu", "gaussian_blur",
                                        {std::move(*image), joy::value{sigma}});
                },
                {"width", "height", "sigma"});
  p.on_setup([cuda](joy::context& ctx) {
    ctx.api().log(cuda.devices > 0
                    ? "fractal: rendering on CUDA"
                    : "fractal: rendering on the CPU (" + cuda.reason + ")");
  });
  return joy::run_plugin(argc, argv, std::move(p));
}
