#pragma once
// Inserts ellipsoidal lesions of known volume into a real CT (test helper): the increase of the
// measured ground-glass and solid volumes must match what was inserted.
#include <array>
#include <cstdint>
#include <vector>

#include "core/image.hpp"

namespace lungvol::test {

struct InsertedLesion {
  std::array<double, 3> centre_index{0, 0, 0};  // voxel index (i, j, k)
  std::array<double, 3> semi_axes_mm{10, 10, 10};
  double lo_hu = -600, hi_hu = -450;  // the lesion's HU range (uniform base, plus noise)
  double noise_hu = 15;
};

// Writes the lesions into `ct` (voxel centres inside the ellipsoid) and returns, per lesion, the
// number of voxels written. HU = a smooth random base inside [lo, hi] plus Gaussian noise,
// clipped to [lo, hi].
std::vector<std::uint64_t> insert_lesions(CtImage& ct, const std::vector<InsertedLesion>& lesions,
                                          std::uint64_t seed);

}  // namespace lungvol::test
