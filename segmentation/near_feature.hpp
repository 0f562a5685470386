#pragma once
// Morphology on a mask given as a predicate: the distance to the voxels where feature(n) holds,
// thresholded at a radius, handed to a caller's function instead of written out. A pipeline step
// that would build a mask only to dilate it, then combine the result with other masks, becomes
// one pass over the volume (dilate and erode are built on it too).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/image.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {
namespace detail {

inline constexpr float kInf = std::numeric_limits<float>::infinity();

// Small radii (a few voxels along every axis): the squared distance only matters up to r^2, so
// instead of the full transform it is a windowed minimum of (h*a)^2 over the +-A neighbours
// along each axis in turn, A = the largest offset with (h*A)^2 <= r^2. Offsets beyond the
// window cost more than r^2 on their own, so the thresholded result is the same as with the
// transform (same float expressions, (h2*a)*a, summed in the same axis order). The passes are
// vectorisable minima over whole rows, and slices are produced on demand into a small ring
// buffer per thread: no float copy of the volume.
struct Window {
  std::array<std::size_t, 3> reach{0, 0, 0};
  std::array<std::vector<float>, 3> cost;  // cost[axis][a] = (h^2 * a) * a, a = 0..reach
};
Window window_for(const Geometry& g, float r2);
// The windowed passes cost about (2A+1) vector operations per axis, the transform a few dozen
// scalar ones: false when the transform is the faster.
bool window_is_small(const Window& w);
// d[i] = min(d[i], s[i + shift] + c) over the valid range of a row of n values. Inline: it is
// the inner loop of every windowed pass, in whichever file instantiates near_feature.
inline void min_shifted(float* d, const float* s, std::size_t n, std::ptrdiff_t shift, float c) {
  const std::size_t lo = shift < 0 ? std::size_t(-shift) : 0;
  const std::size_t hi = shift > 0 ? n - std::size_t(shift) : n;
  for (std::size_t i = lo; i < hi; ++i) d[i] = std::min(d[i], s[std::ptrdiff_t(i) + shift] + c);
}

// Squared distance (up to the window) within axial slice k, over the i and j axes.
template <class Feature>
void slice_distance(const Geometry& g, std::size_t k, const Window& w, Feature feature,
                    std::vector<float>& f, std::vector<float>& d1, float* d2) {
  const std::size_t nx = g.size[0], ny = g.size[1], sxy = nx * ny;
  f.resize(nx);
  d1.resize(sxy);
  for (std::size_t j = 0; j < ny; ++j) {
    const std::size_t base = k * sxy + j * nx;
    float* d = d1.data() + j * nx;
    bool any = false;
    for (std::size_t i = 0; i < nx; ++i) {
      const bool on = feature(base + i);
      f[i] = on ? 0.0f : kInf;
      any |= on;
    }
    std::copy(f.begin(), f.end(), d);
    if (!any) continue;
    for (std::size_t a = 1; a <= w.reach[0]; ++a) {
      min_shifted(d, f.data(), nx, std::ptrdiff_t(a), w.cost[0][a]);
      min_shifted(d, f.data(), nx, -std::ptrdiff_t(a), w.cost[0][a]);
    }
  }
  std::copy(d1.begin(), d1.end(), d2);
  for (std::size_t b = 1; b <= w.reach[1]; ++b) {
    const float c = w.cost[1][b];
    for (std::size_t j = 0; j < ny; ++j) {
      float* d = d2 + j * nx;
      if (j >= b) min_shifted(d, d1.data() + (j - b) * nx, nx, 0, c);
      if (j + b < ny) min_shifted(d, d1.data() + (j + b) * nx, nx, 0, c);
    }
  }
}

// out[n] = keep(n, d2(n)) with d2 the windowed squared distance to `feature`.
template <class Feature, class Keep>
MaskImage windowed(const Geometry& g, const Window& w, Feature feature, Keep keep) {
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  const std::size_t az = w.reach[2], slots = 2 * az + 1;
  MaskImage out(g, MaskImage::Uninitialised{});  // every voxel is written below
#pragma omp parallel
  {
    const auto [k0, k1] = this_thread_slices(nz);
    std::vector<float> ring(k1 > k0 ? slots * sxy : 0), f, d1, acc(nx);
    std::vector<std::size_t> held(slots, nz);  // slice held by each slot (nz: none)
    auto slice = [&](std::size_t s) {
      float* p = ring.data() + (s % slots) * sxy;
      if (held[s % slots] != s) {
        slice_distance(g, s, w, feature, f, d1, p);
        held[s % slots] = s;
      }
      return static_cast<const float*>(p);
    };
    for (std::size_t k = k0; k < k1; ++k) {
      for (std::size_t c = 0; c <= az; ++c) {  // make sure the window's slices are held
        if (k >= c) slice(k - c);
        if (k + c < nz) slice(k + c);
      }
      const float* centre = slice(k);
      for (std::size_t j = 0; j < ny; ++j) {
        std::copy(centre + j * nx, centre + (j + 1) * nx, acc.begin());
        for (std::size_t c = 1; c <= az; ++c) {
          if (k >= c) min_shifted(acc.data(), slice(k - c) + j * nx, nx, 0, w.cost[2][c]);
          if (k + c < nz) min_shifted(acc.data(), slice(k + c) + j * nx, nx, 0, w.cost[2][c]);
        }
        const std::size_t base = k * sxy + j * nx;
        for (std::size_t i = 0; i < nx; ++i) out[base + i] = keep(base + i, acc[i]);
      }
    }
  }
  return out;
}

}  // namespace detail

// out[n] = keep(n, near) for every voxel n of grid g, where near tells whether some voxel m with
// feature(m) lies within radius_mm of n (Euclidean, in millimetres; the same voxels as
// dilate(mask of feature, radius_mm)). feature and keep are called from several threads, for
// voxels of different slices; they must only read shared state.
template <class Feature, class Keep>
MaskImage near_feature(const Geometry& g, double radius_mm, Feature feature, Keep keep) {
  const float r2 = float(radius_mm * radius_mm);
  const detail::Window w = detail::window_for(g, r2);
  if (detail::window_is_small(w)) {
    return detail::windowed(g, w, feature,
                            [&](std::size_t n, float d) { return keep(n, d <= r2); });
  }
  MaskImage on(g, MaskImage::Uninitialised{});
  for_each_voxel(on.size(), [&](std::size_t n) { on[n] = feature(n) ? 1 : 0; });
  const auto d = squared_distance_to(on);
  for_each_voxel(on.size(), [&](std::size_t n) { on[n] = keep(n, d[n] <= r2) ? 1 : 0; });
  return on;
}

}  // namespace lungvol::seg
