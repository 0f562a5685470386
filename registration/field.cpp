#include "registration/field.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace lungvol::registration {
namespace {

std::array<double, 9> invert3(const std::array<double, 9>& a, const char* what) {
  const double det = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
                     a[2] * (a[3] * a[7] - a[4] * a[6]);
  if (!(std::abs(det) > 1e-12)) {
    throw Error(ExitCode::kProcessing, std::string("singular matrix: ") + what);
  }
  const double d = 1.0 / det;
  return {(a[4] * a[8] - a[5] * a[7]) * d, (a[2] * a[7] - a[1] * a[8]) * d,
          (a[1] * a[5] - a[2] * a[4]) * d, (a[5] * a[6] - a[3] * a[8]) * d,
          (a[0] * a[8] - a[2] * a[6]) * d, (a[2] * a[3] - a[0] * a[5]) * d,
          (a[3] * a[7] - a[4] * a[6]) * d, (a[1] * a[6] - a[0] * a[7]) * d,
          (a[0] * a[4] - a[1] * a[3]) * d};
}

double det3(const std::array<double, 9>& a) {
  return a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
         a[2] * (a[3] * a[7] - a[4] * a[6]);
}

// Trilinear weights of a continuous index on an axis of n samples, clamped to the border;
// false when the index lies beyond the grid extended by half a voxel.
inline bool axis_weights(double c, std::size_t n, std::size_t* i0, std::size_t* i1, double* w) {
  if (!(c >= -0.5 && c <= static_cast<double>(n) - 0.5)) return false;
  if (n == 1) {
    *i0 = *i1 = 0;
    *w = 0;
    return true;
  }
  const double cc = std::clamp(c, 0.0, static_cast<double>(n - 1));
  std::size_t f = static_cast<std::size_t>(cc);
  if (f >= n - 1) f = n - 2;
  *i0 = f;
  *i1 = f + 1;
  *w = cc - static_cast<double>(f);
  return true;
}

template <class T>
double sample_linear_t(const Image<T>& img, const GridMap& map, const Vec3& p, double outside) {
  const Vec3 c = map.to_index(p);
  const auto& s = img.geom.size;
  std::size_t i0, i1, j0, j1, k0, k1;
  double wx, wy, wz;
  if (!axis_weights(c[0], s[0], &i0, &i1, &wx) || !axis_weights(c[1], s[1], &j0, &j1, &wy) ||
      !axis_weights(c[2], s[2], &k0, &k1, &wz)) {
    return outside;
  }
  const std::size_t nx = s[0], nxy = s[0] * s[1];
  const T* d = img.data.data();
  auto v = [&](std::size_t i, std::size_t j, std::size_t k) {
    return static_cast<double>(d[i + nx * j + nxy * k]);
  };
  const double c00 = v(i0, j0, k0) * (1 - wx) + v(i1, j0, k0) * wx;
  const double c10 = v(i0, j1, k0) * (1 - wx) + v(i1, j1, k0) * wx;
  const double c01 = v(i0, j0, k1) * (1 - wx) + v(i1, j0, k1) * wx;
  const double c11 = v(i0, j1, k1) * (1 - wx) + v(i1, j1, k1) * wx;
  const double c0 = c00 * (1 - wy) + c10 * wy;
  const double c1 = c01 * (1 - wy) + c11 * wy;
  return c0 * (1 - wz) + c1 * wz;
}

}  // namespace

GridMap::GridMap(const Geometry& g) : g_(g) {
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) fwd_[3 * r + c] = g.direction[3 * r + c] * g.spacing[c];
  }
  inv_ = invert3(fwd_, "image direction x spacing");
}

Vec3 GridMap::to_index(const Vec3& p) const {
  const double d[3] = {p[0] - g_.origin[0], p[1] - g_.origin[1], p[2] - g_.origin[2]};
  return {inv_[0] * d[0] + inv_[1] * d[1] + inv_[2] * d[2],
          inv_[3] * d[0] + inv_[4] * d[1] + inv_[5] * d[2],
          inv_[6] * d[0] + inv_[7] * d[1] + inv_[8] * d[2]};
}

Vec3 GridMap::to_point(const Vec3& c) const {
  return {g_.origin[0] + fwd_[0] * c[0] + fwd_[1] * c[1] + fwd_[2] * c[2],
          g_.origin[1] + fwd_[3] * c[0] + fwd_[4] * c[1] + fwd_[5] * c[2],
          g_.origin[2] + fwd_[6] * c[0] + fwd_[7] * c[1] + fwd_[8] * c[2]};
}

Affine Affine::inverse() const {
  Affine out;
  out.m = invert3(m, "affine transform");
  for (int r = 0; r < 3; ++r) {
    out.t[r] = -(out.m[3 * r] * t[0] + out.m[3 * r + 1] * t[1] + out.m[3 * r + 2] * t[2]);
  }
  return out;
}

double Affine::determinant() const { return det3(m); }

bool Affine::is_identity() const {
  const Affine id;
  return m == id.m && t == id.t;
}

Affine compose(const Affine& a, const Affine& b) {
  Affine out;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      out.m[3 * r + c] =
          a.m[3 * r] * b.m[c] + a.m[3 * r + 1] * b.m[3 + c] + a.m[3 * r + 2] * b.m[6 + c];
    }
    out.t[r] = a.m[3 * r] * b.t[0] + a.m[3 * r + 1] * b.t[1] + a.m[3 * r + 2] * b.t[2] + a.t[r];
  }
  return out;
}

DisplacementField::DisplacementField(const Geometry& g)
    : map_(g), u_(3 * g.voxel_count(), 0.0f) {}

Vec3 DisplacementField::at_index(const Vec3& c) const {
  const auto& s = map_.geometry().size;
  std::size_t i0, i1, j0, j1, k0, k1;
  double wx, wy, wz;
  if (u_.empty() || !axis_weights(c[0], s[0], &i0, &i1, &wx) ||
      !axis_weights(c[1], s[1], &j0, &j1, &wy) || !axis_weights(c[2], s[2], &k0, &k1, &wz)) {
    return {0, 0, 0};
  }
  const std::size_t nx = s[0], nxy = s[0] * s[1];
  const float* d = u_.data();
  const double w[8] = {(1 - wx) * (1 - wy) * (1 - wz), wx * (1 - wy) * (1 - wz),
                       (1 - wx) * wy * (1 - wz),       wx * wy * (1 - wz),
                       (1 - wx) * (1 - wy) * wz,       wx * (1 - wy) * wz,
                       (1 - wx) * wy * wz,             wx * wy * wz};
  const std::size_t n[8] = {i0 + nx * j0 + nxy * k0, i1 + nx * j0 + nxy * k0,
                            i0 + nx * j1 + nxy * k0, i1 + nx * j1 + nxy * k0,
                            i0 + nx * j0 + nxy * k1, i1 + nx * j0 + nxy * k1,
                            i0 + nx * j1 + nxy * k1, i1 + nx * j1 + nxy * k1};
  Vec3 out{0, 0, 0};
  for (int q = 0; q < 8; ++q) {
    const float* v = d + 3 * n[q];
    out[0] += w[q] * v[0];
    out[1] += w[q] * v[1];
    out[2] += w[q] * v[2];
  }
  return out;
}

Vec3 DisplacementField::at(const Vec3& p) const {
  if (u_.empty()) return {0, 0, 0};
  return at_index(map_.to_index(p));
}

double DisplacementField::max_norm() const {
  double m = 0;
  for (std::size_t n = 0; n + 2 < u_.size(); n += 3) {
    m = std::max(m, std::sqrt(double(u_[n]) * u_[n] + double(u_[n + 1]) * u_[n + 1] +
                              double(u_[n + 2]) * u_[n + 2]));
  }
  return m;
}

Transform field_transform(DisplacementField v) {
  Transform t;
  t.field = std::move(v);
  return t;
}

DisplacementField invert(const Transform& t, const Geometry& grid, int iterations,
                         InverseQuality* quality) {
  DisplacementField v(grid);
  const Affine ainv = t.affine.inverse();
  const GridMap& gm = v.grid();
  const auto& s = grid.size;
  const long nz = static_cast<long>(s[2]);
  // Residuals in 0.01 mm bins up to 20 mm (the last bin holds the rest), for the quality figures.
  constexpr int kBins = 2001;
  std::vector<std::uint64_t> hist(kBins, 0);
  double worst = 0;
#pragma omp parallel
  {
    std::vector<std::uint64_t> local(kBins, 0);
    double lworst = 0;
#pragma omp for schedule(static) nowait
    for (long k = 0; k < nz; ++k) {
      for (std::size_t j = 0; j < s[1]; ++j) {
        for (std::size_t i = 0; i < s[0]; ++i) {
          const Vec3 y = gm.to_point({double(i), double(j), double(k)});
          const Vec3 a = ainv.apply(y);  // = x + d(x)
          Vec3 x = a;
          bool inside = false;
          if (!t.field.empty()) {
            // x_{n+1} = a - d(x_n), damped when it stops contracting.
            double prev = std::numeric_limits<double>::infinity();
            double relax = 1.0;
            for (int it = 0; it < iterations; ++it) {
              const Vec3 d = t.field.at(x);
              const Vec3 r{x[0] + d[0] - a[0], x[1] + d[1] - a[1], x[2] + d[2] - a[2]};
              const double rn = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
              if (rn < 1e-4) break;
              if (rn > prev) relax = std::max(0.25, relax * 0.5);
              prev = rn;
              for (int c = 0; c < 3; ++c) x[c] -= relax * r[c];
            }
            const Vec3 ci = t.field.grid().to_index(x);
            const auto& fs = t.field.geometry().size;
            // Away from the field's border (where d drops to 0 outside) by 3 voxels.
            inside = true;
            for (int c = 0; c < 3; ++c) inside = inside && ci[c] >= 3.0 && ci[c] <= double(fs[c]) - 4.0;
          }
          if (inside) {
            const Vec3 back = t.apply(x);
            const double res = std::sqrt((back[0] - y[0]) * (back[0] - y[0]) +
                                         (back[1] - y[1]) * (back[1] - y[1]) +
                                         (back[2] - y[2]) * (back[2] - y[2]));
            lworst = std::max(lworst, res);
            ++local[std::size_t(std::min<double>(kBins - 1, res * 100.0))];
          }
          float* out = v.data() + 3 * grid.index(i, j, static_cast<std::size_t>(k));
          for (int c = 0; c < 3; ++c) out[c] = static_cast<float>(x[c] - y[c]);
        }
      }
    }
#pragma omp critical
    {
      for (int b = 0; b < kBins; ++b) hist[std::size_t(b)] += local[std::size_t(b)];
      worst = std::max(worst, lworst);
    }
  }
  if (quality) {
    InverseQuality q;
    for (auto c : hist) q.points += c;
    q.max_mm = worst;
    std::uint64_t acc = 0, over = 0;
    bool p99_set = false;
    for (int b = 0; b < kBins; ++b) {
      acc += hist[std::size_t(b)];
      if (b > 100) over += hist[std::size_t(b)];
      if (!p99_set && q.points > 0 && double(acc) >= 0.99 * double(q.points)) {
        q.p99_mm = (b + 1) / 100.0;
        p99_set = true;
      }
    }
    q.over_1mm_pct = q.points ? 100.0 * double(over) / double(q.points) : 0.0;
    *quality = q;
  }
  return v;
}

IndexBox full_box(const Geometry& g) {
  IndexBox b;
  b.hi = g.size;
  return b;
}

IndexBox label_box(const LabelImage& img, double margin_mm, const std::vector<std::uint8_t>& labels) {
  bool want[256] = {false};
  if (labels.empty()) {
    for (int v = 1; v < 256; ++v) want[v] = true;
  } else {
    for (auto v : labels) want[v] = true;
  }
  const auto& s = img.geom.size;
  const long nz = static_cast<long>(s[2]);
  std::size_t lo[3] = {s[0], s[1], s[2]}, hi[3] = {0, 0, 0};
#pragma omp parallel
  {
    std::size_t tlo[3] = {s[0], s[1], s[2]}, thi[3] = {0, 0, 0};
#pragma omp for schedule(static) nowait
    for (long k = 0; k < nz; ++k) {
      const std::uint8_t* p = img.data.data() + img.geom.slice_voxels() * std::size_t(k);
      for (std::size_t j = 0; j < s[1]; ++j) {
        for (std::size_t i = 0; i < s[0]; ++i) {
          if (!want[p[i + s[0] * j]]) continue;
          tlo[0] = std::min(tlo[0], i);
          thi[0] = std::max(thi[0], i + 1);
          tlo[1] = std::min(tlo[1], j);
          thi[1] = std::max(thi[1], j + 1);
          tlo[2] = std::min(tlo[2], std::size_t(k));
          thi[2] = std::max(thi[2], std::size_t(k) + 1);
        }
      }
    }
#pragma omp critical
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], tlo[a]);
      hi[a] = std::max(hi[a], thi[a]);
    }
  }
  IndexBox b;
  if (hi[0] == 0) return b;  // empty
  for (int a = 0; a < 3; ++a) {
    const auto m = static_cast<std::size_t>(std::ceil(margin_mm / img.geom.spacing[a]));
    b.lo[a] = lo[a] > m ? lo[a] - m : 0;
    b.hi[a] = std::min(s[a], hi[a] + m);
  }
  return b;
}

namespace {

template <class T, class Map, class Sampler>
Image<T> warp_impl(const Geometry& grid, const Map& t, const IndexBox& box, T fill,
                   const Sampler& sample) {
  Image<T> out(grid, fill);
  const GridMap gm(grid);
  const long k0 = static_cast<long>(box.lo[2]), k1 = static_cast<long>(box.hi[2]);
#pragma omp parallel for schedule(static)
  for (long k = k0; k < k1; ++k) {
    for (std::size_t j = box.lo[1]; j < box.hi[1]; ++j) {
      for (std::size_t i = box.lo[0]; i < box.hi[0]; ++i) {
        const Vec3 x = gm.to_point({double(i), double(j), double(k)});
        out.data[grid.index(i, j, std::size_t(k))] = sample(t.apply(x));
      }
    }
  }
  return out;
}

template <class Map>
LabelImage warp_labels_impl(const LabelImage& src, const Map& t, const Geometry& grid,
                            const IndexBox& box) {
  const GridMap sm(src.geom);
  const auto& s = src.geom.size;
  return warp_impl<std::uint8_t>(grid, t, box, 0, [&](const Vec3& y) -> std::uint8_t {
    const Vec3 c = sm.to_index(y);
    const double ri = std::floor(c[0] + 0.5), rj = std::floor(c[1] + 0.5),
                 rk = std::floor(c[2] + 0.5);
    if (ri < 0 || rj < 0 || rk < 0 || ri >= double(s[0]) || rj >= double(s[1]) ||
        rk >= double(s[2])) {
      return 0;
    }
    return src.data[src.geom.index(std::size_t(ri), std::size_t(rj), std::size_t(rk))];
  });
}

}  // namespace

LabelImage warp_labels(const LabelImage& src, const Transform& t, const Geometry& grid,
                       const IndexBox& box) {
  return warp_labels_impl(src, t, grid, box);
}

LabelImage warp_labels(const LabelImage& src, const TransformChain& chain, const Geometry& grid,
                       const IndexBox& box) {
  return warp_labels_impl(src, chain, grid, box);
}

CtImage warp_ct(const CtImage& src, const Transform& t, const Geometry& grid, const IndexBox& box,
                std::int16_t outside) {
  const GridMap sm(src.geom);
  return warp_impl<std::int16_t>(grid, t, box, outside, [&](const Vec3& y) -> std::int16_t {
    const double v = sample_linear_t(src, sm, y, outside);
    return static_cast<std::int16_t>(std::lround(std::clamp(v, -32768.0, 32767.0)));
  });
}

double sample_linear(const CtImage& img, const GridMap& map, const Vec3& p, double outside) {
  return sample_linear_t(img, map, p, outside);
}
double sample_linear(const FloatImage& img, const GridMap& map, const Vec3& p, double outside) {
  return sample_linear_t(img, map, p, outside);
}

FloatImage jacobian_determinant(const Transform& t) {
  const double da = t.affine.determinant();
  if (t.field.empty()) {
    Geometry g;
    g.size = {1, 1, 1};
    return FloatImage(g, static_cast<float>(da));
  }
  const Geometry& g = t.field.geometry();
  FloatImage out(g, FloatImage::Uninitialised{});
  const auto& s = g.size;
  const float* u = t.field.data();
  // d(u)/d(index) -> d(u)/d(x): index axis c moves by direction column c times spacing c, so
  // grad_x u = (du/dindex) * inv(direction * diag(spacing)).
  std::array<double, 9> fwd{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) fwd[3 * r + c] = g.direction[3 * r + c] * g.spacing[c];
  }
  const auto inv = invert3(fwd, "field grid");
  const long nz = static_cast<long>(s[2]);
#pragma omp parallel for schedule(static)
  for (long kk = 0; kk < nz; ++kk) {
    const std::size_t k = static_cast<std::size_t>(kk);
    for (std::size_t j = 0; j < s[1]; ++j) {
      for (std::size_t i = 0; i < s[0]; ++i) {
        const std::size_t idx[3] = {i, j, k};
        double dudi[3][3];  // [component][index axis]
        for (int a = 0; a < 3; ++a) {
          std::size_t lo[3] = {i, j, k}, hi[3] = {i, j, k};
          double h = 0;
          if (s[a] > 1) {
            lo[a] = idx[a] > 0 ? idx[a] - 1 : 0;
            hi[a] = idx[a] + 1 < s[a] ? idx[a] + 1 : idx[a];
            h = double(hi[a] - lo[a]);
          }
          const float* pl = u + 3 * g.index(lo[0], lo[1], lo[2]);
          const float* ph = u + 3 * g.index(hi[0], hi[1], hi[2]);
          for (int c = 0; c < 3; ++c) dudi[c][a] = h > 0 ? (double(ph[c]) - pl[c]) / h : 0.0;
        }
        std::array<double, 9> jm{};
        for (int c = 0; c < 3; ++c) {
          for (int x = 0; x < 3; ++x) {
            double v = 0;
            for (int a = 0; a < 3; ++a) v += dudi[c][a] * inv[3 * a + x];
            jm[3 * c + x] = v + (c == x ? 1.0 : 0.0);
          }
        }
        out.data[g.index(i, j, k)] = static_cast<float>(da * det3(jm));
      }
    }
  }
  return out;
}

}  // namespace lungvol::registration
