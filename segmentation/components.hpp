#pragma once
// Connected components (6-connectivity in 3D, 4-connectivity in 2D).
#include <cstdint>
#include <vector>

#include "core/image.hpp"

namespace lungvol::seg {

// Component id of every voxel (0 = background), stored in 1, 2 or 4 bytes per voxel by the
// number of components: the label volume is the largest transient of the lung segmentation,
// and most masks it labels have few components.
class ComponentLabels {
 public:
  Geometry geom;

  ComponentLabels() = default;
  ComponentLabels(const Geometry& g, std::size_t max_id);
  std::uint32_t operator[](std::size_t n) const {
    if (!narrow_.empty()) return narrow_[n];
    if (!medium_.empty()) return medium_[n];
    return wide_[n];
  }
  std::size_t size() const { return geom.voxel_count(); }
  std::size_t bytes_per_voxel() const {
    return !narrow_.empty() ? 1 : !medium_.empty() ? 2 : !wide_.empty() ? 4 : 0;
  }
  // Sets voxels [first, last) to `id` (id <= the max_id given to the constructor).
  void fill(std::size_t first, std::size_t last, std::uint32_t id);

 private:
  VoxelVector<std::uint8_t> narrow_;
  VoxelVector<std::uint16_t> medium_;
  VoxelVector<std::uint32_t> wide_;
};

struct Components {
  ComponentLabels labels;            // 0 = background, 1..n components in raster order
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
// Keeps only components with at least `min_voxels` voxels (in place). Needs no label volume:
// memory grows with the number of runs of the mask's rows, not with its voxels.
void remove_small_components(MaskImage& mask, std::uint64_t min_voxels);

}  // namespace lungvol::seg
