#include "tests/support/lesion_insertion.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace lungvol::test {

std::vector<std::uint64_t> insert_lesions(CtImage& ct, const std::vector<InsertedLesion>& lesions,
                                          std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> counts;
  const Geometry& g = ct.geom;
  for (const auto& l : lesions) {
    std::uniform_real_distribution<double> base(l.lo_hu + 2 * l.noise_hu, l.hi_hu - 2 * l.noise_hu);
    std::normal_distribution<double> noise(0.0, l.noise_hu);
    const double mean = base(rng);
    std::uint64_t n = 0;
    std::array<std::size_t, 3> lo{}, hi{};
    for (int a = 0; a < 3; ++a) {
      const double r = l.semi_axes_mm[a] / g.spacing[a];
      lo[a] = std::size_t(std::max(0.0, std::floor(l.centre_index[a] - r)));
      hi[a] = std::size_t(std::min(double(g.size[a] - 1), std::ceil(l.centre_index[a] + r)));
    }
    for (std::size_t k = lo[2]; k <= hi[2]; ++k) {
      for (std::size_t j = lo[1]; j <= hi[1]; ++j) {
        for (std::size_t i = lo[0]; i <= hi[0]; ++i) {
          const double dx = (double(i) - l.centre_index[0]) * g.spacing[0] / l.semi_axes_mm[0];
          const double dy = (double(j) - l.centre_index[1]) * g.spacing[1] / l.semi_axes_mm[1];
          const double dz = (double(k) - l.centre_index[2]) * g.spacing[2] / l.semi_axes_mm[2];
          if (dx * dx + dy * dy + dz * dz > 1.0) continue;
          const double hu = std::clamp(mean + noise(rng), l.lo_hu, l.hi_hu);
          ct.at(i, j, k) = std::int16_t(std::lround(hu));
          ++n;
        }
      }
    }
    counts.push_back(n);
  }
  return counts;
}

}  // namespace lungvol::test
