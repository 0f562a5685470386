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

// Calls visit(w) for each of the (up to) six face neighbours w of voxel index v.
template <class Visit>
void for_each_face_neighbour(const Geometry& g, std::size_t v, Visit&& visit) {
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  const std::size_t i = v % nx, j = (v / nx) % ny, k = v / sxy;
  if (i > 0) visit(v - 1);
  if (i + 1 < nx) visit(v + 1);
  if (j > 0) visit(v - nx);
  if (j + 1 < ny) visit(v + nx);
  if (k > 0) visit(v - sxy);
  if (k + 1 < nz) visit(v + sxy);
}
// Keeps only components with at least `min_voxels` voxels (in place).
void remove_small_components(MaskImage& mask, std::uint64_t min_voxels);

}  // namespace lungvol::seg
