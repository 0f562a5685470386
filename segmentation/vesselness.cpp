#include "segmentation/vesselness.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <vector>

namespace lungvol::seg {
namespace {

using Index = std::ptrdiff_t;
using Dims = std::array<std::size_t, 3>;

// Gaussian kernels of one axis: each tap is the integral of the Gaussian (derivative) over its
// voxel, so they stay well-behaved down to sigma of about half a voxel (2 mm slices at the
// 1 mm scale). Derivatives are per millimetre. Moments are normalised: g0 sums to 1, g1 gives
// the slope of a ramp and g2 the curvature of a parabola exactly.
struct Kernels {
  Index radius = 1;
  std::vector<float> g0, g1, g2;  // tap b at index b + radius, b in [-radius, radius]
};

Kernels make_kernels(double sigma_vox, double spacing_mm) {
  Kernels k;
  const double s = std::max(sigma_vox, 0.3);
  k.radius = std::max<Index>(1, Index(std::ceil(3.0 * s + 0.5)));
  const auto phi = [&](double x) { return 0.5 * std::erfc(-x / (s * std::sqrt(2.0))); };
  const auto gauss = [&](double x) {
    return std::exp(-x * x / (2 * s * s)) / (s * std::sqrt(2 * M_PI));
  };
  const auto dgauss = [&](double x) { return -x / (s * s) * gauss(x); };
  const std::size_t n = std::size_t(2 * k.radius + 1);
  std::vector<double> g0(n), g1(n), g2(n);
  double sum0 = 0, m1 = 0, sum2 = 0;
  for (Index b = -k.radius; b <= k.radius; ++b) {
    const std::size_t t = std::size_t(b + k.radius);
    g0[t] = phi(b + 0.5) - phi(b - 0.5);
    g1[t] = gauss(b + 0.5) - gauss(b - 0.5);
    g2[t] = dgauss(b + 0.5) - dgauss(b - 0.5);
    sum0 += g0[t];
    m1 += -double(b) * g1[t];
    sum2 += g2[t];
  }
  double m2 = 0;
  for (Index b = -k.radius; b <= k.radius; ++b) {
    const std::size_t t = std::size_t(b + k.radius);
    g2[t] -= sum2 / double(n);
    m2 += 0.5 * double(b) * double(b) * g2[t];
  }
  k.g0.resize(n);
  k.g1.resize(n);
  k.g2.resize(n);
  for (std::size_t t = 0; t < n; ++t) {
    k.g0[t] = float(g0[t] / sum0);
    k.g1[t] = float(g1[t] / m1 / spacing_mm);
    k.g2[t] = float(g2[t] / m2 / (spacing_mm * spacing_mm));
  }
  return k;
}

// Values of a volume along a row, with indices clamped to the volume (edge voxels repeated).
struct CtSource {
  const CtImage* ct;
  float lo, hi;
  Dims size() const { return ct->geom.size; }
  void row(Index j, Index k, Index i0, std::size_t n, float* out) const {
    const Dims s = ct->geom.size;
    j = std::clamp<Index>(j, 0, Index(s[1]) - 1);
    k = std::clamp<Index>(k, 0, Index(s[2]) - 1);
    const std::int16_t* r = ct->data.data() + ct->geom.index(0, std::size_t(j), std::size_t(k));
    const Index last = Index(s[0]) - 1;
    for (std::size_t t = 0; t < n; ++t) {
      const Index i = std::clamp<Index>(i0 + Index(t), 0, last);
      out[t] = std::clamp(float(r[i]), lo, hi);
    }
  }
};

struct FloatSource {
  const float* data;
  Dims dims;
  Dims size() const { return dims; }
  void row(Index j, Index k, Index i0, std::size_t n, float* out) const {
    j = std::clamp<Index>(j, 0, Index(dims[1]) - 1);
    k = std::clamp<Index>(k, 0, Index(dims[2]) - 1);
    const float* r = data + (std::size_t(k) * dims[1] + std::size_t(j)) * dims[0];
    const Index last = Index(dims[0]) - 1;
    for (std::size_t t = 0; t < n; ++t) out[t] = r[std::clamp<Index>(i0 + Index(t), 0, last)];
  }
};

// out[i] += sum_b w[b] * in[i - b] for i in [0, n); `in` points at element 0 and is valid from
// -radius to n - 1 + radius.
inline void convolve_row(const float* in, float* out, std::size_t n, const std::vector<float>& w,
                         Index radius) {
  for (Index b = -radius; b <= radius; ++b) {
    const float c = w[std::size_t(b + radius)];
    const float* src = in - b;
    for (std::size_t i = 0; i < n; ++i) out[i] += c * src[i];
  }
}

// The Hessian at one scale over an output block of `dims` voxels whose voxel (0,0,0) is the
// source's voxel `offset`; the measure is passed to emit(n, strength) at active voxels only.
template <class Source, class Emit>
void hessian_pass(const Source& src, const std::array<Index, 3>& offset, const Dims& dims,
                  const std::array<double, 3>& spacing, const std::array<double, 3>& sigma_mm,
                  double nominal_sigma_mm, const std::uint8_t* active, Emit emit) {
  std::array<Kernels, 3> kern;
  for (int a = 0; a < 3; ++a) kern[a] = make_kernels(sigma_mm[a] / spacing[a], spacing[a]);
  const Index rx = kern[0].radius, ry = kern[1].radius, rz = kern[2].radius;
  const std::size_t n0 = dims[0], n1 = dims[1], n2 = dims[2], plane = n0 * n1;
  const std::size_t slots = std::size_t(2 * rz + 1);
  // Output slices that hold an active voxel.
  std::vector<std::uint8_t> slice_active(n2, 0);
#pragma omp parallel for schedule(static)
  for (Index k = 0; k < Index(n2); ++k) {
    const std::uint8_t* a = active + std::size_t(k) * plane;
    slice_active[std::size_t(k)] = std::any_of(a, a + plane, [](std::uint8_t v) { return v != 0; });
  }
#pragma omp parallel
  {
    const auto [k0, k1] = this_thread_slices(n2);
    // Per slot, six planes: d2/dx2, d2/dxdy, d2/dy2 (each smoothed along y), then x-derivative,
    // y-derivative and plain smoothing in the plane (for d2/dxdz, d2/dydz, d2/dz2).
    std::vector<float> ring(k1 > k0 ? slots * 6 * plane : 0);
    std::vector<Index> held(slots, std::numeric_limits<Index>::min());
    const std::size_t rows = n1 + std::size_t(2 * ry);
    std::vector<float> x0, x1, x2, line(n0 + std::size_t(2 * rx));
    if (k1 > k0) {
      x0.resize(rows * n0);
      x1.resize(rows * n0);
      x2.resize(rows * n0);
    }
    auto compute_plane = [&](Index s, float* p) {
      // x pass over every row the y pass needs
      for (std::size_t r = 0; r < rows; ++r) {
        const Index js = offset[1] - ry + Index(r);
        src.row(js, s, offset[0] - rx, line.size(), line.data());
        float* o0 = x0.data() + r * n0;
        float* o1 = x1.data() + r * n0;
        float* o2 = x2.data() + r * n0;
        std::fill(o0, o0 + n0, 0.0f);
        std::fill(o1, o1 + n0, 0.0f);
        std::fill(o2, o2 + n0, 0.0f);
        const float* in = line.data() + rx;
        convolve_row(in, o0, n0, kern[0].g0, rx);
        convolve_row(in, o1, n0, kern[0].g1, rx);
        convolve_row(in, o2, n0, kern[0].g2, rx);
      }
      // y pass: rows of the x-pass outputs combined with the y kernels
      std::fill(p, p + 6 * plane, 0.0f);
      for (std::size_t j = 0; j < n1; ++j) {
        float* xx = p + 0 * plane + j * n0;
        float* xy = p + 1 * plane + j * n0;
        float* yy = p + 2 * plane + j * n0;
        float* xz = p + 3 * plane + j * n0;
        float* yz = p + 4 * plane + j * n0;
        float* zz = p + 5 * plane + j * n0;
        for (Index b = -ry; b <= ry; ++b) {
          const std::size_t r = std::size_t(Index(j) + ry - b);
          const std::size_t t = std::size_t(b + ry);
          const float w0 = kern[1].g0[t], w1 = kern[1].g1[t], w2 = kern[1].g2[t];
          const float* a0 = x0.data() + r * n0;
          const float* a1 = x1.data() + r * n0;
          const float* a2 = x2.data() + r * n0;
          for (std::size_t i = 0; i < n0; ++i) {
            xx[i] += w0 * a2[i];
            xy[i] += w1 * a1[i];
            yy[i] += w2 * a0[i];
            xz[i] += w0 * a1[i];
            yz[i] += w1 * a0[i];
            zz[i] += w0 * a0[i];
          }
        }
      }
    };
    auto slot_of = [&](Index s) {
      const std::size_t slot = std::size_t(((s % Index(slots)) + Index(slots)) % Index(slots));
      float* p = ring.data() + slot * 6 * plane;
      if (held[slot] != s) {
        compute_plane(s, p);
        held[slot] = s;
      }
      return static_cast<const float*>(p);
    };
    std::vector<const float*> planes(slots);
    for (std::size_t k = k0; k < k1; ++k) {
      if (!slice_active[k]) continue;
      const Index ks = offset[2] + Index(k);
      for (Index b = -rz; b <= rz; ++b) planes[std::size_t(b + rz)] = slot_of(ks - b);
      const std::uint8_t* act = active + k * plane;
      for (std::size_t v = 0; v < plane; ++v) {
        if (!act[v]) continue;
        double h[6] = {0, 0, 0, 0, 0, 0};  // xx yy zz xy xz yz
        double d[3] = {0, 0, 0};           // gradient
        for (std::size_t t = 0; t < slots; ++t) {
          const float* p = planes[t];
          const double w0 = kern[2].g0[t], w1 = kern[2].g1[t], w2 = kern[2].g2[t];
          h[0] += w0 * p[v];
          h[3] += w0 * p[plane + v];
          h[1] += w0 * p[2 * plane + v];
          h[4] += w1 * p[3 * plane + v];
          h[5] += w1 * p[4 * plane + v];
          h[2] += w2 * p[5 * plane + v];
          d[0] += w0 * p[3 * plane + v];
          d[1] += w0 * p[4 * plane + v];
          d[2] += w1 * p[5 * plane + v];
        }
        const auto e = symmetric_eigenvalues({h[0], h[1], h[2], h[3], h[4], h[5]});
        const double grad = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        emit(k * plane + v, tube_measure(e, grad, nominal_sigma_mm));
      }
    }
  }
}

}  // namespace

std::array<double, 3> symmetric_eigenvalues(const std::array<double, 6>& m) {
  const double a11 = m[0], a22 = m[1], a33 = m[2], a12 = m[3], a13 = m[4], a23 = m[5];
  std::array<double, 3> e{};
  const double p1 = a12 * a12 + a13 * a13 + a23 * a23;
  const double q = (a11 + a22 + a33) / 3.0;
  const double p2 = (a11 - q) * (a11 - q) + (a22 - q) * (a22 - q) + (a33 - q) * (a33 - q) + 2 * p1;
  if (p2 <= 1e-30 * (q * q + 1e-300)) {
    e = {q, q, q};
  } else {
    const double p = std::sqrt(p2 / 6.0);
    const double b11 = (a11 - q) / p, b22 = (a22 - q) / p, b33 = (a33 - q) / p;
    const double b12 = a12 / p, b13 = a13 / p, b23 = a23 / p;
    const double det = b11 * (b22 * b33 - b23 * b23) - b12 * (b12 * b33 - b23 * b13) +
                       b13 * (b12 * b23 - b22 * b13);
    const double r = std::clamp(det / 2.0, -1.0, 1.0);
    const double phi = std::acos(r) / 3.0;
    const double l1 = q + 2 * p * std::cos(phi);
    const double l3 = q + 2 * p * std::cos(phi + 2.0 * M_PI / 3.0);
    e = {l1, 3 * q - l1 - l3, l3};
  }
  std::sort(e.begin(), e.end(), [](double x, double y) { return std::abs(x) < std::abs(y); });
  return e;
}

float tube_measure(const std::array<double, 3>& e, double gradient, double sigma_mm) {
  if (e[1] >= 0 || e[2] >= 0) return 0.0f;
  const double ratio = e[0] / e[1];  // 0 for a tube, 1 for a blob
  const double curvature = sigma_mm * sigma_mm * -e[1];
  const double edge = sigma_mm * gradient / curvature;  // 0 on a tube's axis
  // Blobs are damped by the third eigenvalue (Sato's line filter, alpha 0.5), and the flanks of a
  // tube or the edge of a plate by the gradient: on a tube's axis the gradient vanishes, at a
  // band's edge the curvature across it comes with a slope of the same order (gamma 0.5).
  constexpr double kAlpha = 0.5, kGamma = 0.5;
  const double damp = std::exp(-ratio * ratio / (2 * kAlpha * kAlpha)) *
                      std::exp(-edge * edge / (2 * kGamma * kGamma));
  return float(curvature * damp);
}

TubeStrength bright_tube_strength(const CtImage& ct, const Box& box, const MaskImage& active,
                                  const TubeOptions& options) {
  const Geometry& g = ct.geom;
  TubeStrength out;
  out.strength = Image<float>(active.geom, 0.0f);
  out.scale = Image<std::uint8_t>(active.geom, 0);
  const Dims dims = active.geom.size;
  const std::size_t nvox = active.size();
  if (nvox == 0 || options.scales_mm.empty()) return out;
  float* best = out.strength.data.data();
  std::uint8_t* best_scale = out.scale.data.data();
  const auto keep = [&](std::size_t n, float s, std::size_t scale) {
    if (s > best[n]) {
      best[n] = s;
      best_scale[n] = std::uint8_t(scale + 1);
    }
  };

  // Pyramid level of each scale: halve the grid along an axis while its voxels stay no larger
  // than the scale (sigma >= one voxel of the grid it is computed on).
  std::map<std::array<std::size_t, 3>, std::vector<std::size_t>> levels;
  for (std::size_t s = 0; s < options.scales_mm.size(); ++s) {
    std::array<std::size_t, 3> f{1, 1, 1};
    for (int a = 0; a < 3; ++a) {
      while (options.pyramid_sigma_voxels > 0 &&
             options.pyramid_sigma_voxels * g.spacing[a] * double(2 * f[a]) <=
                 options.scales_mm[s] + 1e-9) {
        f[a] *= 2;
      }
    }
    levels[f].push_back(s);
  }
  const CtSource ct_source{&ct, float(options.clip_lo_hu), float(options.clip_hi_hu)};
  for (const auto& [f, scales] : levels) {
    if (f == std::array<std::size_t, 3>{1, 1, 1}) {
      for (const std::size_t s : scales) {
        const double sigma = options.scales_mm[s];
        hessian_pass(ct_source, {Index(box.lo[0]), Index(box.lo[1]), Index(box.lo[2])}, dims,
                     g.spacing, {sigma, sigma, sigma}, sigma, active.data.data(),
                     [&](std::size_t n, float v) { keep(n, v, s); });
      }
      continue;
    }
    // Coarse grid: block means of f voxels over the box, plus a margin of context for the
    // largest kernel of this level (clamped reads beyond the image, like the fine pass).
    Dims nc{}, ext{};
    std::array<Index, 3> margin{};
    std::array<double, 3> hc{};
    double largest = 0;
    for (const std::size_t s : scales) largest = std::max(largest, options.scales_mm[s]);
    for (int a = 0; a < 3; ++a) {
      nc[a] = (dims[a] + f[a] - 1) / f[a];
      hc[a] = g.spacing[a] * double(f[a]);
      margin[a] = Index(std::ceil(3.0 * largest / hc[a] + 1.5));
      ext[a] = nc[a] + std::size_t(2 * margin[a]);
    }
    std::vector<float> coarse(ext[0] * ext[1] * ext[2]);
    const float inv = 1.0f / float(f[0] * f[1] * f[2]);
#pragma omp parallel
    {
      std::vector<float> line(ext[0] * f[0]), acc(ext[0]);
#pragma omp for schedule(static)
      for (Index kc = 0; kc < Index(ext[2]); ++kc) {
        for (std::size_t jc = 0; jc < ext[1]; ++jc) {
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (std::size_t dk = 0; dk < f[2]; ++dk) {
            const Index k = Index(box.lo[2]) + (kc - margin[2]) * Index(f[2]) + Index(dk);
            for (std::size_t dj = 0; dj < f[1]; ++dj) {
              const Index j = Index(box.lo[1]) + (Index(jc) - margin[1]) * Index(f[1]) + Index(dj);
              ct_source.row(j, k, Index(box.lo[0]) - margin[0] * Index(f[0]), line.size(),
                            line.data());
              for (std::size_t ic = 0; ic < ext[0]; ++ic) {
                for (std::size_t di = 0; di < f[0]; ++di) acc[ic] += line[ic * f[0] + di];
              }
            }
          }
          float* o = coarse.data() + (std::size_t(kc) * ext[1] + jc) * ext[0];
          for (std::size_t ic = 0; ic < ext[0]; ++ic) o[ic] = acc[ic] * inv;
        }
      }
    }
    // Active coarse voxels: a block holding an active voxel, and its 26 neighbours (the linear
    // interpolation below reads them).
    std::vector<std::uint8_t> hit(nc[0] * nc[1] * nc[2], 0), act(hit.size(), 0);
    for (std::size_t k = 0; k < dims[2]; ++k)
      for (std::size_t j = 0; j < dims[1]; ++j) {
        const std::uint8_t* a = active.data.data() + (k * dims[1] + j) * dims[0];
        const std::size_t base = ((k / f[2]) * nc[1] + j / f[1]) * nc[0];
        for (std::size_t i = 0; i < dims[0]; ++i) {
          if (a[i]) hit[base + i / f[0]] = 1;
        }
      }
    for (std::size_t k = 0; k < nc[2]; ++k)
      for (std::size_t j = 0; j < nc[1]; ++j)
        for (std::size_t i = 0; i < nc[0]; ++i) {
          if (!hit[(k * nc[1] + j) * nc[0] + i]) continue;
          for (std::size_t kk = k ? k - 1 : 0; kk <= std::min(k + 1, nc[2] - 1); ++kk)
            for (std::size_t jj = j ? j - 1 : 0; jj <= std::min(j + 1, nc[1] - 1); ++jj)
              for (std::size_t ii = i ? i - 1 : 0; ii <= std::min(i + 1, nc[0] - 1); ++ii)
                act[(kk * nc[1] + jj) * nc[0] + ii] = 1;
        }
    const FloatSource coarse_source{coarse.data(), ext};
    std::vector<float> value(act.size());
    for (const std::size_t s : scales) {
      const double sigma = options.scales_mm[s];
      // The block mean already blurs by a box of f voxels (variance (f^2 - 1) h^2 / 12).
      std::array<double, 3> sk{};
      for (int a = 0; a < 3; ++a) {
        const double box_var = double(f[a] * f[a] - 1) * g.spacing[a] * g.spacing[a] / 12.0;
        sk[a] = std::sqrt(std::max(sigma * sigma - box_var, 0.25 * hc[a] * hc[a]));
      }
      std::fill(value.begin(), value.end(), 0.0f);
      hessian_pass(coarse_source, margin, nc, hc, sk, sigma, act.data(),
                   [&](std::size_t n, float v) { value[n] = v; });
      // Linear interpolation of the coarse measure at the active fine voxels.
#pragma omp parallel for schedule(static)
      for (Index kk = 0; kk < Index(dims[2]); ++kk) {
        const std::size_t k = std::size_t(kk);
        const double ck = std::clamp((double(k) + 0.5) / double(f[2]) - 0.5, 0.0, double(nc[2] - 1));
        const std::size_t k0 = std::size_t(ck), k1 = std::min(k0 + 1, nc[2] - 1);
        const double wk = ck - double(k0);
        for (std::size_t j = 0; j < dims[1]; ++j) {
          const double cj =
              std::clamp((double(j) + 0.5) / double(f[1]) - 0.5, 0.0, double(nc[1] - 1));
          const std::size_t j0 = std::size_t(cj), j1 = std::min(j0 + 1, nc[1] - 1);
          const double wj = cj - double(j0);
          const std::size_t row = (k * dims[1] + j) * dims[0];
          for (std::size_t i = 0; i < dims[0]; ++i) {
            if (!active[row + i]) continue;
            const double ci =
                std::clamp((double(i) + 0.5) / double(f[0]) - 0.5, 0.0, double(nc[0] - 1));
            const std::size_t i0 = std::size_t(ci), i1 = std::min(i0 + 1, nc[0] - 1);
            const double wi = ci - double(i0);
            const auto at = [&](std::size_t a, std::size_t b, std::size_t c) {
              return double(value[(c * nc[1] + b) * nc[0] + a]);
            };
            const double v =
                (1 - wk) * ((1 - wj) * ((1 - wi) * at(i0, j0, k0) + wi * at(i1, j0, k0)) +
                            wj * ((1 - wi) * at(i0, j1, k0) + wi * at(i1, j1, k0))) +
                wk * ((1 - wj) * ((1 - wi) * at(i0, j0, k1) + wi * at(i1, j0, k1)) +
                      wj * ((1 - wi) * at(i0, j1, k1) + wi * at(i1, j1, k1)));
            keep(row + i, float(v), s);
          }
        }
      }
    }
  }
  return out;
}

}  // namespace lungvol::seg
