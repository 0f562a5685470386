#include "densitometry/density.hpp"

#include <cmath>

namespace lungvol::dens {

double percentile_hu(const HuHistogram& h, double q) {
  const std::uint64_t n = h.total();
  if (n == 0) return std::nan("");
  const double target = q / 100.0 * double(n);
  double cum = 0;
  for (int b = 0; b < HuHistogram::kBins; ++b) {
    cum += double(h.counts[b]);
    if (cum >= target && cum > 0) return double(b + HuHistogram::kMinHu);
  }
  return double(HuHistogram::kMaxHu);
}

DensityMetrics measure_density(const HuHistogram& h, const DensitometryParams& p,
                               double voxel_ml) {
  DensityMetrics d;
  const double n = double(h.total());
  if (n == 0) return d;
  d.empty = false;
  double s1 = 0;
  for (int b = 0; b < HuHistogram::kBins; ++b) s1 += double(h.counts[b]) * (b + HuHistogram::kMinHu);
  d.mean_hu = s1 / n;
  double m2 = 0, m3 = 0, m4 = 0;
  for (int b = 0; b < HuHistogram::kBins; ++b) {
    if (!h.counts[b]) continue;
    const double x = double(b + HuHistogram::kMinHu) - d.mean_hu;
    const double c = double(h.counts[b]);
    m2 += c * x * x;
    m3 += c * x * x * x;
    m4 += c * x * x * x * x;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  d.sd_hu = n > 1 ? std::sqrt(m2 * n / (n - 1)) : 0.0;
  d.skewness = m2 > 0 ? m3 / std::pow(m2, 1.5) : 0.0;
  d.kurtosis = m2 > 0 ? m4 / (m2 * m2) - 3.0 : 0.0;
  d.median_hu = percentile_hu(h, 50);
  for (double q : p.percentiles) d.percentiles.emplace_back(q, percentile_hu(h, q));
  for (double t : p.laa_hu) d.laa_pct.emplace_back(t, 100.0 * double(h.count_below(t)) / n);
  d.haa_pct = 100.0 * double(h.count_in(p.haa.lo_hu, p.haa.hi_hu)) / n;
  d.mass_g = (d.mean_hu + 1000.0) / 1000.0 * n * voxel_ml;
  return d;
}

}  // namespace lungvol::dens
