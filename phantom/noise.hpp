#pragma once
// Counter-based Gaussian noise: the value at a voxel depends only on (seed, voxel index), so
// images are identical for any thread count or loop order.
#include <array>
#include <cstdint>

namespace lungvol::phantom {

inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Standard normal quantiles at (m + 0.5) / 65536: a 16-bit uniform picks a normal value by
// table look-up (inverse transform), so one 64-bit hash gives four values. The distribution is
// the normal, discretised to 65536 equiprobable levels and bounded by |x| < 4.34.
const std::array<float, 65536>& normal_quantiles();

// Four independent standard normal values for voxels 4*block .. 4*block+3.
inline void gaussian_quad(const std::array<float, 65536>& q, std::uint64_t key, std::uint64_t block,
                          float out[4]) {
  const std::uint64_t h = mix64(key ^ mix64(block));
  for (int n = 0; n < 4; ++n) out[n] = q[(h >> (16 * n)) & 0xFFFFu];
}

}  // namespace lungvol::phantom
