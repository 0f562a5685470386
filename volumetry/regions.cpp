#include "volumetry/regions.hpp"

#include <algorithm>
#include <array>

#include "core/labels.hpp"

namespace lungvol::vol {

const std::vector<std::string>& region_names() {
  static const std::vector<std::string> names = {
      "lungs",       "right",      "left",        "right_upper", "right_middle", "right_lower",
      "left_upper",  "left_middle", "left_lower", "upper",       "middle",       "lower"};
  return names;
}

namespace {
enum Region { kLungs, kRight, kLeft, kRightUpper, kLeftUpper = 6, kUpper = 9, kCount = 12 };
}  // namespace

// For each slice k: zone 0 (upper), 1 (middle) or 2 (lower) of a lung spanning slices whose
// superior positions are known. Zones are thirds of the physical craniocaudal extent.
std::vector<int> lung_slice_zones(const LabelImage& lungs, std::uint8_t label) {
  const Geometry& g = lungs.geom;
  const std::size_t sxy = g.slice_voxels();
  std::vector<int> zone(g.size[2], -1);
  double zmin = 1e30, zmax = -1e30;
  std::vector<double> zpos(g.size[2]);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    zpos[k] = g.to_physical(0, 0, double(k))[2];
    const auto* s = lungs.data.data() + k * sxy;
    if (std::find(s, s + sxy, label) != s + sxy) {
      zmin = std::min(zmin, zpos[k]);
      zmax = std::max(zmax, zpos[k]);
    }
  }
  if (zmax < zmin) return zone;
  const double third = (zmax - zmin) / 3.0;
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    const double from_top = zmax - zpos[k];
    zone[k] = from_top < third ? 0 : from_top < 2 * third ? 1 : 2;
  }
  return zone;
}

std::vector<RegionHistograms> build_region_histograms(const CtImage& ct, const LabelImage& lungs,
                                                      const MaskImage& suppressed,
                                                      const LabelImage* given_lesions) {
  const Geometry& g = ct.geom;
  const std::size_t sxy = g.slice_voxels();
  const auto right_zone = lung_slice_zones(lungs, labels::kRightLung);
  const auto left_zone = lung_slice_zones(lungs, labels::kLeftLung);

  std::vector<RegionHistograms> result(kCount);
  for (int r = 0; r < kCount; ++r) {
    result[r].name = region_names()[r];
    result[r].lesion_labels_given = given_lesions != nullptr;
  }
  // Per-thread histograms of the three base regions per zone, merged after the pass.
#pragma omp parallel
  {
    // [side 0 right / 1 left][zone 0..2]
    std::array<std::array<RegionHistograms, 3>, 2> local;
#pragma omp for schedule(static)
    for (std::ptrdiff_t k = 0; k < std::ptrdiff_t(g.size[2]); ++k) {
      const std::size_t base = std::size_t(k) * sxy;
      for (std::size_t p = 0; p < sxy; ++p) {
        const std::uint8_t l = lungs[base + p];
        if (l != labels::kRightLung && l != labels::kLeftLung) continue;
        const int side = l == labels::kRightLung ? 0 : 1;
        const int z = side == 0 ? right_zone[k] : left_zone[k];
        auto& h = local[side][std::max(z, 0)];
        const int hu = ct[base + p];
        h.lung.add(hu);
        if (suppressed[base + p]) h.suppressed.add(hu);
        if (given_lesions) {
          const std::uint8_t les = (*given_lesions)[base + p];
          if (les == labels::kGroundGlass) h.given_ggo.add(hu);
          else if (les == labels::kSolid) h.given_solid.add(hu);
        }
      }
    }
#pragma omp critical
    for (int side = 0; side < 2; ++side) {
      for (int z = 0; z < 3; ++z) {
        const auto& h = local[side][z];
        for (int target : {int(kLungs), side == 0 ? int(kRight) : int(kLeft),
                           (side == 0 ? int(kRightUpper) : int(kLeftUpper)) + z, int(kUpper) + z}) {
          result[target].lung.merge(h.lung);
          result[target].suppressed.merge(h.suppressed);
          result[target].given_ggo.merge(h.given_ggo);
          result[target].given_solid.merge(h.given_solid);
        }
      }
    }
  }
  return result;
}

}  // namespace lungvol::vol
