#pragma once
// Integer-HU histogram with 1-HU bins: every volume, proportion and density figure of a region
// is a function of its histograms, so thresholds can be swept later without the images.
#include <cstdint>
#include <vector>

namespace lungvol {

struct HuHistogram {
  // Voxels below kMinHu or above kMaxHu are counted in the end bins (documented clamp).
  static constexpr int kMinHu = -1100;
  static constexpr int kMaxHu = 1899;
  static constexpr int kBins = kMaxHu - kMinHu + 1;

  std::vector<std::uint64_t> counts = std::vector<std::uint64_t>(kBins, 0);

  static int bin(int hu) {
    return hu < kMinHu ? 0 : hu > kMaxHu ? kBins - 1 : hu - kMinHu;
  }
  void add(int hu) { ++counts[bin(hu)]; }
  void merge(const HuHistogram& o) {
    for (int b = 0; b < kBins; ++b) counts[b] += o.counts[b];
  }
  std::uint64_t total() const;
  // Voxels with lo <= HU < hi (half-open, like the protocol bands).
  std::uint64_t count_in(double lo, double hi) const;
  std::uint64_t count_below(double hu) const { return count_in(-1e9, hu); }
};

}  // namespace lungvol
