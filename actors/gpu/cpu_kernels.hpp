// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The `gpu` service's functions on the CPU (DESIGN §9): what a node without
/// a device runs, and what the CUDA path must agree with. Each takes and
/// returns Joy ndarrays and refuses what it cannot do with a clear
/// `invalid_argument`.
///
/// * `gaussian_blur(image, sigma)`: 2-D (H x W) or 3-D (D x H x W) float32
///   or uint8 arrays. A separable Gaussian of radius ceil(3 sigma) (at most
///   `max_blur_radius`), normalised, edges clamped; every axis of the array
///   is blurred. The result has the input's dtype and shape (uint8 rounded
///   to nearest and clamped). sigma 0 returns the input unchanged.
/// * `matmul(a, b)`: 2-D float32 or float64 of one dtype, (m x k)(k x n).
///   float32 accumulates in float32, like cuBLAS's default.
/// * `stats(array)`: `{min, max, mean, std}` as float64 (population std) of
///   any dtype; NaNs propagate as in numpy.
#pragma once

#include <cstdint>

#include <caf/expected.hpp>

#include "runtime/value.hpp"

namespace joy::gpu {

/// The blur's largest kernel radius: sigma above max_blur_radius / 3 is
/// refused (the kernel would outgrow any image worth blurring).
constexpr int max_blur_radius = 1024;

/// The normalised 1-D Gaussian weights for `sigma` (2 r + 1 of them).
caf::expected<std::vector<float>> gaussian_weights(double sigma);

// -- argument checks ----------------------------------------------------------

// What each function refuses, shared with the CUDA backend so that both
// refuse the same calls with the same words. `caf::none` means go ahead.

/// gaussian_blur's checks: the array, its dtype and rank, then sigma.
caf::error check_blur(const ndarray& image, double sigma);

/// matmul's checks: both arrays, their dtypes and shapes, the result's size.
caf::error check_matmul(const ndarray& a, const ndarray& b);

/// stats' checks: a valid, readable, non-empty array.
caf::error check_stats(const ndarray& array);

// -- functions ----------------------------------------------------------------

caf::expected<ndarray> gaussian_blur(const ndarray& image, double sigma);

caf::expected<ndarray> matmul(const ndarray& a, const ndarray& b);

caf::expected<value_map> stats(const ndarray& array);

} // namespace joy::gpu
