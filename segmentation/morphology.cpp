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

// Runs edt_1d along `axis` for every line of the volume, in place.
void edt_axis(std::vector<float>& a, const Geometry& g, int axis) {
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const std::size_t n = g.size[axis];
  const std::size_t stride = axis == 0 ? 1 : axis == 1 ? nx : nx * ny;
  const std::size_t lines = g.voxel_count() / n;
#pragma omp parallel
  {
    std::vector<float> in(n), out(n), z(n + 1);
    std::vector<int> v(n);
#pragma omp for schedule(static)
    for (std::ptrdiff_t line = 0; line < std::ptrdiff_t(lines); ++line) {
      std::size_t base;
      if (axis == 0) {
        base = std::size_t(line) * nx;
      } else if (axis == 1) {
        base = (std::size_t(line) / nx) * nx * ny + std::size_t(line) % nx;
      } else {
        base = std::size_t(line);
      }
      bool any = false;
      for (std::size_t q = 0; q < n; ++q) {
        in[q] = a[base + q * stride];
        any |= in[q] != kInf;
      }
      if (!any) continue;
      edt_1d(in.data(), out.data(), n, g.spacing[axis], v.data(), z.data());
      for (std::size_t q = 0; q < n; ++q) a[base + q * stride] = out[q];
    }
  }
  (void)nz;
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
    std::vector<std::uint8_t> outside(sxy);
    std::vector<std::size_t> stack;
#pragma omp for schedule(dynamic, 4)
    for (std::ptrdiff_t k = 0; k < std::ptrdiff_t(nz); ++k) {
      std::uint8_t* s = mask.data.data() + std::size_t(k) * sxy;
      std::fill(outside.begin(), outside.end(), 0);
      stack.clear();
      auto seed = [&](std::size_t p) {
        if (!s[p] && !outside[p]) {
          outside[p] = 1;
          stack.push_back(p);
        }
      };
      for (std::size_t i = 0; i < nx; ++i) {
        seed(i);
        seed((ny - 1) * nx + i);
      }
      for (std::size_t j = 0; j < ny; ++j) {
        seed(j * nx);
        seed(j * nx + nx - 1);
      }
      while (!stack.empty()) {
        const std::size_t p = stack.back();
        stack.pop_back();
        const std::size_t i = p % nx, j = p / nx;
        if (i > 0) seed(p - 1);
        if (i + 1 < nx) seed(p + 1);
        if (j > 0) seed(p - nx);
        if (j + 1 < ny) seed(p + nx);
      }
      for (std::size_t p = 0; p < sxy; ++p) {
        if (!outside[p]) s[p] = 1;
      }
    }
  }
}

template <class T>
Box bounding_box(const Image<T>& image, T value, double margin_mm) {
  const Geometry& g = image.geom;
  Box b;
  b.lo = {g.size[0], g.size[1], g.size[2]};
  b.hi = {0, 0, 0};
  std::size_t n = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      for (std::size_t i = 0; i < g.size[0]; ++i, ++n) {
        const bool hit = value == T{} ? image[n] != T{} : image[n] == value;
        if (!hit) continue;
        b.lo[0] = std::min(b.lo[0], i);
        b.lo[1] = std::min(b.lo[1], j);
        b.lo[2] = std::min(b.lo[2], k);
        b.hi[0] = std::max(b.hi[0], i + 1);
        b.hi[1] = std::max(b.hi[1], j + 1);
        b.hi[2] = std::max(b.hi[2], k + 1);
      }
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
