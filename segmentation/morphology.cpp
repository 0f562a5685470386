#include "segmentation/morphology.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "segmentation/near_feature.hpp"

namespace lungvol::seg {

SliceRange this_thread_slices(std::size_t nz) {
  int nt = 1, t = 0;
#ifdef _OPENMP
  nt = omp_get_num_threads();
  t = omp_get_thread_num();
#endif
  return {nz * std::size_t(t) / std::size_t(nt), nz * std::size_t(t + 1) / std::size_t(nt)};
}

namespace {

using detail::kInf;

// 1-D squared distance transform of sampled function f (n samples, spacing h) into d.
// Scratch buffers v (int) and z (float, n+1) are supplied by the caller to avoid allocation.
void edt_1d(const float* f, float* d, std::size_t n, double h, int* v, float* z) {
  const float h2 = static_cast<float>(h * h);
  int k = -1;
  for (std::size_t q = 0; q < n; ++q) {
    if (f[q] == kInf) continue;
    const float fq = f[q] + h2 * float(q) * float(q);
    while (k >= 0) {
      const int p = v[k];
      const float fp = f[p] + h2 * float(p) * float(p);
      const float s = (fq - fp) / (2.0f * h2 * float(int(q) - p));
      if (s <= z[k]) {
        --k;
      } else {
        ++k;
        v[k] = int(q);
        z[k] = s;
        z[k + 1] = kInf;
        break;
      }
    }
    if (k < 0) {
      k = 0;
      v[0] = int(q);
      z[0] = -kInf;
      z[1] = kInf;
    }
  }
  if (k < 0) {
    std::fill(d, d + n, kInf);
    return;
  }
  int j = 0;
  for (std::size_t q = 0; q < n; ++q) {
    while (z[j + 1] < float(q)) ++j;
    const float diff = float(int(q) - v[j]);
    d[q] = f[v[j]] + h2 * diff * diff;
  }
}

// Runs edt_1d along `axis` for every line of the volume, in place. Lines along j and k are
// strided in memory, so they are processed kBlock neighbouring lines at a time: gathering and
// scattering whole cache lines instead of one float per cache line. Lines that are all zero or
// all infinite are skipped, and such lines bunch up (the airway sits at the top of the scan),
// so the lines are handed out dynamically: halves of the volume could differ several-fold.
constexpr std::size_t kBlock = 16;

// edt_1d of a line holding only 0 (feature) and +inf: the lower envelope reduces to the nearest
// feature, found by one scan in each direction. Same float expression as edt_1d's
// (0 + (h2 * diff) * diff), so the same values.
void edt_binary_1d(float* p, std::size_t n, double h) {
  const float h2 = static_cast<float>(h * h);
  constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  std::size_t last = kNone;
  for (std::size_t q = 0; q < n; ++q) {  // distance to the nearest feature at or before q
    if (p[q] == 0.0f) {
      last = q;
    } else if (last != kNone) {
      const float diff = float(q - last);
      p[q] = h2 * diff * diff;
    }
  }
  last = kNone;
  for (std::size_t q = n; q-- > 0;) {  // ... or after q, if nearer
    if (p[q] == 0.0f) {
      last = q;
    } else if (last != kNone) {
      const float diff = float(last - q);
      p[q] = std::min(p[q], h2 * diff * diff);
    }
  }
}

// binary: `a` holds only 0 and +inf (the first axis transformed).
void edt_axis(VoxelVector<float>& a, const Geometry& g, int axis, bool binary) {
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const std::size_t n = g.size[axis];
  const double h = g.spacing[axis];
  if (axis == 0) {
#pragma omp parallel
    {
      std::vector<float> out(n), z(n + 1);
      std::vector<int> v(n);
#pragma omp for schedule(dynamic, 64)
      for (std::ptrdiff_t line = 0; line < std::ptrdiff_t(ny * nz); ++line) {
        float* p = a.data() + std::size_t(line) * nx;
        bool any_finite = false, any_nonzero = false;
        for (std::size_t q = 0; q < n; ++q) {
          any_finite |= p[q] != kInf;
          any_nonzero |= p[q] != 0.0f;
        }
        if (!any_finite || !any_nonzero) continue;  // all infinite or all zero: unchanged
        if (binary) {
          edt_binary_1d(p, n, h);
          continue;
        }
        edt_1d(p, out.data(), n, h, v.data(), z.data());
        std::copy(out.begin(), out.end(), p);
      }
    }
    return;
  }
  // axis 1: lines indexed by (i, k), stride nx; axis 2: lines indexed by (i, j), stride nx*ny.
  const std::size_t stride = axis == 1 ? nx : nx * ny;
  const std::size_t outer = axis == 1 ? nz : ny;
  const std::size_t outer_stride = axis == 1 ? nx * ny : nx;
  const std::size_t blocks_per_row = (nx + kBlock - 1) / kBlock;
#pragma omp parallel
  {
    std::vector<float> in(n * kBlock), out(n), z(n + 1);
    std::vector<int> v(n);
#pragma omp for schedule(dynamic, 4)
    for (std::ptrdiff_t t = 0; t < std::ptrdiff_t(outer * blocks_per_row); ++t) {
      const std::size_t o = std::size_t(t) / blocks_per_row;
      const std::size_t i0 = (std::size_t(t) % blocks_per_row) * kBlock;
      const std::size_t width = std::min(kBlock, nx - i0);
      const std::size_t base = o * outer_stride + i0;
      for (std::size_t q = 0; q < n; ++q) {
        const float* src = a.data() + base + q * stride;
        for (std::size_t b = 0; b < width; ++b) in[b * n + q] = src[b];
      }
      for (std::size_t b = 0; b < width; ++b) {
        float* line = in.data() + b * n;
        bool any_finite = false, any_nonzero = false;
        for (std::size_t q = 0; q < n; ++q) {
          any_finite |= line[q] != kInf;
          any_nonzero |= line[q] != 0.0f;
        }
        if (!any_finite || !any_nonzero) continue;
        edt_1d(line, out.data(), n, h, v.data(), z.data());
        std::copy(out.begin(), out.end(), line);
      }
      for (std::size_t q = 0; q < n; ++q) {
        float* dst = a.data() + base + q * stride;
        for (std::size_t b = 0; b < width; ++b) dst[b] = in[b * n + q];
      }
    }
  }
}

}  // namespace

VoxelVector<float> squared_distance_to(const MaskImage& feature) {
  VoxelVector<float> d(feature.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(d.size()); ++n) {
    d[n] = feature[n] ? 0.0f : kInf;
  }
  bool binary = true;
  for (int axis = 0; axis < 3; ++axis) {
    if (feature.geom.size[axis] <= 1) continue;
    edt_axis(d, feature.geom, axis, binary);
    binary = false;
  }
  return d;
}

namespace detail {

Window window_for(const Geometry& g, float r2) {
  Window w;
  for (int axis = 0; axis < 3; ++axis) {
    const float h2 = static_cast<float>(g.spacing[axis] * g.spacing[axis]);
    auto cost = [&](std::size_t a) { return h2 * float(a) * float(a); };
    std::size_t a = 0;
    while (a + 1 < g.size[axis] && cost(a + 1) <= r2) ++a;
    w.reach[axis] = a;
    for (std::size_t b = 0; b <= a; ++b) w.cost[axis].push_back(cost(b));
  }
  return w;
}

// Beyond this many neighbours in all, the transform is faster.
constexpr std::size_t kMaxWindowTaps = 40;

bool window_is_small(const Window& w) {
  return 2 * (w.reach[0] + w.reach[1] + w.reach[2]) + 3 <= kMaxWindowTaps;
}

}  // namespace detail

MaskImage dilate(const MaskImage& mask, double radius_mm) {
  return near_feature(
      mask.geom, radius_mm, [&](std::size_t n) { return mask[n] != 0; },
      [](std::size_t, bool near) { return near; });
}

// Outside the image is not background: only voxels of the image are features.
MaskImage erode(const MaskImage& mask, double radius_mm) {
  return near_feature(
      mask.geom, radius_mm, [&](std::size_t n) { return mask[n] == 0; },
      [&](std::size_t n, bool near) { return mask[n] != 0 && !near; });
}

MaskImage close(const MaskImage& mask, double radius_mm) {
  return erode(dilate(mask, radius_mm), radius_mm);
}
MaskImage open(const MaskImage& mask, double radius_mm) {
  return dilate(erode(mask, radius_mm), radius_mm);
}

void keep_border_connected_2d(std::size_t nx, std::size_t ny, std::uint8_t* m,
                              std::vector<std::size_t>& runs) {
  thread_local std::vector<std::size_t> row_first, parent;
  thread_local std::vector<std::uint8_t> border;
  runs.clear();  // begin, end of each run, row by row
  row_first.assign(ny + 1, 0);
  for (std::size_t j = 0; j < ny; ++j) {
    const std::uint8_t* row = m + j * nx;
    std::size_t i = 0;
    while (i < nx) {
      while (i < nx && !row[i]) ++i;
      if (i == nx) break;
      runs.push_back(i);
      while (i < nx && row[i]) ++i;
      runs.push_back(i);
    }
    row_first[j + 1] = runs.size() / 2;
  }
  const std::size_t n = runs.size() / 2;
  parent.resize(n);
  for (std::size_t r = 0; r < n; ++r) parent[r] = r;
  const auto find = [&](std::size_t x) {
    while (parent[x] != x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  for (std::size_t j = 1; j < ny; ++j) {  // join runs overlapping the row above
    std::size_t a = row_first[j - 1], b = row_first[j];
    while (a < row_first[j] && b < row_first[j + 1]) {
      const std::size_t a_end = runs[2 * a + 1], b_end = runs[2 * b + 1];
      if (a_end <= runs[2 * b]) {
        ++a;
      } else if (b_end <= runs[2 * a]) {
        ++b;
      } else {
        const std::size_t ra = find(a), rb = find(b);
        if (ra < rb) parent[rb] = ra;
        if (rb < ra) parent[ra] = rb;
        if (a_end < b_end) {
          ++a;
        } else {
          ++b;
        }
      }
    }
  }
  border.assign(n, 0);
  for (std::size_t j = 0; j < ny; ++j) {
    for (std::size_t r = row_first[j]; r < row_first[j + 1]; ++r) {
      if (j == 0 || j + 1 == ny || runs[2 * r] == 0 || runs[2 * r + 1] == nx) border[find(r)] = 1;
    }
  }
  for (std::size_t j = 0; j < ny; ++j) {
    for (std::size_t r = row_first[j]; r < row_first[j + 1]; ++r) {
      if (!border[find(r)]) std::fill(m + j * nx + runs[2 * r], m + j * nx + runs[2 * r + 1], 0);
    }
  }
}

void fill_holes_2d(MaskImage& mask) {
  const std::size_t nx = mask.geom.size[0], ny = mask.geom.size[1], nz = mask.geom.size[2];
  const std::size_t sxy = nx * ny;
#pragma omp parallel
  {
    std::vector<std::uint8_t> outside;
    std::vector<std::size_t> stack;
#pragma omp for schedule(dynamic, 4)
    for (std::ptrdiff_t k = 0; k < std::ptrdiff_t(nz); ++k) {
      std::uint8_t* s = mask.data.data() + std::size_t(k) * sxy;
      flood_from_border_2d(
          nx, ny, [&](std::size_t p) { return s[p] == 0; }, outside, stack);
      for (std::size_t p = 0; p < sxy; ++p) {
        if (!outside[p]) s[p] = 1;
      }
    }
  }
}

template <class T>
Box bounding_box(const Image<T>& image, T value, double margin_mm) {
  const Geometry& g = image.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  Box b;
  b.lo = {nx, ny, nz};
  b.hi = {0, 0, 0};
#pragma omp parallel
  {
    Box local;
    local.lo = {nx, ny, nz};
    local.hi = {0, 0, 0};
#pragma omp for schedule(static)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
      const std::size_t k = std::size_t(kk);
      for (std::size_t j = 0; j < ny; ++j) {
        const T* row = &image.at(0, j, k);
        // A branch-free (vectorised) test of the whole row first, then the first and last hit
        // from either end: most rows are all background or hit near their ends.
        unsigned hits = 0;
        if (value == T{}) {
          for (std::size_t i = 0; i < nx; ++i) hits += row[i] != T{};
        } else {
          for (std::size_t i = 0; i < nx; ++i) hits += row[i] == value;
        }
        if (!hits) continue;
        const auto hit = [&](T v) { return value == T{} ? v != T{} : v == value; };
        std::size_t first = 0, last = nx - 1;
        while (!hit(row[first])) ++first;
        while (!hit(row[last])) --last;
        local.lo[0] = std::min(local.lo[0], first);
        local.hi[0] = std::max(local.hi[0], last + 1);
        local.lo[1] = std::min(local.lo[1], j);
        local.hi[1] = std::max(local.hi[1], j + 1);
        local.lo[2] = std::min(local.lo[2], k);
        local.hi[2] = std::max(local.hi[2], k + 1);
      }
    }
#pragma omp critical(lungvol_bounding_box)
    for (int a = 0; a < 3; ++a) {
      b.lo[a] = std::min(b.lo[a], local.lo[a]);
      b.hi[a] = std::max(b.hi[a], local.hi[a]);
    }
  }
  if (b.empty()) return Box{};
  for (int a = 0; a < 3; ++a) {
    const auto m = std::size_t(std::ceil(margin_mm / g.spacing[a]));
    b.lo[a] = b.lo[a] > m ? b.lo[a] - m : 0;
    b.hi[a] = std::min(g.size[a], b.hi[a] + m);
  }
  return b;
}

template <class T>
Image<T> crop(const Image<T>& image, const Box& box) {
  Geometry g = image.geom;
  for (int a = 0; a < 3; ++a) g.size[a] = box.hi[a] - box.lo[a];
  g.origin = image.geom.to_physical(double(box.lo[0]), double(box.lo[1]), double(box.lo[2]));
  Image<T> out(g, typename Image<T>::Uninitialised{});  // every row is copied below
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(g.size[2]); ++kk) {
    const std::size_t k = std::size_t(kk);
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      const T* src = &image.at(box.lo[0], box.lo[1] + j, box.lo[2] + k);
      std::copy(src, src + g.size[0], &out.at(0, j, k));
    }
  }
  return out;
}

void paste_nonzero(MaskImage& image, const MaskImage& part, const Box& box, std::uint8_t value) {
  const Geometry& g = part.geom;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(g.size[2]); ++kk) {
    const std::size_t k = std::size_t(kk);
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        if (part.at(i, j, k)) image.at(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k) = value;
      }
    }
  }
}

std::size_t count_nonzero(const MaskImage& mask) {
  std::size_t c = 0;
#pragma omp parallel for reduction(+ : c) schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(mask.size()); ++n) c += mask[n] != 0;
  return c;
}

template Box bounding_box(const Image<std::uint8_t>&, std::uint8_t, double);
template Box bounding_box(const Image<std::int16_t>&, std::int16_t, double);
template Image<std::uint8_t> crop(const Image<std::uint8_t>&, const Box&);
template Image<std::int16_t> crop(const Image<std::int16_t>&, const Box&);

}  // namespace lungvol::seg
