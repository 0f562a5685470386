#pragma once
// Voxel-centre rasterisation over a shape's bounding box. The phantom grid has an identity
// direction, so index -> LPS is origin + index * spacing.
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "core/image.hpp"
#include "phantom/shapes.hpp"

namespace lungvol::phantom {

struct IndexRange {
  std::ptrdiff_t lo[3] = {0, 0, 0};
  std::ptrdiff_t hi[3] = {0, 0, 0};  // exclusive
  bool empty() const { return hi[0] <= lo[0] || hi[1] <= lo[1] || hi[2] <= lo[2]; }
  std::size_t voxels() const {
    return empty() ? 0
                   : static_cast<std::size_t>((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
  }
};

inline constexpr std::size_t kParallelVoxels = 1 << 16;

inline IndexRange index_range(const Geometry& g, const Box& b) {
  IndexRange r;
  const double lo[3] = {b.lo.x, b.lo.y, b.lo.z};
  const double hi[3] = {b.hi.x, b.hi.y, b.hi.z};
  for (int a = 0; a < 3; ++a) {
    const auto n = static_cast<std::ptrdiff_t>(g.size[a]);
    const double f_lo = std::ceil((lo[a] - g.origin[a]) / g.spacing[a] - 1e-9);
    const double f_hi = std::floor((hi[a] - g.origin[a]) / g.spacing[a] + 1e-9) + 1;
    r.lo[a] = static_cast<std::ptrdiff_t>(std::clamp(f_lo, 0.0, static_cast<double>(n)));
    r.hi[a] = static_cast<std::ptrdiff_t>(std::clamp(f_hi, 0.0, static_cast<double>(n)));
  }
  return r;
}

inline Vec3 voxel_centre(const Geometry& g, std::ptrdiff_t i, std::ptrdiff_t j, std::ptrdiff_t k) {
  return {g.origin[0] + static_cast<double>(i) * g.spacing[0],
          g.origin[1] + static_cast<double>(j) * g.spacing[1],
          g.origin[2] + static_cast<double>(k) * g.spacing[2]};
}

// Calls f(linear_index, centre) for every voxel whose centre lies in `box`; slices run in
// parallel, and each call touches only its own voxel, so the result is thread-count independent.
template <class F>
void for_each_voxel(const Geometry& g, const Box& box, F&& f) {
  const IndexRange r = index_range(g, box);
  if (r.empty()) return;
  // Small shapes (vessel segments) run serially: a thread team per segment costs more than
  // it saves, and much more on a loaded machine.
  const bool parallel = r.voxels() > kParallelVoxels;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (std::ptrdiff_t k = r.lo[2]; k < r.hi[2]; ++k) {
    for (std::ptrdiff_t j = r.lo[1]; j < r.hi[1]; ++j) {
      std::size_t n = g.index(static_cast<std::size_t>(r.lo[0]), static_cast<std::size_t>(j),
                              static_cast<std::size_t>(k));
      for (std::ptrdiff_t i = r.lo[0]; i < r.hi[0]; ++i, ++n) f(n, voxel_centre(g, i, j, k));
    }
  }
}

// Number of voxels in `box` satisfying pred(linear_index, centre).
template <class P>
std::size_t count_voxels(const Geometry& g, const Box& box, P&& pred) {
  const IndexRange r = index_range(g, box);
  if (r.empty()) return 0;
  std::size_t count = 0;
  const bool parallel = r.voxels() > kParallelVoxels;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : count) if (parallel)
  for (std::ptrdiff_t k = r.lo[2]; k < r.hi[2]; ++k) {
    for (std::ptrdiff_t j = r.lo[1]; j < r.hi[1]; ++j) {
      std::size_t n = g.index(static_cast<std::size_t>(r.lo[0]), static_cast<std::size_t>(j),
                              static_cast<std::size_t>(k));
      for (std::ptrdiff_t i = r.lo[0]; i < r.hi[0]; ++i, ++n) {
        if (pred(n, voxel_centre(g, i, j, k))) ++count;
      }
    }
  }
  return count;
}

}  // namespace lungvol::phantom
