#include "segmentation/morphology.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lungvol::seg {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

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
// scattering whole cache lines instead of one float per cache line.
constexpr std::size_t kBlock = 16;

void edt_axis(std::vector<float>& a, const Geometry& g, int axis) {
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const std::size_t n = g.size[axis];
  const double h = g.spacing[axis];
  if (axis == 0) {
#pragma omp parallel
    {
      std::vector<float> out(n), z(n + 1);
      std::vector<int> v(n);
#pragma omp for schedule(static)
      for (std::ptrdiff_t line = 0; line < std::ptrdiff_t(ny * nz); ++line) {
        float* p = a.data() + std::size_t(line) * nx;
        bool any_finite = false, any_nonzero = false;
        for (std::size_t q = 0; q < n; ++q) {
          any_finite |= p[q] != kInf;
          any_nonzero |= p[q] != 0.0f;
        }
        if (!any_finite || !any_nonzero) continue;  // all infinite or all zero: unchanged
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
#pragma omp for schedule(static)
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

std::vector<float> squared_distance_to(const MaskImage& feature) {
  std::vector<float> d(feature.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(d.size()); ++n) {
    d[n] = feature[n] ? 0.0f : kInf;
  }
  for (int axis = 0; axis < 3; ++axis) {
    if (feature.geom.size[axis] > 1) edt_axis(d, feature.geom, axis);
  }
  return d;
}

MaskImage dilate(const MaskImage& mask, double radius_mm) {
  const auto d = squared_distance_to(mask);
  const float r2 = float(radius_mm * radius_mm);
  MaskImage out(mask.geom, 0);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(d.size()); ++n) out[n] = d[n] <= r2;
  return out;
}

MaskImage erode(const MaskImage& mask, double radius_mm) {
  MaskImage background(mask.geom, 0);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(mask.size()); ++n) background[n] = !mask[n];
  const auto d = squared_distance_to(background);
  const float r2 = float(radius_mm * radius_mm);
  MaskImage out(mask.geom, 0);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(d.size()); ++n) out[n] = mask[n] && d[n] > r2;
  return out;
}

MaskImage close(const MaskImage& mask, double radius_mm) {
  return erode(dilate(mask, radius_mm), radius_mm);
}
MaskImage open(const MaskImage& mask, double radius_mm) {
  return dilate(erode(mask, radius_mm), radius_mm);
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
      flood_from_border_2d(nx, ny, [&](std::size_t p) { return s[p] == 0; }, outside, stack);
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
        std::size_t first = nx, last = 0;
        for (std::size_t i = 0; i < nx; ++i) {
          const bool hit = value == T{} ? row[i] != T{} : row[i] == value;
          if (hit) {
            if (first == nx) first = i;
            last = i;
          }
        }
        if (first == nx) continue;
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
  Image<T> out(g);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      const T* src = &image.at(box.lo[0], box.lo[1] + j, box.lo[2] + k);
      std::copy(src, src + g.size[0], &out.at(0, j, k));
    }
  }
  return out;
}

void paste_nonzero(MaskImage& image, const MaskImage& part, const Box& box, std::uint8_t value) {
  const Geometry& g = part.geom;
  for (std::size_t k = 0; k < g.size[2]; ++k) {
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
