#pragma once
// Inspiration level of a follow-up against its baseline, and densitometry adjusted to the
// baseline's lung volume (docs/outputs.md, "Registration").
//
// Volume adjustment, the "sponge model" of lung densitometry in emphysema trials (Stoel BC et al.,
// Volume correction in computed tomography densitometry for follow-up studies on pulmonary
// emphysema, Proc Am Thorac Soc 2008;5:919-924; see also Parr DG et al., Respir Res 2008;9:21):
// the lung is a sponge whose tissue mass is fixed while air is added or removed, so its physical
// density (HU + 1000, in g/L) is inversely proportional to its volume. A density measured at
// volume V is adjusted to the reference volume V_ref by
//     HU_adj + 1000 = (HU + 1000) * V / V_ref.
// Applied to the mean lung density and to the 15th percentile point (PD15): both scale alike
// when every voxel's air content scales alike.
#include <string>

#include "core/image.hpp"
#include "registration/field.hpp"

namespace lungvol::registration {

// The sponge model: `hu` measured at lung volume `volume_ml`, adjusted to `reference_ml`.
double volume_adjusted_hu(double hu, double volume_ml, double reference_ml);

// det(grad T) over the baseline's lung voxels (right, left): T is baseline -> follow-up, so the
// mean is the follow-up's volume of the baseline's lungs over their baseline volume.
struct JacobianStats {
  double mean = 0, sd = 0, min = 0, max = 0, p01 = 0, p99 = 0;
  double nonpositive_pct = 0;  // folding: det <= 0 (should be 0 for a diffeomorphism)
  std::size_t voxels = 0;
};
JacobianStats jacobian_in_lungs(const Transform& t, const LabelImage& baseline_lungs);

struct InspirationLevel {
  double baseline_lung_ml = 0, followup_lung_ml = 0;
  double volume_ratio = 0;    // follow-up / baseline, segmented lung volumes
  double jacobian_ratio = 0;  // mean det(grad T) in the baseline lungs
  double tolerance = 0.10;
  bool flagged = false;       // |volume_ratio - 1| > tolerance or |jacobian_ratio - 1| > tolerance
};
InspirationLevel inspiration_level(double baseline_lung_ml, double followup_lung_ml,
                                   const JacobianStats& jacobian, double tolerance = 0.10);

}  // namespace lungvol::registration
