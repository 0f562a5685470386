#include "segmentation/lesions.hpp"

#include <algorithm>
#include <cmath>

#include "core/labels.hpp"
#include "segmentation/components.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

// 3x3x3 mean (separable running sums) of a cropped CT, as float.
std::vector<float> box_mean3(const CtImage& ct) {
  const Geometry& g = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  std::vector<float> a(ct.data.begin(), ct.data.end());
  std::vector<float> b(a.size());
  auto pass = [&](const std::vector<float>& in, std::vector<float>& out, std::size_t stride,
                  std::size_t n_axis, std::size_t axis) {
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t v = 0; v < std::ptrdiff_t(in.size()); ++v) {
      const std::size_t c = (std::size_t(v) / stride) % n_axis;
      float s = in[v];
      int cnt = 1;
      if (c > 0) { s += in[v - stride]; ++cnt; }
      if (c + 1 < n_axis) { s += in[v + stride]; ++cnt; }
      out[v] = s / float(cnt);
    }
    (void)axis;
  };
  pass(a, b, 1, nx, 0);
  pass(b, a, nx, ny, 1);
  if (nz > 1) {
    pass(a, b, nx * ny, nz, 2);
    return b;
  }
  return a;
}

}  // namespace

LesionSegmentation segment_lesions(const CtImage& ct, const LabelImage& lungs,
                                   const LesionParams& p) {
  const Geometry& g = ct.geom;
  LesionSegmentation out;
  out.lesions = LabelImage(g, labels::kNoLesion);
  out.suppressed = MaskImage(g, 0);
  // Work inside the lungs' bounding box only.
  Box box = bounding_box(lungs, std::uint8_t(0), 0.0);
  if (box.empty()) return out;
  const CtImage sub_ct = crop(ct, box);
  const LabelImage sub_lungs = crop(lungs, box);
  const auto smooth = box_mean3(sub_ct);
  const double lo = p.low_hu(), hi = p.high_hu();

  MaskImage region(sub_ct.geom, 0);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(region.size()); ++n) {
    region[n] = is_lung(sub_lungs[n]) && smooth[n] >= lo && smooth[n] < hi;
  }
  if (p.vessel_radius_mm > 0) {
    region = open(region, p.vessel_radius_mm);
  }
  const double voxel_mm3 = g.voxel_volume_mm3();
  remove_small_components(region, std::uint64_t(std::ceil(p.min_lesion_mm3 / voxel_mm3)));
  // Smoothing pulls a lesion's outermost voxels out of the band; take back the voxels next to
  // the region whose own HU is in the band.
  const double rim_mm = 1.01 * std::max({g.spacing[0], g.spacing[1], g.spacing[2]});
  const MaskImage near = dilate(region, rim_mm);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(region.size()); ++n) {
    if (!region[n] && near[n] && is_lung(sub_lungs[n]) && sub_ct[n] >= lo && sub_ct[n] < hi) {
      region[n] = 1;
    }
  }

  LabelImage sub_lesions(sub_ct.geom, labels::kNoLesion);
  MaskImage sub_suppressed(sub_ct.geom, 0);
  const double split = p.split_hu();
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(region.size()); ++n) {
    if (!is_lung(sub_lungs[n])) continue;
    const double hu = sub_ct[n];
    if (hu < lo || hu >= hi) continue;
    if (region[n] && is_lung(sub_lungs[n])) {
      sub_lesions[n] = hu < split ? labels::kGroundGlass : labels::kSolid;
    } else {
      sub_suppressed[n] = 1;
    }
  }
  // Paste back.
  for (std::size_t k = 0; k < sub_ct.geom.size[2]; ++k) {
    for (std::size_t j = 0; j < sub_ct.geom.size[1]; ++j) {
      for (std::size_t i = 0; i < sub_ct.geom.size[0]; ++i) {
        const std::size_t n = sub_ct.geom.index(i, j, k);
        const std::size_t m = g.index(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k);
        out.lesions[m] = sub_lesions[n];
        out.suppressed[m] = sub_suppressed[n];
      }
    }
  }
  return out;
}

}  // namespace lungvol::seg
