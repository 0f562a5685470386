#pragma once
// Counter-based Gaussian noise: the value at a voxel depends only on (seed, voxel index), so
// images are identical for any thread count or loop order.
#include <cmath>
#include <cstdint>

namespace lungvol::phantom {

inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Two independent standard normal values for voxel pair `pair` (voxels 2*pair, 2*pair+1),
// by Box-Muller on two 24-bit uniforms; |value| < 5.9 by construction.
inline void gaussian_pair(std::uint64_t key, std::uint64_t pair, float& n0, float& n1) {
  const std::uint64_t h = mix64(key ^ mix64(pair));
  const float u1 = (static_cast<float>(h >> 40) + 0.5f) * 0x1.0p-24f;
  const float u2 = (static_cast<float>(h & 0xFFFFFFu) + 0.5f) * 0x1.0p-24f;
  const float r = std::sqrt(-2.0f * std::log(u1));
  const float t = 6.2831853071795864f * u2;
  n0 = r * std::cos(t);
  n1 = r * std::sin(t);
}

}  // namespace lungvol::phantom
