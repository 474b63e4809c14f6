// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The CUDA backend (DESIGN §9): the functions of cpu_kernels.hpp on one
/// device, asynchronously. An operation checks its arguments with the CPU's
/// checks, queues its copies and kernels on the backend's stream and
/// returns; a stream callback answers when the device is done.
///
/// * Device memory comes from the device's stream-ordered pool
///   (cudaMallocFromPoolAsync), kept cached between calls, and is freed in
///   stream order before the callback, so the callback has no CUDA to do.
/// * Inputs of 1 MiB and more are registered in place (cudaHostRegister,
///   read-only: they are often a read-only mapping of another process's
///   shared memory), so the copy engine reads them with no host copy. When
///   that fails (the pages are registered already, e.g. by an operation in
///   flight on the same array), and for small inputs, the bytes go through
///   a pinned staging buffer.
/// * Results land in a pinned buffer that the result ndarray adopts, with
///   no further copy; dropping the ndarray returns the buffer to the pool.
/// * Completion uses cudaStreamAddCallback, not cudaLaunchHostFunc: a host
///   function is never called once the context has failed, which would
///   leave its caller unanswered, while a stream callback is called exactly
///   once, with the error.
/// * The callback must not call CUDA, so what a finished operation leaves
///   behind (host registrations, staging buffers, its hold on the inputs) is
///   released by a reaper thread, one per backend.
/// * A failure that leaves the context unusable ("sticky") marks the backend
///   lost: every later operation fails at once (the node restarts the
///   process).
///
/// Numerics follow the CPU: the blur multiplies and adds in float32 in the
/// CPU's order, with no fused multiply-add (__fmul_rn / __fadd_rn, and the
/// file is compiled with --fmad=false), so results are usually bit-equal;
/// matmul is cuBLAS in its default math mode (no TF32); stats accumulate in
/// double, in a different order than the CPU.

#include "actors/gpu/backend.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <math_constants.h>

#include "actors/gpu/cpu_kernels.hpp"
#include "actors/gpu/devices.hpp"
#include "runtime/errc.hpp"

namespace joy::gpu {

namespace {

// -- tuning -------------------------------------------------------------------

/// Threads per block of every kernel (the reductions assume a power of 2).
constexpr unsigned block_threads = 256;

/// Blocks of an element-wise kernel; each thread strides over the rest.
constexpr unsigned max_blocks = 4096;

/// Blocks of a reduction's first pass: its partial results are reduced by
/// one block.
constexpr unsigned max_reduce_blocks = 1024;

/// Inputs from this size up are registered in place rather than copied
/// through a staging buffer: registering costs a system call and pins pages,
/// worth it only when it saves a large copy.
constexpr std::size_t register_threshold = std::size_t{1} << 20;

/// Pinned memory the pool keeps for reuse; more is freed. Pinned memory is
/// locked RAM, taken from everyone else on the machine.
constexpr std::size_t max_cached_pinned = std::size_t{256} << 20;

/// The smallest pinned buffer; sizes are rounded up to a power of two up to
/// `pinned_pow2_limit`, then to MiB, so that buffers can be reused.
constexpr std::size_t min_pinned = std::size_t{64} << 10;
constexpr std::size_t pinned_pow2_limit = std::size_t{64} << 20;

unsigned blocks_for(uint64_t count, unsigned cap) {
  return static_cast<unsigned>(
    std::min<uint64_t>((count + block_threads - 1) / block_threads, cap));
}

// -- ping kernel --------------------------------------------------------------

/// ping's kernel: its launch and completion are what is measured.
__global__ void nothing() {
  // nop
}

// -- blur kernels -------------------------------------------------------------

__global__ void to_float(const uint8_t* __restrict__ in,
                         float* __restrict__ out, uint64_t count) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += uint64_t{gridDim.x} * blockDim.x)
    out[i] = static_cast<float>(in[i]);
}

/// One 1-D pass along an axis of `n` elements, `stride` apart: each output
/// is the weighted sum over the 2 r + 1 window, edges clamped, in the CPU's
/// order and rounding (no fused multiply-add).
__global__ void blur_axis(const float* __restrict__ src,
                          float* __restrict__ dst, const float* __restrict__ w,
                          int r, uint64_t n, uint64_t stride, uint64_t count) {
  auto last = static_cast<int64_t>(n) - 1;
  for (uint64_t e = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; e < count;
       e += uint64_t{gridDim.x} * blockDim.x) {
    auto i = static_cast<int64_t>((e / stride) % n);
    // The element of this line at index 0 along the axis.
    auto base = e - static_cast<uint64_t>(i) * stride;
    float acc = 0.0f;
    for (int j = -r; j <= r; ++j) {
      auto at = i + j;
      at = at < 0 ? 0 : (at > last ? last : at);
      acc = __fadd_rn(
        acc,
        __fmul_rn(w[j + r], src[base + static_cast<uint64_t>(at) * stride]));
    }
    dst[e] = acc;
  }
}

/// Round half to even (as std::nearbyint), then clamp to [0, 255].
__global__ void to_uint8(const float* __restrict__ in,
                         uint8_t* __restrict__ out, uint64_t count) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += uint64_t{gridDim.x} * blockDim.x)
    out[i] = static_cast<uint8_t>(fminf(fmaxf(rintf(in[i]), 0.0f), 255.0f));
}

// -- stats kernels ------------------------------------------------------------

/// Element types the device reads with other than a plain load.
struct bool_tag {};
struct half_tag {};

/// Element i as a double, as cpu_kernels.cpp's element() reads it.
template <class T>
__device__ double load(const void* p, uint64_t i) {
  return static_cast<double>(static_cast<const T*>(p)[i]);
}

template <>
__device__ double load<bool_tag>(const void* p, uint64_t i) {
  return static_cast<const uint8_t*>(p)[i] != 0 ? 1.0 : 0.0;
}

template <>
__device__ double load<half_tag>(const void* p, uint64_t i) {
  // Half to float is exact, subnormals, infinities and NaN included.
  auto bits = static_cast<const unsigned short*>(p)[i];
  return static_cast<double>(__half2float(__ushort_as_half(bits)));
}

/// The first pass's summary of a range.
struct moments {
  double lo;
  double hi;
  double sum;
  int nan;
};

__device__ moments no_moments() {
  return {CUDART_INF, -CUDART_INF, 0.0, 0};
}

__device__ moments combine(const moments& a, const moments& b) {
  return {b.lo < a.lo ? b.lo : a.lo, b.hi > a.hi ? b.hi : a.hi,
          __dadd_rn(a.sum, b.sum), a.nan | b.nan};
}

__device__ double combine(double a, double b) {
  return __dadd_rn(a, b);
}

/// Reduces one value per thread of the block with `combine`; every thread
/// gets the result.
template <class T>
__device__ T block_reduce(T x) {
  __shared__ T part[block_threads];
  part[threadIdx.x] = x;
  __syncthreads();
  for (unsigned half = block_threads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      part[threadIdx.x] = combine(part[threadIdx.x], part[threadIdx.x + half]);
    __syncthreads();
  }
  return part[0];
}

/// Slots of the stats result in device memory: what the caller gets
/// (min, max, mean, std), then the NaN flag.
enum : int { res_min, res_max, res_mean, res_std, res_nan, res_size };

template <class T>
__global__ void moments_pass(const void* __restrict__ in, uint64_t count,
                             moments* __restrict__ partial) {
  auto m = no_moments();
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += uint64_t{gridDim.x} * blockDim.x) {
    auto x = load<T>(in, i);
    if (isnan(x))
      m.nan = 1;
    m.lo = x < m.lo ? x : m.lo;
    m.hi = x > m.hi ? x : m.hi;
    m.sum = __dadd_rn(m.sum, x);
  }
  auto total = block_reduce(m);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = total;
}

__global__ void moments_final(const moments* __restrict__ partial,
                              unsigned parts, uint64_t count,
                              double* __restrict__ result) {
  auto m = no_moments();
  for (unsigned i = threadIdx.x; i < parts; i += blockDim.x)
    m = combine(m, partial[i]);
  auto total = block_reduce(m);
  if (threadIdx.x == 0) {
    result[res_min] = total.lo;
    result[res_max] = total.hi;
    result[res_mean] = __ddiv_rn(total.sum, static_cast<double>(count));
    result[res_nan] = total.nan;
  }
}

/// The sum of squared deviations from the mean (the second pass, as on the
/// CPU, rather than a one-pass formula that loses precision).
template <class T>
__global__ void squares_pass(const void* __restrict__ in, uint64_t count,
                             const double* __restrict__ result,
                             double* __restrict__ partial) {
  auto mean = result[res_mean];
  double sq = 0.0;
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += uint64_t{gridDim.x} * blockDim.x) {
    auto d = __dsub_rn(load<T>(in, i), mean);
    sq = __dadd_rn(sq, __dmul_rn(d, d));
  }
  auto total = block_reduce(sq);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = total;
}

__global__ void squares_final(const double* __restrict__ partial,
                              unsigned parts, uint64_t count,
                              double* __restrict__ result) {
  double sq = 0.0;
  for (unsigned i = threadIdx.x; i < parts; i += blockDim.x)
    sq = __dadd_rn(sq, partial[i]);
  auto total = block_reduce(sq);
  if (threadIdx.x == 0) {
    result[res_std] = __dsqrt_rn(__ddiv_rn(total, static_cast<double>(count)));
    // NaN anywhere makes every statistic NaN, as in numpy.
    if (result[res_nan] != 0.0)
      for (int i = res_min; i <= res_std; ++i)
        result[i] = CUDART_NAN;
  }
}

/// Queues the four stats kernels; `moments_part` and `squares_part` hold
/// `blocks` entries each, `result` res_size doubles.
template <class T>
cudaError_t launch_stats_as(const void* in, uint64_t count, unsigned blocks,
                            moments* moments_part, double* squares_part,
                            double* result, cudaStream_t s) {
  moments_pass<T><<<blocks, block_threads, 0, s>>>(in, count, moments_part);
  moments_final<<<1, block_threads, 0, s>>>(moments_part, blocks, count,
                                            result);
  squares_pass<T>
    <<<blocks, block_threads, 0, s>>>(in, count, result, squares_part);
  squares_final<<<1, block_threads, 0, s>>>(squares_part, blocks, count,
                                            result);
  return cudaGetLastError();
}

cudaError_t launch_stats(dtype type, const void* in, uint64_t count,
                         unsigned blocks, moments* moments_part,
                         double* squares_part, double* result, cudaStream_t s) {
  auto go = [&](auto tag) {
    return launch_stats_as<decltype(tag)>(in, count, blocks, moments_part,
                                          squares_part, result, s);
  };
  switch (type) {
    case dtype::bool_:
      return go(bool_tag{});
    case dtype::int8:
      return go(int8_t{});
    case dtype::uint8:
      return go(uint8_t{});
    case dtype::int16:
      return go(int16_t{});
    case dtype::uint16:
      return go(uint16_t{});
    case dtype::int32:
      return go(int32_t{});
    case dtype::uint32:
      return go(uint32_t{});
    case dtype::int64:
      return go(int64_t{});
    case dtype::uint64:
      return go(uint64_t{});
    case dtype::float16:
      return go(half_tag{});
    case dtype::float32:
      return go(float{});
    case dtype::float64:
      return go(double{});
  }
  return cudaErrorInvalidValue;
}

// -- pinned memory ------------------------------------------------------------

/// Reusable pinned host buffers: staging for inputs, landing for results.
/// Buffers come back from any thread, the driver's callback thread
/// included, so giving one back never calls CUDA while the pool is open;
/// the excess is freed by `trim`, which only runs off the callback thread.
class pinned_pool : public std::enable_shared_from_this<pinned_pool> {
public:
  /// A buffer whose deleter gives it back to the pool.
  using block = std::shared_ptr<std::byte>;

  ~pinned_pool() {
    close();
  }

  /// A buffer of at least `size` bytes: a cached one that fits, or a new
  /// one. Not on the callback thread (it may call cudaHostAlloc).
  cudaError_t take(std::size_t size, block& out) {
    auto want = rounded(size);
    std::byte* p = nullptr;
    std::size_t capacity = 0;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      // The smallest cached buffer that fits and wastes at most half.
      auto best = free_.end();
      for (auto i = free_.begin(); i != free_.end(); ++i)
        if (i->second >= size && i->second <= 2 * want
            && (best == free_.end() || i->second < best->second))
          best = i;
      if (best != free_.end()) {
        p = best->first;
        capacity = best->second;
        cached_ -= capacity;
        free_.erase(best);
      }
    }
    if (p == nullptr) {
      void* raw = nullptr;
      // Portable: the buffer is pinned for every device's context, so a
      // result of one device may be staged to another.
      if (auto err = cudaHostAlloc(&raw, want, cudaHostAllocPortable);
          err != cudaSuccess)
        return err;
      p = static_cast<std::byte*>(raw);
      capacity = want;
    }
    auto self = shared_from_this();
    out = block{
      p, [self, capacity](std::byte* q) { self->give_back(q, capacity); }};
    return cudaSuccess;
  }

  /// Frees cached buffers beyond `max_cached_pinned`, oldest first. Not on
  /// the callback thread.
  void trim() {
    std::vector<std::byte*> doomed;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      while (cached_ > max_cached_pinned && !free_.empty()) {
        cached_ -= free_.front().second;
        doomed.push_back(free_.front().first);
        free_.pop_front();
      }
    }
    for (auto* p : doomed)
      free_host(p);
  }

  /// Frees every cached buffer; buffers given back from now on are freed
  /// at once (by then no callback of the backend can run).
  void close() {
    std::deque<std::pair<std::byte*, std::size_t>> doomed;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      closed_ = true;
      doomed.swap(free_);
      cached_ = 0;
    }
    for (auto& x : doomed)
      free_host(x.first);
  }

private:
  static std::size_t rounded(std::size_t size) {
    if (size <= min_pinned)
      return min_pinned;
    if (size <= pinned_pow2_limit) {
      auto out = min_pinned;
      while (out < size)
        out *= 2;
      return out;
    }
    constexpr std::size_t mib = std::size_t{1} << 20;
    return (size + mib - 1) / mib * mib;
  }

  static void free_host(std::byte* p) {
    // Nothing to do about a failure (a lost device, the runtime unloading
    // at exit); clear it so that it is not reported by a later call.
    if (cudaFreeHost(p) != cudaSuccess)
      cudaGetLastError();
  }

  void give_back(std::byte* p, std::size_t capacity) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (!closed_) {
        free_.emplace_back(p, capacity);
        cached_ += capacity;
        return;
      }
    }
    free_host(p);
  }

  std::mutex mutex_;
  /// Cached buffers and their capacities, oldest first.
  std::deque<std::pair<std::byte*, std::size_t>> free_;
  std::size_t cached_ = 0;
  bool closed_ = false;
};

// -- operations ---------------------------------------------------------------

class cuda_backend;

/// One operation from its submission until the reaper releases it: what it
/// must keep alive until its copies have run, and how to make its result.
struct op {
  cuda_backend* owner = nullptr;
  backend::done_fn done;
  /// The arguments, whose bytes the copies read (and which may be the last
  /// hold on a shared-memory mapping): dropped by the reaper.
  std::vector<ndarray> inputs;
  /// Device allocations, freed in stream order before the callback.
  std::vector<void*> device;
  /// Page-aligned starts of host ranges registered for this operation.
  std::vector<void*> registered;
  std::vector<pinned_pool::block> staging;
  /// Where the result lands.
  pinned_pool::block output;
  /// Makes the result from `output`; runs on the callback thread, so it
  /// must not call CUDA.
  std::function<caf::expected<value>(const op&)> finish;
  /// A failure while queueing: reported instead of a result.
  caf::error error;
  /// The stream's status when the callback ran.
  cudaError_t status = cudaSuccess;
};

class cuda_backend final : public backend {
public:
  explicit cuda_backend(int index)
    : index_(index), pinned_(std::make_shared<pinned_pool>()) {
    // nop
  }

  /// Waits for every operation in flight (each is answered), then releases
  /// the device's resources.
  ~cuda_backend() override {
    // Best effort from here on: a failure only means there is less to free.
    cudaSetDevice(index_);
    if (stream_ != nullptr)
      cudaStreamSynchronize(stream_);
    if (reaper_.joinable()) {
      std::unique_lock<std::mutex> lock{reap_mutex_};
      // Every stream callback runs exactly once, even after a device error,
      // and hands its operation to the reaper: this wait ends.
      idle_.wait(lock, [this] { return in_flight_ == 0; });
      stopping_ = true;
      lock.unlock();
      work_.notify_all();
      reaper_.join();
    }
    if (blas_ != nullptr)
      cublasDestroy(blas_);
    if (stream_ != nullptr)
      cudaStreamDestroy(stream_);
    // Results still out keep their buffers; they are freed when dropped.
    pinned_->close();
    if (pool_ != nullptr)
      cudaMemPoolTrimTo(pool_, 0);
    cudaGetLastError();
  }

  /// Opens the device: its properties, stream, memory pool, cuBLAS handle
  /// and reaper thread.
  caf::error open() {
    if (auto err = cudaSetDevice(index_); err != cudaSuccess)
      return cuda_error("cudaSetDevice", err);
    cudaDeviceProp prop{};
    if (auto err = cudaGetDeviceProperties(&prop, index_); err != cudaSuccess)
      return cuda_error("cudaGetDeviceProperties", err);
    device_ = device_info{index_, prop.name, prop.totalGlobalMem, prop.major,
                          prop.minor};
    int pools = 0, can_register = 0, read_only = 0;
    if (auto err = cudaDeviceGetAttribute(
          &pools, cudaDevAttrMemoryPoolsSupported, index_);
        err != cudaSuccess)
      return cuda_error("cudaDeviceGetAttribute", err);
    if (pools == 0)
      return make_error(errc::unavailable,
                        prefix() + "no stream-ordered memory pools");
    // Either may be missing (then inputs are staged); asking cannot fail
    // where the attribute above could be read.
    cudaDeviceGetAttribute(&can_register, cudaDevAttrHostRegisterSupported,
                           index_);
    cudaDeviceGetAttribute(&read_only, cudaDevAttrHostRegisterReadOnlySupported,
                           index_);
    cudaGetLastError();
    can_register_ = can_register != 0;
    // Read-only registration is what a read-only mapping needs; without it
    // only writable memory registers, and the rest is staged.
    register_flags_
      = read_only != 0 ? cudaHostRegisterReadOnly : cudaHostRegisterDefault;
    if (auto err = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
        err != cudaSuccess)
      return cuda_error("cudaStreamCreateWithFlags", err);
    if (auto err = cudaDeviceGetDefaultMemPool(&pool_, index_);
        err != cudaSuccess)
      return cuda_error("cudaDeviceGetDefaultMemPool", err);
    // Keep freed memory in the pool rather than returning it to the driver
    // at every synchronisation: the next call reuses it.
    uint64_t keep = UINT64_MAX;
    if (auto err = cudaMemPoolSetAttribute(
          pool_, cudaMemPoolAttrReleaseThreshold, &keep);
        err != cudaSuccess)
      return cuda_error("cudaMemPoolSetAttribute", err);
    if (auto st = cublasCreate(&blas_); st != CUBLAS_STATUS_SUCCESS) {
      blas_ = nullptr;
      return blas_error("cublasCreate", st);
    }
    if (auto st = cublasSetStream(blas_, stream_); st != CUBLAS_STATUS_SUCCESS)
      return blas_error("cublasSetStream", st);
    // The default mode computes float32 in float32: no TF32.
    if (auto st = cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH);
        st != CUBLAS_STATUS_SUCCESS)
      return blas_error("cublasSetMathMode", st);
    reaper_ = std::thread{[this] { reap(); }};
    return caf::none;
  }

  value describe() const override {
    auto out = to_value(device_);
    out.insert("kind", value{"cuda"});
    std::lock_guard<std::mutex> guard{lost_mutex_};
    if (lost_)
      out.insert("lost", value{lost_why_});
    return value{std::move(out)};
  }

  void ping(done_fn done) override {
    auto o = begin(done);
    if (!o)
      return;
    nothing<<<1, 1, 0, stream_>>>();
    if (auto err = launched("the empty kernel"))
      o->error = std::move(err);
    o->finish = [](const op&) -> caf::expected<value> { return value{}; };
    submit(std::move(o));
  }

  void gaussian_blur(ndarray image, double sigma, done_fn done) override {
    if (auto err = check_blur(image, sigma))
      return done(std::move(err));
    auto w = gaussian_weights(sigma);
    if (!w)
      return done(std::move(w.error()));
    // sigma 0: the input itself, as on the CPU.
    if (w->size() == 1)
      return done(value{std::move(image)});
    auto o = begin(done);
    if (!o)
      return;
    o->error = queue_blur(*o, std::move(image), *w);
    submit(std::move(o));
  }

  void matmul(ndarray a, ndarray b, done_fn done) override {
    if (auto err = check_matmul(a, b))
      return done(std::move(err));
    auto o = begin(done);
    if (!o)
      return;
    o->error = queue_matmul(*o, std::move(a), std::move(b));
    submit(std::move(o));
  }

  void stats(ndarray array, done_fn done) override {
    if (auto err = check_stats(array))
      return done(std::move(err));
    auto o = begin(done);
    if (!o)
      return;
    o->error = queue_stats(*o, std::move(array));
    submit(std::move(o));
  }

private:
  // -- errors -----------------------------------------------------------------

  std::string prefix() const {
    return "gpu " + std::to_string(index_) + ": ";
  }

  caf::error cuda_error(const std::string& what, cudaError_t err) const {
    return make_error(errc::unavailable,
                      prefix() + what + ": " + cudaGetErrorString(err));
  }

  caf::error blas_error(const std::string& what, cublasStatus_t st) const {
    return make_error(errc::unavailable,
                      prefix() + what + ": " + cublasGetStatusString(st));
  }

  /// An error for a failed call while queueing; marks the backend lost when
  /// the failure left the context unusable.
  caf::error fail(const std::string& what, cudaError_t err) {
    // A failed call also leaves its error as this thread's "last error":
    // clear it, so that a later launch check does not report it again.
    cudaGetLastError();
    auto out = cuda_error(what, err);
    check_context(out);
    return out;
  }

  caf::error fail(const std::string& what, cublasStatus_t st) {
    cudaGetLastError();
    auto out = blas_error(what, st);
    check_context(out);
    return out;
  }

  /// Marks the backend lost if the context no longer works: a sticky error
  /// is returned by every call, this query included.
  void check_context(const caf::error& cause) {
    auto st = cudaStreamQuery(stream_);
    if (st != cudaSuccess && st != cudaErrorNotReady) {
      cudaGetLastError();
      mark_lost(message_of(cause));
    }
  }

  void mark_lost(const std::string& why) {
    std::lock_guard<std::mutex> guard{lost_mutex_};
    if (!lost_) {
      lost_why_ = why;
      lost_ = true;
    }
  }

  bool lost() const noexcept override {
    std::lock_guard<std::mutex> guard{lost_mutex_};
    return lost_;
  }

  caf::error lost_error() const {
    std::lock_guard<std::mutex> guard{lost_mutex_};
    return make_error(errc::unavailable,
                      prefix()
                        + "the device is unusable since an earlier "
                          "failure ("
                        + lost_why_ + "); the process must restart");
  }

  // -- queueing ---------------------------------------------------------------

  /// A new operation answering through `done`, or null after answering it
  /// with an error (the device is lost).
  std::unique_ptr<op> begin(done_fn& done) {
    if (lost_) {
      done(lost_error());
      return nullptr;
    }
    // Each CAF worker thread has its own current device.
    if (auto err = cudaSetDevice(index_); err != cudaSuccess) {
      done(fail("cudaSetDevice", err));
      return nullptr;
    }
    // A stale error of this thread must not be blamed on this operation.
    cudaGetLastError();
    pinned_->trim();
    auto o = std::make_unique<op>();
    o->owner = this;
    o->done = std::move(done);
    std::lock_guard<std::mutex> guard{reap_mutex_};
    ++in_flight_;
    return o;
  }

  /// Device memory for the operation, freed when it completes.
  caf::error allocate(op& o, std::size_t bytes, void** out) {
    if (auto err = cudaMallocFromPoolAsync(out, bytes, pool_, stream_);
        err != cudaSuccess)
      return fail("cudaMallocAsync of " + std::to_string(bytes) + " bytes",
                  err);
    o.device.push_back(*out);
    return caf::none;
  }

  /// A pinned buffer of `size` bytes, held by the operation in `out`.
  caf::error pinned(std::size_t size, pinned_pool::block& out) {
    if (auto err = pinned_->take(size, out); err != cudaSuccess)
      return fail("cudaHostAlloc of " + std::to_string(size) + " bytes", err);
    return caf::none;
  }

  /// Queues the copy of `a`'s bytes to `dst`: from the array's own pages,
  /// registered for the operation, or through a staging buffer.
  caf::error upload(op& o, const ndarray& a, void* dst) {
    o.inputs.push_back(a);
    auto* src = static_cast<const void*>(a.data.data());
    auto size = a.data.size();
    bool direct = false;
    if (can_register_ && size >= register_threshold) {
      auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
      auto first = reinterpret_cast<uintptr_t>(src) & ~(page - 1);
      auto end
        = (reinterpret_cast<uintptr_t>(src) + size + page - 1) & ~(page - 1);
      auto* start = reinterpret_cast<void*>(first);
      if (cudaHostRegister(start, end - first, register_flags_)
          == cudaSuccess) {
        o.registered.push_back(start);
        direct = true;
      } else {
        // Registered already (another operation on the same pages, or
        // pinned memory), or not registrable: stage it.
        cudaGetLastError();
      }
    }
    if (!direct) {
      pinned_pool::block stage;
      if (auto err = pinned(size, stage))
        return err;
      std::memcpy(stage.get(), src, size);
      src = stage.get();
      o.staging.push_back(std::move(stage));
    }
    if (auto err
        = cudaMemcpyAsync(dst, src, size, cudaMemcpyHostToDevice, stream_);
        err != cudaSuccess)
      return fail("cudaMemcpyAsync to the device", err);
    return caf::none;
  }

  /// Queues the copy of `size` host bytes (small: staged) to `dst`.
  caf::error upload(op& o, const void* src, std::size_t size, void* dst) {
    pinned_pool::block stage;
    if (auto err = pinned(size, stage))
      return err;
    std::memcpy(stage.get(), src, size);
    auto err = cudaMemcpyAsync(dst, stage.get(), size, cudaMemcpyHostToDevice,
                               stream_);
    o.staging.push_back(std::move(stage));
    if (err != cudaSuccess)
      return fail("cudaMemcpyAsync to the device", err);
    return caf::none;
  }

  /// Queues the copy of the result's `size` bytes into `o.output`.
  caf::error download(op& o, const void* src, std::size_t size) {
    if (auto err = pinned(size, o.output))
      return err;
    if (auto err = cudaMemcpyAsync(o.output.get(), src, size,
                                   cudaMemcpyDeviceToHost, stream_);
        err != cudaSuccess)
      return fail("cudaMemcpyAsync from the device", err);
    return caf::none;
  }

  /// Checks the launch of the kernels just queued.
  caf::error launched(const char* what) {
    if (auto err = cudaGetLastError(); err != cudaSuccess)
      return fail(what, err);
    return caf::none;
  }

  caf::error queue_blur(op& o, ndarray image, const std::vector<float>& w) {
    auto count = *image.element_count();
    auto bytes = image.type == dtype::uint8;
    auto blocks = blocks_for(count, max_blocks);
    void *x = nullptr, *y = nullptr, *weights = nullptr, *raw = nullptr;
    if (auto err = allocate(o, count * sizeof(float), &x))
      return err;
    if (auto err = allocate(o, count * sizeof(float), &y))
      return err;
    if (auto err = allocate(o, w.size() * sizeof(float), &weights))
      return err;
    if (bytes) {
      if (auto err = allocate(o, count, &raw))
        return err;
      if (auto err = upload(o, image, raw))
        return err;
      to_float<<<blocks, block_threads, 0, stream_>>>(
        static_cast<const uint8_t*>(raw), static_cast<float*>(x), count);
      if (auto err = launched("the uint8 to float kernel"))
        return err;
    } else if (auto err = upload(o, image, x)) {
      return err;
    }
    if (auto err = upload(o, w.data(), w.size() * sizeof(float), weights))
      return err;
    auto r = static_cast<int>(w.size() / 2);
    // Every axis in order, ping-ponging between x and y; x holds the last.
    for (std::size_t axis = 0; axis < image.shape.size(); ++axis) {
      uint64_t stride = 1;
      for (auto i = axis + 1; i < image.shape.size(); ++i)
        stride *= image.shape[i];
      blur_axis<<<blocks, block_threads, 0, stream_>>>(
        static_cast<const float*>(x), static_cast<float*>(y),
        static_cast<const float*>(weights), r, image.shape[axis], stride,
        count);
      if (auto err = launched("the blur kernel"))
        return err;
      std::swap(x, y);
    }
    if (bytes) {
      to_uint8<<<blocks, block_threads, 0, stream_>>>(
        static_cast<const float*>(x), static_cast<uint8_t*>(raw), count);
      if (auto err = launched("the float to uint8 kernel"))
        return err;
      x = raw;
    }
    auto size = count * itemsize(image.type);
    if (auto err = download(o, x, size))
      return err;
    o.finish = [type = image.type, shape = image.shape,
                size](const op& x) -> caf::expected<value> {
      return value{
        ndarray{type, shape, buffer::adopt(x.output, x.output.get(), size)}};
    };
    return caf::none;
  }

  caf::error queue_matmul(op& o, ndarray a, ndarray b) {
    auto m = a.shape[0], k = a.shape[1], n = b.shape[1];
    auto size = m * n * itemsize(a.type);
    void *da = nullptr, *db = nullptr, *dc = nullptr;
    if (auto err = allocate(o, a.data.size(), &da))
      return err;
    if (auto err = allocate(o, b.data.size(), &db))
      return err;
    if (auto err = allocate(o, size, &dc))
      return err;
    if (auto err = upload(o, a, da))
      return err;
    if (auto err = upload(o, b, db))
      return err;
    // cuBLAS is column-major, and a row-major matrix is its transpose: C^T
    // = B^T A^T is the column-major product of b (n x k) and a (k x m). The
    // 64-bit API: no dimension limit below the memory's.
    auto mi = static_cast<int64_t>(m), ki = static_cast<int64_t>(k),
         ni = static_cast<int64_t>(n);
    if (a.type == dtype::float32) {
      float one = 1, zero = 0;
      if (auto st = cublasSgemm_64(blas_, CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki,
                                   &one, static_cast<const float*>(db), ni,
                                   static_cast<const float*>(da), ki, &zero,
                                   static_cast<float*>(dc), ni);
          st != CUBLAS_STATUS_SUCCESS)
        return fail("cublasSgemm", st);
    } else {
      double one = 1, zero = 0;
      if (auto st = cublasDgemm_64(blas_, CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki,
                                   &one, static_cast<const double*>(db), ni,
                                   static_cast<const double*>(da), ki, &zero,
                                   static_cast<double*>(dc), ni);
          st != CUBLAS_STATUS_SUCCESS)
        return fail("cublasDgemm", st);
    }
    if (auto err = download(o, dc, size))
      return err;
    o.finish
      = [type = a.type, m, n, size](const op& x) -> caf::expected<value> {
      return value{
        ndarray{type, {m, n}, buffer::adopt(x.output, x.output.get(), size)}};
    };
    return caf::none;
  }

  caf::error queue_stats(op& o, ndarray array) {
    auto count = *array.element_count();
    auto blocks = blocks_for(count, max_reduce_blocks);
    void *in = nullptr, *moments_part = nullptr, *squares_part = nullptr,
         *result = nullptr;
    if (auto err = allocate(o, array.data.size(), &in))
      return err;
    if (auto err = allocate(o, blocks * sizeof(moments), &moments_part))
      return err;
    if (auto err = allocate(o, blocks * sizeof(double), &squares_part))
      return err;
    if (auto err = allocate(o, res_size * sizeof(double), &result))
      return err;
    if (auto err = upload(o, array, in))
      return err;
    if (auto err = launch_stats(array.type, in, count, blocks,
                                static_cast<moments*>(moments_part),
                                static_cast<double*>(squares_part),
                                static_cast<double*>(result), stream_);
        err != cudaSuccess)
      return fail("the stats kernels", err);
    if (auto err = download(o, result, 4 * sizeof(double)))
      return err;
    o.finish = [](const op& x) -> caf::expected<value> {
      double r[4];
      std::memcpy(r, x.output.get(), sizeof r);
      value_map out;
      out.insert("min", value{r[res_min]});
      out.insert("max", value{r[res_max]});
      out.insert("mean", value{r[res_mean]});
      out.insert("std", value{r[res_std]});
      return value{std::move(out)};
    };
    return caf::none;
  }

  /// Frees the operation's device memory in stream order and queues its
  /// callback; if the callback cannot be queued, answers here.
  void submit(std::unique_ptr<op> o) {
    // Freed after the operation's kernels and copies, before its callback:
    // the callback has no CUDA to do.
    for (auto* p : o->device)
      if (auto err = cudaFreeAsync(p, stream_); err != cudaSuccess && !o->error)
        o->error = fail("cudaFreeAsync", err);
    o->device.clear();
    auto* raw = o.release();
    auto err = cudaStreamAddCallback(stream_, on_complete, raw, 0);
    if (err == cudaSuccess)
      return;
    o.reset(raw);
    if (!o->error)
      o->error = fail("cudaStreamAddCallback", err);
    // Nothing will call back: let what was queued stop reading the inputs
    // and staging buffers before the reaper releases them.
    if (cudaStreamSynchronize(stream_) != cudaSuccess)
      cudaGetLastError();
    o->done(std::move(o->error));
    retire(std::move(o));
  }

  /// The stream callback (the driver's thread; no CUDA here): answers, then
  /// hands the operation to the reaper.
  static void CUDART_CB on_complete(cudaStream_t, cudaError_t status,
                                    void* data) {
    std::unique_ptr<op> o{static_cast<op*>(data)};
    o->status = status;
    // After a device error, the reaper answers: it may call CUDA to name
    // the error.
    if (status == cudaSuccess) {
      if (o->error)
        o->done(std::move(o->error));
      else
        o->done(o->finish(*o));
    }
    auto* self = o->owner;
    self->retire(std::move(o));
  }

  // -- the reaper -------------------------------------------------------------

  void retire(std::unique_ptr<op> o) {
    {
      std::lock_guard<std::mutex> guard{reap_mutex_};
      finished_.push_back(std::move(o));
    }
    work_.notify_one();
  }

  /// Releases finished operations until the backend stops.
  void reap() {
    // Registrations belong to the device's context.
    if (cudaSetDevice(index_) != cudaSuccess)
      cudaGetLastError();
    std::unique_lock<std::mutex> lock{reap_mutex_};
    for (;;) {
      work_.wait(lock, [this] { return stopping_ || !finished_.empty(); });
      if (finished_.empty())
        return;
      auto o = std::move(finished_.front());
      finished_.pop_front();
      lock.unlock();
      release(*o);
      o.reset();
      pinned_->trim();
      lock.lock();
      --in_flight_;
      idle_.notify_all();
    }
  }

  void release(op& o) {
    if (o.status != cudaSuccess) {
      // The stream reports only errors that outlive the call that caused
      // them: the context is gone.
      auto err = cuda_error("a queued operation failed", o.status);
      mark_lost(message_of(err));
      o.done(std::move(err));
    }
    // Unregister before the inputs go: dropping them may unmap the pages.
    for (auto* p : o.registered)
      if (cudaHostUnregister(p) != cudaSuccess)
        cudaGetLastError();
    o.registered.clear();
    o.inputs.clear();
    o.staging.clear();
    o.output.reset();
  }

  // -- state ------------------------------------------------------------------

  int index_;
  /// What describe() shows, read when the device is opened.
  device_info device_;
  bool can_register_ = false;
  unsigned register_flags_ = cudaHostRegisterDefault;
  cudaStream_t stream_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  /// Shared with the result buffers, which may outlive the backend.
  std::shared_ptr<pinned_pool> pinned_;

  std::atomic<bool> lost_{false};
  mutable std::mutex lost_mutex_;
  std::string lost_why_;

  std::mutex reap_mutex_;
  /// Signals the reaper: an operation finished, or stop.
  std::condition_variable work_;
  /// Signals the destructor: an operation was released.
  std::condition_variable idle_;
  std::deque<std::unique_ptr<op>> finished_;
  /// Operations begun and not yet released.
  std::size_t in_flight_ = 0;
  bool stopping_ = false;
  std::thread reaper_;
};

} // namespace

caf::expected<std::unique_ptr<backend>> make_cuda_backend(int index) {
  auto out = std::make_unique<cuda_backend>(index);
  if (auto err = out->open())
    return err;
  return std::unique_ptr<backend>{std::move(out)};
}

} // namespace joy::gpu
