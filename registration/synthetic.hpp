#pragma once
// A scan re-rendered at another inspiration level with a known, smooth, breathing-like motion:
// the ground truth of the registration tests (docs/validation.md, "Registration accuracy"),
// of `lungvol deform` and of the benchmark. Also used to test the volume-adjusted densitometry:
// with `mass_preserving`, lung density follows the air content (the lung tissue's mass is
// conserved: (HU + 1000) is multiplied by the local volume ratio).
#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/image.hpp"
#include "registration/field.hpp"

namespace lungvol::registration {

struct BreathingParams {
  // Craniocaudal displacement of the lung bases (mm): positive = the diaphragm lower in the new
  // scan (deeper inspiration), falling smoothly (quadratically) to 0 at the apices.
  double diaphragm_mm = 18.0;
  // Relative expansion of the chest in the new scan, anterior-posterior and left-right, largest
  // at the lung bases (factor 1 + e), 40 % of it at the apices.
  double ap_expansion = 0.05;
  double lateral_expansion = 0.03;
  // A smooth non-separable component: sinusoidal displacement of this amplitude (mm) with a
  // wavelength of 160 mm.
  double wobble_mm = 2.0;
  // Rigid offset of the new scan (another table position): translation (mm), rotation about the
  // craniocaudal axis (degrees).
  Vec3 translation_mm{4.0, -3.0, -6.0};
  double rotation_deg = 2.0;
  // Image formation.
  bool mass_preserving = true;  // lung (HU + 1000) x local volume ratio
  double noise_hu = 20.0;       // Gaussian noise added to the new scan
  std::uint64_t seed = 1;
  nlohmann::json to_json() const;
};

// The motion, defined relative to the lungs' bounding box of the original scan. `to_original`
// is the analytic map from the new scan's space to the original's (psi); `to_new` its inverse
// (Newton's method).
class BreathingMotion {
 public:
  BreathingMotion(const LabelImage& original_lungs, const BreathingParams& p);
  Vec3 to_original(const Vec3& y) const;
  Vec3 to_new(const Vec3& x) const;
  // det(grad psi) at y (numerical).
  double jacobian_to_original(const Vec3& y) const;
  const BreathingParams& params() const { return p_; }

 private:
  BreathingParams p_;
  double z_lo_ = 0, z_hi_ = 1;
  Vec3 centre_{0, 0, 0};
};

struct RenderedScan {
  CtImage ct;
  LabelImage lungs;    // the original's lungs carried along (truth)
  LabelImage lesions;  // same
};

// The original scan seen through `motion`, on the original's grid: new(y) = original(psi(y)).
// Lung voxels keep their mass when `mass_preserving` (HU + 1000 scaled by det(grad psi)), noise
// is added to every voxel. `lesions` may be empty.
RenderedScan render_breathing(const CtImage& ct, const LabelImage& lungs, const LabelImage& lesions,
                              const BreathingMotion& motion);

}  // namespace lungvol::registration
