#pragma once
// Bright tubes by their shape: multi-scale Hessian analysis of the HU image (Sato et al., Med
// Image Anal 1998; Frangi et al., MICCAI 1998). A vessel is a tube: across it the intensity
// falls off in two directions (two large negative eigenvalues), along it hardly at all. A plate
// (subpleural band, fissure, septum) has one large eigenvalue, a blob (nodule, patch) three.
//
// The measure is in HU: at the scale sigma that fits a tube, sigma^2 times the smaller of the two
// cross-sectional curvatures is about half the tube's contrast against its surroundings (a
// Gaussian-profile tube of peak contrast A gives A/4, a uniform disc about A/2 before the
// scanner's blur), so a threshold reads as "a tube at least this much brighter than what is
// around it". Blobs are damped by the third eigenvalue, as in Sato's line filter.
#include <array>
#include <cstdint>
#include <vector>

#include "core/image.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {

struct TubeOptions {
  std::vector<double> scales_mm;  // Gaussian sigma of each scale, in mm
  // HU is clipped to [clip_lo_hu, clip_hi_hu] before filtering: contrast-enhanced vessels then
  // look like non-enhanced ones, and bone next to the lung does not ring into it.
  double clip_lo_hu = -1000;
  double clip_hi_hu = 100;
  // A scale is computed on a grid coarsened by 2, 4, ... along an axis as long as sigma still
  // spans this many of the coarse voxels (0: never coarsen).
  double pyramid_sigma_voxels = 2.0;
};

struct TubeStrength {
  Image<float> strength;       // HU, on the box's grid; 0 where not evaluated or not a bright tube
  Image<std::uint8_t> scale;   // 1 + index into scales_mm of the strongest scale; 0: none
};

// Bright-tube strength at the voxels of `box` (a box of ct's grid) where active[n] != 0 (active
// has the box's grid): the largest over the scales. Scales much larger than the voxel size are
// computed on a grid coarsened by block means (a pyramid), then interpolated linearly.
// Voxels outside the box (within the image) are read as context, so the box's edge does not
// change the result.
TubeStrength bright_tube_strength(const CtImage& ct, const Box& box, const MaskImage& active,
                                  const TubeOptions& options);

// The eigenvalues of the symmetric matrix [xx xy xz; xy yy yz; xz yz zz] given as
// {xx, yy, zz, xy, xz, yz}, sorted by absolute value (|e[0]| <= |e[1]| <= |e[2]|).
std::array<double, 3> symmetric_eigenvalues(const std::array<double, 6>& h);

// The measure from sorted eigenvalues (HU/mm^2) at scale sigma_mm: 0 unless e[1] and e[2] are
// negative; else sigma^2 * |e[1]|, damped by exp(-(e[0]/e[1])^2 / (2 * 0.5^2)) (a blob, whose
// e[0] is as large as e[1], keeps exp(-2) = 14 % of it) and by exp(-q^2 / (2 * 0.5^2)) with
// q = sigma * |gradient| / (sigma^2 * |e[1]|) (0 on a tube's axis; large on the flank of a tube
// or at the edge of a plate, where the slope dominates the curvature).
float tube_measure(const std::array<double, 3>& e, double gradient, double sigma_mm);

}  // namespace lungvol::seg
