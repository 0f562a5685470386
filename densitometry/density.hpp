#pragma once
// Lung densitometry from a region's HU histogram (1-HU bins).
#include <utility>
#include <vector>

#include "core/histogram.hpp"
#include "core/protocol.hpp"

namespace lungvol::dens {

struct DensityMetrics {
  double mean_hu = 0, median_hu = 0, sd_hu = 0;
  double skewness = 0;
  double kurtosis = 0;  // excess kurtosis (0 for a normal distribution)
  std::vector<std::pair<double, double>> percentiles;  // (q, HU): PD10, PD15 ...
  std::vector<std::pair<double, double>> laa_pct;      // (threshold HU, % of voxels below)
  double haa_pct = 0;  // % of voxels in the protocol's high-attenuation band [lo, hi)
  double mass_g = 0;   // sum of (HU + 1000) / 1000 g/mL x voxel volume
  bool empty = true;
};

// The q-th percentile density: the smallest integer HU h with at least q% of voxels <= h.
double percentile_hu(const HuHistogram& h, double q);
DensityMetrics measure_density(const HuHistogram& h, const DensitometryParams& p,
                               double voxel_ml);

}  // namespace lungvol::dens
