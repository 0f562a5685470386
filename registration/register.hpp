#pragma once
// Registration of a follow-up scan to the subject's baseline (docs/validation.md,
// "Registration"): an affine step on the thorax, then diffeomorphic demons, multi-resolution, on
// lung-focused grids, on images prepared so that lesions do not drive it:
//   * both scans are resampled (anti-aliased) onto grids covering their lungs plus a margin;
//   * HU are clipped to [clip_low_hu, clip_high_hu] (air .. soft tissue: bone is as bright as
//     muscle, so the lung boundary, vessels and airways carry the contrast);
//   * each scan's own lesion voxels (grown by lesion_margin_mm) are replaced by the baseline's
//     median parenchyma HU; after the affine step, the lesions of either scan are replaced in
//     both images (grown by one more voxel): a lesion that resolves, appears or consolidates
//     between the visits is the same flat parenchyma in both, exerts no force, and the field
//     inside it is interpolated by the regularisation from the lung around it;
//   * the follow-up's aerated lung is rescaled so that its median parenchyma density matches the
//     baseline's (HU + 1000 scaled: a deeper or shallower breath changes the density of the whole
//     lung, which would otherwise pull the intensity-driven demons).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/image.hpp"
#include "registration/field.hpp"

namespace lungvol::registration {

struct RegistrationParams {
  // Deformable step: diffeomorphic demons (Vercauteren et al. 2009), ITK 5.2.
  double grid_mm = 3.0;                  // finest grid spacing (isotropic)
  // Per level, coarsest first; levels = size. On the POPI and CIP known-motion pairs
  // (docs/validation.md) the finest level's iterations past 8 bought 0.1 mm of mean TRE (1.13 ->
  // 1.02 mm) for half the demons' CPU time, and the middle level's past 20 nothing: a
  // registration's CPU time is kept below a scan analysis's (issue #17, 3 visits per subject).
  std::vector<int> iterations{40, 20, 8};
  double field_sigma_vox = 1.5;          // Gaussian regularisation of the field (voxels)
  double update_sigma_vox = 0.5;         // of the update ("fluid" part), 0 = off
  double max_step_vox = 2.0;             // largest update per iteration (voxels)
  bool first_order_exp = false;          // exp(u) ~ x + u (cheaper, less exact)
  // Affine step (ITK v4 registration, mean squares, 2 levels).
  double affine_grid_mm = 4.0;
  int affine_iterations = 200;
  // Images.
  double margin_mm = 15.0;  // around the lungs' bounding box
  double clip_low_hu = -1000.0, clip_high_hu = 100.0;
  double lesion_margin_mm = 2.0;  // lesion masks grown before replacement
  bool mask_lesions = true;
  bool normalize_density = true;
  int inverse_iterations = 30;

  // Canonical text of every parameter (provenance; its hash identifies a registration).
  std::string text() const;
  nlohmann::json to_json() const;
};

// One visit's images: CT (HU), lungs (core/labels.hpp), lesions (may be empty: none).
struct VisitImages {
  const CtImage* ct = nullptr;
  const LabelImage* lungs = nullptr;
  const LabelImage* lesions = nullptr;
};

struct RegistrationTiming {
  double prepare_s = 0, affine_s = 0, deformable_s = 0, inverse_s = 0, total_s = 0;
  double cpu_s = 0;  // CPU time of the process (all threads) while registering
};

struct RegistrationResult {
  Transform forward;          // baseline -> follow-up (ITK: fixed -> moving)
  DisplacementField inverse;  // follow-up -> baseline, total displacement on a follow-up grid
  InverseQuality inverse_quality;  // |forward(inverse(y)) - y| over the follow-up grid
  // Mean absolute difference of the prepared images inside the baseline lungs (HU), before
  // registration (follow-up placed by the lung centroids), after the affine and after the
  // deformable step: a quick sanity check of convergence.
  double mad_initial_hu = 0, mad_affine_hu = 0, mad_final_hu = 0;
  double baseline_parenchyma_hu = 0, followup_parenchyma_hu = 0;
  double density_scale = 1;  // applied to the follow-up's (HU + 1000) in aerated lung
  RegistrationTiming timing;
  nlohmann::json to_json() const;  // the figures above
};

// Registers `followup` to `baseline`. Error(kProcessing) when either has no lung voxel.
RegistrationResult register_to_baseline(const VisitImages& baseline, const VisitImages& followup,
                                        const RegistrationParams& params = {});

// --- pieces, exposed for tests and the ITK engine ---

// The lung-focused registration grid: bounding box of the lung labels (right, left) in LPS,
// grown by margin_mm, axis-aligned, isotropic `spacing_mm`.
Geometry lung_grid(const LabelImage& lungs, double margin_mm, double spacing_mm);

// The prepared image of a visit on `grid` (see the file comment). `replacement_hu`: value of
// lesion voxels; `density_scale`: applied to (HU + 1000) of aerated lung voxels (< -300 HU).
// `lesion_weight`, when given, receives the share of each grid voxel that was replaced.
FloatImage prepare_image(const VisitImages& v, const Geometry& grid, const RegistrationParams& p,
                         double replacement_hu, double density_scale,
                         FloatImage* lesion_weight = nullptr);

// Median HU of the lung voxels (right, left) that are not lesion.
double parenchyma_median_hu(const VisitImages& v);

// ITK engine (registration/itk_engine.cpp): `fixed` and `moving` prepared on their own grids.
Affine itk_affine(const FloatImage& fixed, const FloatImage& moving, const Affine& initial,
                  const RegistrationParams& p);
// Demons between two images on the same grid; returns d with fixed(x) ~ moving(x + d(x)).
DisplacementField itk_demons(const FloatImage& fixed, const FloatImage& moving,
                             const RegistrationParams& p);

}  // namespace lungvol::registration
