#include "segmentation/costal.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <deque>
#include <string>
#include <limits>

#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "segmentation/components.hpp"

namespace lungvol::seg {
namespace {

constexpr int kAngles = 360;  // 1 degree: about 2.6 mm of arc at 150 mm from the axis
// Bone within this distance of the body midline is spine, rib head or sternum, not the costal
// wall: the aorta, oesophagus and azygos vein lie in front of the vertebral body, the
// sympathetic chain and intercostal vessels in the costovertebral angle, the heart between the
// sternum and the lung, so their distance to the lung is no pleural gap. The vertebral body is
// 30-45 mm wide; the rib heads and necks lie within 25-30 mm of the midline.
constexpr double kMidlineBoneMm = 28.0;
// The nearest rib below and above a slice, each within this distance, interpolated, stand in
// for the wall of the intercostal space the slice crosses (the inner surfaces of ribs and of the innermost
// intercostal muscle are nearly flush). Intercostal spaces are up to 20-25 mm high (lower
// lateral spaces, deep inspiration): every slice of such a space must find both of its ribs.
// At 15 mm the lowest slices of the phantom's 17 mm spaces found no rib above and the pleural
// lesion lost those slices (1 mm slices: 10 % of it).
constexpr double kSlabMm = 30.0;
// A rib is 5-8 mm thick (its inner and outer cortex); a hit farther out than this beyond the
// slab's innermost hit at the same angle is the scapula or the arm seen through a space.
constexpr double kRibDepthMm = 8.0;
constexpr double kMinToleranceMm = 3.0;
constexpr double kApexMm = 15.0;
constexpr double kExtrapolateMm = 30.0;
constexpr float kNone = std::numeric_limits<float>::quiet_NaN();

struct Axis {
  std::vector<double> ci, cj;  // per slice, box index units
};

// Per-slice centroid of the lung, filled in from the nearest slice where the lung is absent and
// smoothed by a running median (the axis only sets where rays start; it must lie in the lung).
Axis lung_axis(const MaskImage& lung) {
  const Geometry& g = lung.geom;
  const std::size_t nz = g.size[2];
  Axis a;
  a.ci.assign(nz, kNone);
  a.cj.assign(nz, kNone);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk);
    double si = 0, sj = 0;
    std::size_t n = 0;
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      const std::uint8_t* row = &lung.at(0, j, k);
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        if (!row[i]) continue;
        si += double(i);
        sj += double(j);
        ++n;
      }
    }
    if (n >= 16) {
      a.ci[k] = si / double(n);
      a.cj[k] = sj / double(n);
    }
  }
  // Nearest defined slice for the undefined ones.
  std::ptrdiff_t last = -1;
  for (std::size_t k = 0; k < nz; ++k) {
    if (!std::isnan(a.ci[k])) {
      if (last < 0) {
        for (std::size_t q = 0; q < k; ++q) {
          a.ci[q] = a.ci[k];
          a.cj[q] = a.cj[k];
        }
      } else {
        for (std::size_t q = std::size_t(last) + 1; q < k; ++q) {
          const bool near_last = q - std::size_t(last) <= k - q;
          a.ci[q] = near_last ? a.ci[std::size_t(last)] : a.ci[k];
          a.cj[q] = near_last ? a.cj[std::size_t(last)] : a.cj[k];
        }
      }
      last = std::ptrdiff_t(k);
    }
  }
  if (last < 0) return a;
  for (std::size_t q = std::size_t(last) + 1; q < nz; ++q) {
    a.ci[q] = a.ci[std::size_t(last)];
    a.cj[q] = a.cj[std::size_t(last)];
  }
  auto median_filter = [nz](std::vector<double>& v) {
    std::vector<double> out(v.size()), w;
    for (std::size_t k = 0; k < nz; ++k) {
      w.clear();
      for (std::size_t q = k >= 4 ? k - 4 : 0; q <= std::min(nz - 1, k + 4); ++q) w.push_back(v[q]);
      std::nth_element(w.begin(), w.begin() + std::ptrdiff_t(w.size() / 2), w.end());
      out[k] = w[w.size() / 2];
    }
    v.swap(out);
  };
  median_filter(a.ci);
  median_filter(a.cj);
  return a;
}

// The bone that walls the lung in (the box's grid, read from the full images at `box`): bone
// farther than kMidlineBoneMm from the body midline, i.e. the ribs from their necks outwards.
MaskImage wall_bone(const CtImage& ct, const MaskImage& outside, const Geometry& g, const Box& box,
                    double midline_x, double bone_hu) {
  const Geometry& fg = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const double x0 = fg.origin[0];
  const double dxi = fg.direction[0] * fg.spacing[0];
  const double dxj = fg.direction[1] * fg.spacing[1];
  const double dxk = fg.direction[2] * fg.spacing[2];
  MaskImage wall(g, MaskImage::Uninitialised{});
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk), kf = box.lo[2] + k;
    for (std::size_t j = 0; j < ny; ++j) {
      const std::size_t n0 = fg.index(box.lo[0], box.lo[1] + j, kf);
      const double xr = x0 + dxj * double(box.lo[1] + j) + dxk * double(kf);
      std::uint8_t* w = &wall.at(0, j, k);
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t n = n0 + i;
        w[i] = ct[n] >= bone_hu && !outside[n] &&
               std::abs(xr + dxi * double(box.lo[0] + i) - midline_x) > kMidlineBoneMm;
      }
    }
  }
  return wall;
}

// Box sum over +-r of a sequence with `stride`: wrapped (periodic) or with zeros beyond its ends.
void box_pass(double* v, std::size_t n, std::size_t stride, std::size_t r, bool wrap,
              std::vector<double>& buf) {
  buf.assign(n, 0.0);
  if (wrap) {
    r = std::min(r, (n - 1) / 2);
    double s = 0;
    for (std::ptrdiff_t d = -std::ptrdiff_t(r); d <= std::ptrdiff_t(r); ++d) {
      s += v[std::size_t((d + std::ptrdiff_t(n)) % std::ptrdiff_t(n)) * stride];
    }
    for (std::size_t i = 0; i < n; ++i) {
      buf[i] = s;
      s += v[((i + r + 1) % n) * stride] - v[((i + n - r) % n) * stride];
    }
  } else {
    double s = 0;
    for (std::size_t d = 0; d <= std::min(r, n - 1); ++d) s += v[d * stride];
    for (std::size_t i = 0; i < n; ++i) {
      buf[i] = s;
      if (i + r + 1 < n) s += v[(i + r + 1) * stride];
      if (i >= r) s -= v[(i - r) * stride];
    }
  }
  for (std::size_t i = 0; i < n; ++i) v[i * stride] = buf[i];
}

// Gaussian-like blur of an (angle x slice) map by three box passes per axis (the cost does not
// grow with the scale): wrapped along the angle, zero beyond the slices (the callers normalise
// by the blurred weights, so the border needs no other treatment). sa, sk: standard deviations
// in angle bins and slices.
std::vector<double> blur(const std::vector<double>& in, std::size_t nz, double sa, double sk) {
  const std::size_t na = kAngles;
  // Three passes of width 2r+1 have variance 3 * ((2r+1)^2 - 1) / 12 = r (r + 1).
  auto radius = [](double sigma) {
    return std::size_t(std::max(0.0, std::round(0.5 * (std::sqrt(1.0 + 4.0 * sigma * sigma) - 1.0))));
  };
  const std::size_t ra = radius(sa), rk = radius(sk);
  std::vector<double> out(in), buf;
  for (int pass = 0; pass < 3; ++pass) {
    for (std::size_t k = 0; k < nz; ++k) box_pass(&out[k], na, nz, ra, true, buf);
    for (std::size_t m = 0; m < na; ++m) box_pass(&out[m * nz], nz, 1, rk, false, buf);
  }
  return out;
}

// Running maximum (or minimum) over +-r of a periodic (wrap) or clamped sequence with `stride`,
// in place: a monotone deque of candidates, O(n) whatever r.
void running_extreme(double* v, std::size_t n, std::size_t stride, std::size_t r, bool wrap,
                     bool is_max, std::vector<double>& buf) {
  if (n == 0) return;
  if (wrap) r = std::min(r, (n - 1) / 2);
  const std::ptrdiff_t N = std::ptrdiff_t(n), R = std::ptrdiff_t(r);
  // Positions -R .. n-1+R (wrapped or dropped), each entering once.
  auto at = [&](std::ptrdiff_t q) { return v[std::size_t(((q % N) + N) % N) * stride]; };
  const auto better = [is_max](double a, double b) { return is_max ? a >= b : a <= b; };
  buf.assign(n, 0.0);
  std::deque<std::ptrdiff_t> dq;
  const std::ptrdiff_t first = wrap ? -R : 0, last = wrap ? N - 1 + R : N - 1;
  std::ptrdiff_t next = first;
  for (std::ptrdiff_t i = 0; i < N; ++i) {
    while (next <= std::min(last, i + R)) {
      const double x = at(next);
      while (!dq.empty() && better(x, at(dq.back()))) dq.pop_back();
      dq.push_back(next++);
    }
    while (dq.front() < i - R) dq.pop_front();
    buf[std::size_t(i)] = at(dq.front());
  }
  for (std::size_t i = 0; i < n; ++i) v[i * stride] = buf[i];
}

// Depth (mm) of the dent of the lung's outline at each (angle, slice) with a wall: the largest,
// over window sizes from a small lesion's to a lobe's, of the grayscale closing of the outline
// radius minus the radius. Rays without a wall neither raise the closing nor take part.
std::vector<double> outline_dents(const std::vector<double>& r_air, const std::vector<double>& gap,
                                  std::size_t nz, double dz) {
  const std::size_t na = kAngles;
  std::vector<double> dent(r_air.size(), 0.0), f(r_air.size()), buf;
  for (const auto& [half_deg, half_mm] : {std::pair{10.0, 10.0}, {20.0, 20.0}, {40.0, 40.0},
                                          {80.0, 80.0}}) {
    const std::size_t ra = std::size_t(half_deg * double(na) / 360.0);
    const std::size_t rk = std::size_t(std::lround(half_mm / dz));
    for (std::size_t q = 0; q < f.size(); ++q) f[q] = std::isnan(gap[q]) ? 0.0 : r_air[q];
    // Dilation (max) then erosion (min), each separable: along the angle (stride nz), along k.
    for (std::size_t k = 0; k < nz; ++k) running_extreme(&f[k], na, nz, ra, true, true, buf);
    for (std::size_t m = 0; m < na; ++m) running_extreme(&f[m * nz], nz, 1, rk, false, true, buf);
    for (std::size_t q = 0; q < f.size(); ++q) {
      if (std::isnan(gap[q])) f[q] = std::numeric_limits<double>::infinity();
    }
    for (std::size_t k = 0; k < nz; ++k) running_extreme(&f[k], na, nz, ra, true, false, buf);
    for (std::size_t m = 0; m < na; ++m) running_extreme(&f[m * nz], nz, 1, rk, false, false, buf);
    for (std::size_t q = 0; q < f.size(); ++q) {
      if (!std::isnan(gap[q]) && std::isfinite(f[q])) dent[q] = std::max(dent[q], f[q] - r_air[q]);
    }
  }
  return dent;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

CostalResult costal_completion(const CostalInput& in, const LungParams& p) {
  const CtImage& ct = *in.ct;
  const LabelImage& labels = *in.labels;
  const MaskImage& lung = *in.lung;
  const MaskImage& outside = *in.outside;
  const Geometry& g = lung.geom;
  const Geometry& fg = ct.geom;
  const Box& box = in.box;
  // Full-image index of box voxel (i, j, k).
  const auto full = [&](std::size_t i, std::size_t j, std::size_t k) {
    return fg.index(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k);
  };
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  const double sx = g.spacing[0], sy = g.spacing[1];
  CostalResult result;
  result.fill = MaskImage(g, 0);
  result.beyond_pleura = MaskImage(g, 0);
  if (nz == 0 || nx < 3 || ny < 3) return result;

  Stopwatch tsw;
  const Axis axis = lung_axis(lung);
  const std::size_t slab = std::size_t(std::ceil(kSlabMm / g.spacing[2]));
  const MaskImage ribs = wall_bone(ct, outside, g, box, in.midline_x, p.bone_min_hu);
  const std::uint8_t other =
      in.side == labels::kRightLung ? labels::kLeftLung : labels::kRightLung;
  // The side of the midline this lung lies on: LPS x grows to the patient's left.
  const double side_sign = in.side == labels::kRightLung ? -1.0 : 1.0;
  const double x0 = fg.origin[0];
  const double dxi = fg.direction[0] * sx, dxj = fg.direction[1] * sy;
  const double dxk = fg.direction[2] * g.spacing[2];

  const double step = 0.5 * std::min(sx, sy);
  const double rmax = std::hypot(double(nx) * sx, double(ny) * sy);
  const std::size_t nsteps = std::size_t(rmax / step) + 1;
  std::vector<double> cosa(kAngles), sina(kAngles);
  for (int m = 0; m < kAngles; ++m) {
    cosa[std::size_t(m)] = std::cos(2 * M_PI * m / kAngles);
    sina[std::size_t(m)] = std::sin(2 * M_PI * m / kAngles);
  }
  log::debug("costal: axis+walls {:.3f}", tsw.lap());
  // What a ray meets, one byte per box voxel: lung, rib wall, or the end of its path (outside
  // the body, the other lung, the airway, across the midline).
  constexpr std::uint8_t kLung = 1, kWall = 2, kStop = 4;
  MaskImage code(g, MaskImage::Uninitialised{});
  std::vector<std::uint8_t> slice_has_lung(nz, 0);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk);
    for (std::size_t j = 0; j < ny; ++j) {
      const double xr = x0 + dxj * double(box.lo[1] + j) + dxk * double(box.lo[2] + k);
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t n = k * sxy + j * nx + i;
        const std::size_t f = full(i, j, k);
        const std::uint8_t lab = labels[f];
        const double x = xr + dxi * double(box.lo[0] + i);
        const bool stop = outside[f] || lab == other || lab == labels::kAirway ||
                          (x - in.midline_x) * side_sign < 0;
        code[n] = std::uint8_t((lung[n] ? kLung : 0) | (ribs[n] ? kWall : 0) | (stop ? kStop : 0));
        if (lung[n]) slice_has_lung[k] = 1;
      }
    }
  }
  // Per (angle, slice): radius (mm) of the outermost lung sample and of the first rib after it.
  std::vector<double> r_air(kAngles * nz, kNone), r_rib(kAngles * nz, kNone);
#pragma omp parallel for schedule(dynamic, 2)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk);
    const double ci = axis.ci[k], cj = axis.cj[k];
    if (std::isnan(ci) || !slice_has_lung[k]) continue;
    const std::uint8_t* cs = &code[k * sxy];
    for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
      double last_lung = -1, rib = -1;
      const double di = cosa[m] * step / sx, dj = sina[m] * step / sy;
      double fi = ci + 0.5, fj = cj + 0.5;  // +0.5: truncation rounds to the nearest voxel
      for (std::size_t s = 0; s < nsteps; ++s, fi += di, fj += dj) {
        if (fi < 0 || fj < 0 || fi >= double(nx) || fj >= double(ny)) break;
        const std::uint8_t c = cs[std::size_t(fj) * nx + std::size_t(fi)];
        if (c & kStop) break;
        if (c & kLung) {
          last_lung = double(s) * step;
          rib = -1;
        } else if (rib < 0 && last_lung >= 0 && (c & kWall)) {
          rib = double(s) * step;
        }
      }
      if (last_lung >= 0) r_air[m * nz + k] = last_lung;
      if (last_lung >= 0 && rib >= 0) r_rib[m * nz + k] = rib;
    }
  }
  log::debug("costal: cast {:.3f}", tsw.lap());
  // Below the aerated lung a consolidation may fill the costophrenic recess: a ray that meets no
  // aerated lung takes the outermost lung radius of the nearest slice above at the same angle
  // (within kExtrapolateMm) and looks for the wall beyond it. Only the layer between that radius
  // and the wall can be filled, and only above the diaphragm limit.
  std::vector<std::uint8_t> extrapolated(kAngles * nz, 0);
  {
    const std::size_t reach = std::size_t(std::ceil(kExtrapolateMm / g.spacing[2]));
    const std::vector<double> seen = r_air;
#pragma omp parallel for schedule(dynamic, 2)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
      const std::size_t k = std::size_t(kk);
      const double ci = axis.ci[k], cj = axis.cj[k];
      if (std::isnan(ci)) continue;
      for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
        const std::size_t q = m * nz + k;
        if (!std::isnan(seen[q])) continue;
        double from = kNone;
        for (std::size_t d = 1; d <= reach; ++d) {
          const std::ptrdiff_t ka = std::ptrdiff_t(k) + std::ptrdiff_t(d) * in.superior;
          if (ka < 0 || ka >= std::ptrdiff_t(nz)) break;
          if (!std::isnan(seen[m * nz + std::size_t(ka)])) {
            from = seen[m * nz + std::size_t(ka)];
            break;
          }
        }
        if (std::isnan(from)) continue;
        for (std::size_t st = std::size_t(from / step); st < nsteps; ++st) {
          const double t = double(st) * step;
          const double fi = ci + cosa[m] * t / sx + 0.5, fj = cj + sina[m] * t / sy + 0.5;
          if (fi < 0 || fj < 0 || fi >= double(nx) || fj >= double(ny)) break;
          const std::uint8_t c = code[k * sxy + std::size_t(fj) * nx + std::size_t(fi)];
          if (c & kStop) break;
          if (c & kWall) {
            r_air[q] = from;
            r_rib[q] = t;
            extrapolated[q] = 1;
            break;
          }
        }
      }
    }
  }
  log::debug("costal: extrapolate {:.3f}", tsw.lap());
  // The wall of a ray is the nearest rib it or its neighbours within the slab meet: through an
  // intercostal space a ray meets no rib (or the scapula, far out), while the rib above or below
  // stands where the wall is (the inner surfaces of ribs and intercostal muscles are nearly
  // flush). A rib must be met both at or below and at or above the slice: above the first rib
  // no wall is assumed, for at the apex the cupula rises above it, with the subclavian vessels
  // and the scalene muscles between the lung and the first rib and clavicle.
  {
    // Through an intercostal space a ray may meet the scapula, far outside the ribs. A hit more
    // than kRibDepthMm beyond another hit at the same angle, plus their height difference
    // (the cage widens by up to about 1 mm per mm of height, at the apex), is no rib. The
    // envelope must be local: against the innermost hit over the whole slab, the ribs of a
    // widening upper chest were taken for scapula and the posterior wall was lost.
    std::vector<double> hits = r_rib;
    const double dz = g.spacing[2];
    for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
      const double* h0 = &r_rib[m * nz];
      double* h = &hits[m * nz];
      for (std::size_t k = 0; k < nz; ++k) {
        if (std::isnan(h0[k])) continue;
        for (std::size_t q = k >= slab ? k - slab : 0; q <= std::min(nz - 1, k + slab); ++q) {
          const double dzmm = dz * double(k > q ? k - q : q - k);
          if (!std::isnan(h0[q]) && h0[k] > h0[q] + kRibDepthMm + dzmm) {
            h[k] = kNone;
            break;
          }
        }
      }
    }
    for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
      const double* h = &hits[m * nz];
      for (std::size_t k = 0; k < nz; ++k) {
        const std::size_t q = m * nz + k;
        r_rib[q] = kNone;
        if (std::isnan(r_air[q])) continue;
        if (!std::isnan(h[k])) {
          r_rib[q] = std::max(h[k], r_air[q]);
          continue;
        }
        // The nearest rib on each side, interpolated linearly across the space.
        double lo = kNone, hi = kNone, d_lo = 0, d_hi = 0;
        for (std::size_t d = 1; d <= slab && (std::isnan(lo) || std::isnan(hi)); ++d) {
          if (std::isnan(lo) && k >= d && !std::isnan(h[k - d])) {
            lo = h[k - d];
            d_lo = double(d);
          }
          if (std::isnan(hi) && k + d < nz && !std::isnan(h[k + d])) {
            hi = h[k + d];
            d_hi = double(d);
          }
        }
        if (std::isnan(lo) || std::isnan(hi)) continue;
        r_rib[q] = std::max(lo + (hi - lo) * d_lo / (d_lo + d_hi), r_air[q]);
      }
    }
  }

  // The normal gap: robust centre and spread of all gaps, then interpolated over the map from
  // the rays within the normal range, at growing scales until every ray has an estimate (a
  // lobe-sized consolidation leaves no normal ray for many centimetres).
  std::vector<double> gaps;
  std::vector<double> gap(kAngles * nz, kNone);
  for (std::size_t q = 0; q < gap.size(); ++q) {
    if (std::isnan(r_rib[q])) continue;
    gap[q] = r_rib[q] - r_air[q];
    gaps.push_back(gap[q]);
  }
  result.rays = gaps.size();
  if (gaps.size() < 50) return result;
  const double med = median_of(gaps);
  const double voxel = std::max(sx, sy);
  std::vector<double> dev;
  dev.reserve(gaps.size());
  for (double v : gaps) dev.push_back(std::abs(v - med));
  const double mad = 1.4826 * median_of(dev);
  result.gap_median_mm = med;
  // What is normal differs over the wall. Some of it is consistent along the height at one
  // angle: where the lung meets the vertebrae, or where the anatomy keeps the lung off the
  // ribs the whole way down. Some is consistent around one level: at the apex the cupula rises
  // above the first rib ring, with the subclavian vessels and the scalene muscles between lung
  // and rib. A lesion is local in both: it covers part of the height at its angles and part of
  // the circumference at its levels. So a gap is normal when it lies within `width` of the
  // median gap of its angle (over all slices) or of its level (over a 12 mm slab of slices);
  // only gaps beyond both are left out of the interpolation of the normal gap.
  auto median_of_values = [](std::vector<double>& v) {
    if (v.size() < 8) return std::numeric_limits<double>::infinity() * -1.0;
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  std::vector<double> by_level(nz), by_angle(kAngles);
  {
    const std::size_t half = std::max<std::size_t>(1, std::size_t(std::lround(6.0 / g.spacing[2])));
    std::vector<double> v;
    for (std::size_t k = 0; k < nz; ++k) {
      v.clear();
      for (std::size_t q = k >= half ? k - half : 0; q <= std::min(nz - 1, k + half); ++q) {
        for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
          if (!std::isnan(gap[m * nz + q])) v.push_back(gap[m * nz + q]);
        }
      }
      by_level[k] = median_of_values(v);
    }
    for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
      v.clear();
      for (int d = -2; d <= 2; ++d) {  // 5 degrees
        const std::size_t mm = std::size_t((int(m) + d + kAngles) % kAngles);
        for (std::size_t k = 0; k < nz; ++k) {
          if (!std::isnan(gap[mm * nz + k])) v.push_back(gap[mm * nz + k]);
        }
      }
      by_angle[m] = median_of_values(v);
    }
  }
  const double width = std::max(3.0, voxel);
  std::vector<double> w(gap.size(), 0.0), wg(gap.size(), 0.0);
  for (std::size_t q = 0; q < gap.size(); ++q) {
    if (std::isnan(gap[q])) continue;
    if (gap[q] <= std::max(by_level[q % nz], by_angle[q / nz]) + width) {
      w[q] = 1;
      wg[q] = gap[q];
    }
  }
  (void)mad;
  log::debug("costal: stats {:.3f}", tsw.lap());
  std::vector<double> ghat(gap.size(), kNone), spread(gap.size(), 0.0);
  const double dz = g.spacing[2];
  const double deg = kAngles / 360.0;
  bool first = true;
  for (const auto& [sd_deg, sd_mm] : {std::pair{4.0, 5.0}, {8.0, 10.0}, {16.0, 20.0}, {32.0, 40.0},
                                       {64.0, 80.0}, {128.0, 160.0}, {180.0, 400.0}}) {
    const auto den = blur(w, nz, sd_deg * deg, sd_mm / dz);
    const auto num = blur(wg, nz, sd_deg * deg, sd_mm / dz);
    for (std::size_t q = 0; q < gap.size(); ++q) {
      if (std::isnan(ghat[q]) && den[q] > 0.15) ghat[q] = num[q] / den[q];
    }
    if (first) {
      // The local spread of the normal gap (ribs against intercostal spaces, the staircase of
      // the grid): a ray counts as abnormal only beyond it.
      std::vector<double> wr(gap.size(), 0.0);
      for (std::size_t q = 0; q < gap.size(); ++q) {
        if (w[q] > 0 && !std::isnan(ghat[q])) wr[q] = (gap[q] - ghat[q]) * (gap[q] - ghat[q]);
      }
      const auto sr = blur(wr, nz, sd_deg * deg, sd_mm / dz);
      for (std::size_t q = 0; q < gap.size(); ++q) {
        spread[q] = den[q] > 0.15 ? std::sqrt(std::max(0.0, sr[q] / den[q])) : 0.0;
      }
      first = false;
    }
  }
  // A lesion against the wall pushes the aerated lung away from it: the lung's outline, seen
  // from its axis, has a dent there, while where the anatomy keeps the lung off the ribs (the
  // apex inside a wide first rib ring, the lung's medial corners) the outline is smooth. The
  // dent is the grayscale closing of the outline radius over (angle, height), at growing scales
  // up to a lobe's size; the costal outline is convex, so a closing finds no dent where there
  // is no lesion. A ray is abnormal when its gap exceeds the normal gap *and* it lies in a dent.
  log::debug("costal: ghat {:.3f}", tsw.lap());
  const std::vector<double> dent = outline_dents(r_air, gap, nz, g.spacing[2]);
  std::vector<std::uint8_t> abnormal(gap.size(), 0);
  // Wide gaps whatever the outline: a dent wider than the largest closing window (a whole
  // consolidated lobe) is no dent, and is not completed, but its tissue must be reported.
  std::vector<std::uint8_t> wide(gap.size(), 0);
  std::vector<double> r_pl(gap.size(), kNone);
  for (std::size_t q = 0; q < gap.size(); ++q) {
    if (std::isnan(gap[q]) || std::isnan(ghat[q])) continue;
    const double tol = std::max({kMinToleranceMm, 1.5 * voxel, 2.0 * spread[q]});
    wide[q] = gap[q] > ghat[q] + tol;
    if (gap[q] > ghat[q] + tol && dent[q] > tol) {
      abnormal[q] = 1;
      // Half a voxel beyond the interpolated pleura: the partial-volume voxel at the wall is
      // lung in a clean scan (it is where the aerated lung's outermost sample lies).
      r_pl[q] = r_rib[q] - ghat[q] + 0.5 * voxel;
    }
  }
  // In front, the mediastinum reaches the chest wall medial of the lungs' anterior margins: the
  // heart behind the left costal cartilages (the cardiac notch), the great vessels behind the
  // first ribs and clavicles. Tissue there lies between lung and rib but is no pleural gap. So
  // an anterior ray counts only as far medially as the slice's most medial normal anterior ray
  // (the lung's anterior margin, over +-2 slices): the wall in front of a lung ends where the
  // lung's contact with it ends. Behind, the lung meets the ribs all the way to the spine, whose
  // own bone is not used.
  std::vector<double> dir_x(kAngles), dir_y(kAngles);
  for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
    dir_x[m] = cosa[m] * fg.direction[0] + sina[m] * fg.direction[1];
    dir_y[m] = cosa[m] * fg.direction[3] + sina[m] * fg.direction[4];
  }
  constexpr double kAnterior = -0.2;  // physical y of the ray's direction (LPS: -y is anterior)
  // Medial-ness of a direction: its x component towards the midline.
  const auto medial = [&](std::size_t m) { return -side_sign * dir_x[m]; };
  std::vector<double> margin(nz, -2.0);  // most medial normal anterior ray per slice
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
      const std::size_t q = m * nz + k;
      if (dir_y[m] < kAnterior && w[q] > 0) margin[k] = std::max(margin[k], medial(m));
    }
  }
  std::vector<double> margin_w(nz, -2.0);
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t q = k >= 2 ? k - 2 : 0; q <= std::min(nz - 1, k + 2); ++q) {
      margin_w[k] = std::max(margin_w[k], margin[q]);
    }
  }
  for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
    if (dir_y[m] >= kAnterior) continue;
    for (std::size_t k = 0; k < nz; ++k) {
      if (medial(m) > margin_w[k] + 1e-9) abnormal[m * nz + k] = wide[m * nz + k] = 0;
    }
  }
  // The top of the cupula is cut tangentially by the slices: its rays run along the dome of the
  // pleura, not across it, and partial volume makes its last slices look dense. No completion
  // within kApexMm of the lung's highest slice.
  {
    std::ptrdiff_t top = -1;
    for (std::size_t k = 0; k < nz; ++k) {
      bool any = false;
      for (std::size_t m = 0; m < std::size_t(kAngles) && !any; ++m) any = !std::isnan(r_air[m * nz + k]);
      if (!any) continue;
      const std::ptrdiff_t h = std::ptrdiff_t(k) * in.superior;
      if (top < 0 || h > top * in.superior) top = std::ptrdiff_t(k);
    }
    const double apex_slices = kApexMm / g.spacing[2];
    for (std::size_t k = 0; k < nz && top >= 0; ++k) {
      if (double(std::abs(std::ptrdiff_t(k) - top)) > apex_slices) continue;
      for (std::size_t m = 0; m < std::size_t(kAngles); ++m) abnormal[m * nz + k] = wide[m * nz + k] = 0;
    }
  }
  // An abnormal ray alone among normal ones is the grid's staircase or noise, not a lesion.
  std::vector<std::uint8_t> keep(gap.size(), 0);
  for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
    for (std::size_t k = 0; k < nz; ++k) {
      const std::size_t q = m * nz + k;
      if (!abnormal[q]) continue;
      int nb = 0;
      for (int dm = -1; dm <= 1; ++dm) {
        for (int dk = -1; dk <= 1; ++dk) {
          if (!dm && !dk) continue;
          const std::ptrdiff_t kq = std::ptrdiff_t(k) + dk;
          if (kq < 0 || kq >= std::ptrdiff_t(nz)) continue;
          const std::size_t mq = std::size_t((int(m) + dm + kAngles) % kAngles);
          nb += abnormal[mq * nz + std::size_t(kq)];
        }
      }
      keep[q] = nb >= 2;
    }
  }
  for (std::size_t q = 0; q < keep.size(); ++q) result.abnormal_rays += keep[q];
  log::debug("costal: dents+rules {:.3f}", tsw.lap());
  // Voxels inside the wedge of an abnormal ray, between the aerated lung and the pleura.
  const std::vector<std::int32_t>& floor = *in.floor;
  const double step_deg = 2 * M_PI / kAngles;
  // The ray (its index in the (angle, slice) maps) through box voxel (i, j) of slice k, and the
  // voxel's distance from the axis (mm): the fill, the chest-wall mask and the left-out count
  // all map voxels to rays the same way.
  const auto ray_of = [&](std::size_t i, std::size_t j, std::size_t k, double ci, double cj,
                          double& r) {
    const double dx = (double(i) - ci) * sx, dy = (double(j) - cj) * sy;
    double a = std::atan2(dy, dx);
    if (a < 0) a += 2 * M_PI;
    r = std::hypot(dx, dy);
    return (std::size_t(std::lround(a / step_deg)) % std::size_t(kAngles)) * nz + k;
  };
  // The chest wall as the model sees it: beyond the interpolated pleura by more than the ray's
  // tolerance. Where aerated lung meets the ribs, the closing's bays there are wall (CIP's
  // 4 mm lateral wall: a 12 mm crescent of intercostal muscle had been admitted).
#pragma omp parallel for schedule(dynamic, 2)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk);
    const double ci = axis.ci[k], cj = axis.cj[k];
    if (std::isnan(ci)) continue;
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        double r = 0;
        const std::size_t q = ray_of(i, j, k, ci, cj, r);
        if (std::isnan(gap[q]) || std::isnan(ghat[q])) continue;
        const double tol = std::max({kMinToleranceMm, 1.5 * voxel, 2.0 * spread[q]});
        if (r > r_rib[q] - ghat[q] + tol) result.beyond_pleura.at(i, j, k) = 1;
      }
    }
  }
  MaskImage candidate(g, 0);
  std::size_t blocked = 0;
#pragma omp parallel for schedule(dynamic, 2) reduction(+ : blocked)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk);
    const double ci = axis.ci[k], cj = axis.cj[k];
    if (std::isnan(ci)) continue;
    // The slice's kept wedges lie within this rectangle (their far ends, widened by a wedge's
    // half width, and the axis).
    double lo_i = ci, hi_i = ci, lo_j = cj, hi_j = cj;
    bool any = false;
    for (std::size_t m = 0; m < std::size_t(kAngles); ++m) {
      const std::size_t q = m * nz + k;
      if (!keep[q]) continue;
      any = true;
      const double r = r_pl[q] + 2 * voxel;
      for (const double a : {double(m) - 0.5, double(m) + 0.5}) {
        const double ang = a * step_deg;
        lo_i = std::min(lo_i, ci + std::cos(ang) * r / sx);
        hi_i = std::max(hi_i, ci + std::cos(ang) * r / sx);
        lo_j = std::min(lo_j, cj + std::sin(ang) * r / sy);
        hi_j = std::max(hi_j, cj + std::sin(ang) * r / sy);
      }
    }
    if (!any) continue;
    const std::size_t i0 = std::size_t(std::clamp(std::floor(lo_i), 0.0, double(nx - 1)));
    const std::size_t i1 = std::size_t(std::clamp(std::ceil(hi_i), 0.0, double(nx - 1)));
    const std::size_t j0 = std::size_t(std::clamp(std::floor(lo_j), 0.0, double(ny - 1)));
    const std::size_t j1 = std::size_t(std::clamp(std::ceil(hi_j), 0.0, double(ny - 1)));
    const std::int32_t h = std::int32_t(k) * in.superior;
    for (std::size_t j = j0; j <= j1; ++j) {
      for (std::size_t i = i0; i <= i1; ++i) {
        const std::size_t n = k * sxy + j * nx + i;
        const std::size_t f = full(i, j, k);
        if (lung[n] || labels[f] != labels::kBackground || outside[f]) continue;
        double r = 0;
        const std::size_t q = ray_of(i, j, k, ci, cj, r);
        if (!keep[q] || r <= r_air[q] || r > r_pl[q]) continue;
        const double hu = ct[f];
        if (hu >= p.fill_max_hu || (hu >= p.fat_hu.lo_hu && hu < p.fat_hu.hi_hu)) continue;
        if (h < floor[j * nx + i]) {
          ++blocked;
          continue;
        }
        candidate[n] = 1;
      }
    }
  }
  log::debug("costal: fill {:.3f}", tsw.lap());
  // Keep what is connected to the lung through candidate voxels.
  std::deque<std::size_t> queue;
  for (std::size_t n = 0; n < candidate.size(); ++n) {
    if (!candidate[n]) continue;
    bool touches = false;
    for_each_face_neighbour(g, n, [&](std::size_t v) { touches = touches || lung[v]; });
    if (touches) {
      result.fill[n] = 1;
      queue.push_back(n);
    }
  }
  while (!queue.empty()) {
    const std::size_t v = queue.front();
    queue.pop_front();
    for_each_face_neighbour(g, v, [&](std::size_t w2) {
      if (candidate[w2] && !result.fill[w2]) {
        result.fill[w2] = 1;
        queue.push_back(w2);
      }
    });
  }
  std::size_t added = 0, total = 0;
  for (std::size_t n = 0; n < candidate.size(); ++n) {
    total += candidate[n];
    added += result.fill[n];
  }
  // Dense tissue inside the interpolated pleura on wide rays that was not added: what the
  // completion could not take (below the diaphragm limit, not connected) and what it did not
  // try (no outline dent: a lobe-sized consolidation). Soft tissue only: fat and aerated lung
  // are no consolidation.
  std::size_t wide_left = 0;
#pragma omp parallel for schedule(dynamic, 2) reduction(+ : wide_left)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
    const std::size_t k = std::size_t(kk);
    const double ci = axis.ci[k], cj = axis.cj[k];
    if (std::isnan(ci)) continue;
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t n = k * sxy + j * nx + i;
        if (lung[n] || result.fill[n]) continue;
        const std::size_t f = full(i, j, k);
        if (labels[f] != labels::kBackground || outside[f]) continue;
        const double hu = ct[f];
        if (hu < p.fat_hu.hi_hu || hu >= p.fill_max_hu) continue;
        double r = 0;
        const std::size_t q = ray_of(i, j, k, ci, cj, r);
        if (!wide[q]) continue;
        if (r > r_air[q] && r <= r_rib[q] - ghat[q]) ++wide_left;
      }
    }
  }
  result.left_out_ml = double(wide_left) * g.voxel_volume_ml();
  log::debug("costal: gap median {:.1f} mm, {} rays, {} abnormal, {} voxels added ({} of {} "
             "candidates; {} below the floor), {:.1f} mL left out",
             med, result.rays, result.abnormal_rays, added, added, total, blocked,
             result.left_out_ml);
  return result;
}

}  // namespace lungvol::seg
