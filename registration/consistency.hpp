#pragma once
// Consistency of the lung masks across the visits of one subject, through the registration: a
// visit's lung mask carried into another visit's space and compared with that visit's own mask.
// A large disagreement points the reviewer to the scan (a failed segmentation or registration),
// and dense tissue inside the carried lung that the target's own mask leaves out is
// consolidation missing from that mask.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "registration/field.hpp"

namespace lungvol::registration {

// How one visit relates to the subject's baseline: its lung map on its own grid, the baseline ->
// visit transform and the visit -> baseline one (both null for the baseline itself).
struct VisitSpace {
  std::string visit;
  const LabelImage* lungs = nullptr;
  const Transform* from_baseline = nullptr;  // baseline point -> this visit's point
  const Transform* to_baseline = nullptr;    // this visit's point -> baseline point
};

// The lung mask (right, left; airway left out) of `source` in the space of `target`, on
// target.lungs' grid, nearest neighbour: the labels 1 / 2 of the source. For the best-aerated
// visit as source this is the envelope the segmentation of `target` can use to recover
// consolidation its own mask left out.
LabelImage warped_envelope(const VisitSpace& source, const VisitSpace& target);

// The visit whose segmentation to trust for the envelope: the lowest lesion fraction of the lung
// (least consolidation left to miss), the larger lung volume on a tie. `lesion_pct` and
// `lung_ml` per visit, same order as `visits`; returns the index.
std::size_t best_aerated(const std::vector<double>& lesion_pct, const std::vector<double>& lung_ml);

struct ConsistencyParams {
  double min_dice = 0.93;             // below: flagged
  double max_missed_dense_ml = 20.0;  // above: flagged
  double dense_low_hu = -700, dense_high_hu = 100;  // "dense": the protocol's lesion band
  double erode_mm = 3.0;  // the carried mask is eroded first (registration error at the border)
};

struct MaskAgreement {
  std::string source_visit, target_visit;
  double dice = 0;
  double carried_ml = 0, own_ml = 0;
  double disagreement_ml = 0;   // voxels in exactly one of the two masks
  double missed_dense_ml = 0;   // in the eroded carried mask, not in the own mask, HU dense
  bool flagged = false;
  std::string reason;  // why flagged ("" when not)
};

// `carried`: the source's lung map in the target's space (warped_envelope); `own`: the target's
// lung map; `ct`: the target's CT. All on one grid.
MaskAgreement compare_lung_masks(const LabelImage& carried, const LabelImage& own, const CtImage& ct,
                                 const ConsistencyParams& p = {});

// Binary erosion of a mask (any non-zero = inside) by a box of radius r_mm (per axis, in
// voxels rounded up).
MaskImage erode_box(const LabelImage& mask, double r_mm);

}  // namespace lungvol::registration
