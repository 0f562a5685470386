#pragma once
// Connected components (6-connectivity in 3D, 4-connectivity in 2D).
#include <cstdint>
#include <vector>

#include "core/image.hpp"

namespace lungvol::seg {

struct Components {
  Image<std::uint32_t> labels;       // 0 = background, 1..n components
  std::vector<std::uint64_t> sizes;  // sizes[c] voxels of component c (sizes[0] unused)
  std::size_t count() const { return sizes.empty() ? 0 : sizes.size() - 1; }
};

Components label_components(const MaskImage& mask);
// Keeps only components with at least `min_voxels` voxels (in place).
void remove_small_components(MaskImage& mask, std::uint64_t min_voxels);

}  // namespace lungvol::seg
