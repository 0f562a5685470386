#include "registration/inspiration.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/labels.hpp"

namespace lungvol::registration {

double volume_adjusted_hu(double hu, double volume_ml, double reference_ml) {
  if (!(volume_ml > 0) || !(reference_ml > 0)) return std::nan("");
  return (hu + 1000.0) * volume_ml / reference_ml - 1000.0;
}

JacobianStats jacobian_in_lungs(const Transform& t, const LabelImage& lungs) {
  JacobianStats s;
  const FloatImage det = jacobian_determinant(t);
  const bool constant = t.field.empty();
  const GridMap jm(det.geom);
  const Geometry& g = lungs.geom;
  // Histogram of det in [0, 4) with 1e-3 bins for the percentiles; sums for mean and SD.
  constexpr int kBins = 4000;
  constexpr double kWidth = 1e-3;
  std::vector<std::uint64_t> hist(kBins + 2, 0);  // [0]: <= 0, [kBins + 1]: >= 4
  double sum = 0, sum2 = 0, mn = 1e30, mx = -1e30;
  std::uint64_t n = 0;
  const long nz = static_cast<long>(g.size[2]);
#pragma omp parallel
  {
    std::vector<std::uint64_t> local(hist.size(), 0);
    double ls = 0, ls2 = 0, lmn = 1e30, lmx = -1e30;
    std::uint64_t ln = 0;
#pragma omp for schedule(static) nowait
    for (long k = 0; k < nz; ++k) {
      for (std::size_t j = 0; j < g.size[1]; ++j) {
        for (std::size_t i = 0; i < g.size[0]; ++i) {
          const std::uint8_t l = lungs.data[g.index(i, j, std::size_t(k))];
          if (l != labels::kRightLung && l != labels::kLeftLung) continue;
          double v;
          if (constant) {
            v = det.data[0];
          } else {
            const auto p = g.to_physical(double(i), double(j), double(k));
            v = sample_linear(det, jm, {p[0], p[1], p[2]}, 1.0);
          }
          ls += v;
          ls2 += v * v;
          lmn = std::min(lmn, v);
          lmx = std::max(lmx, v);
          ++ln;
          const int b = v <= 0 ? 0 : std::min(kBins + 1, 1 + static_cast<int>(v / kWidth));
          ++local[std::size_t(b)];
        }
      }
    }
#pragma omp critical
    {
      for (std::size_t b = 0; b < hist.size(); ++b) hist[b] += local[b];
      sum += ls;
      sum2 += ls2;
      mn = std::min(mn, lmn);
      mx = std::max(mx, lmx);
      n += ln;
    }
  }
  if (n == 0) throw Error(ExitCode::kProcessing, "Jacobian: the baseline has no lung voxel");
  s.voxels = n;
  s.mean = sum / double(n);
  s.sd = std::sqrt(std::max(0.0, sum2 / double(n) - s.mean * s.mean));
  s.min = mn;
  s.max = mx;
  s.nonpositive_pct = 100.0 * double(hist[0]) / double(n);
  auto quantile = [&](double q) {
    const auto target = static_cast<std::uint64_t>(std::ceil(q * double(n)));
    std::uint64_t acc = 0;
    for (std::size_t b = 0; b < hist.size(); ++b) {
      acc += hist[b];
      if (acc >= std::max<std::uint64_t>(1, target)) {
        return b == 0 ? 0.0 : (double(b) - 0.5) * kWidth;
      }
    }
    return 4.0;
  };
  s.p01 = quantile(0.01);
  s.p99 = quantile(0.99);
  return s;
}

InspirationLevel inspiration_level(double baseline_lung_ml, double followup_lung_ml,
                                   const JacobianStats& jacobian, double tolerance) {
  InspirationLevel l;
  l.baseline_lung_ml = baseline_lung_ml;
  l.followup_lung_ml = followup_lung_ml;
  l.volume_ratio = baseline_lung_ml > 0 ? followup_lung_ml / baseline_lung_ml : std::nan("");
  l.jacobian_ratio = jacobian.mean;
  l.tolerance = tolerance;
  l.flagged = !(std::abs(l.volume_ratio - 1) <= tolerance) ||
              !(std::abs(l.jacobian_ratio - 1) <= tolerance);
  return l;
}

}  // namespace lungvol::registration
