#pragma once
// Lesion change maps in baseline space (core/labels.hpp kResolved .. kRegressed): the baseline's
// lesion map against a follow-up's, registered to the baseline, and their volumes per region.
#include <array>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace lungvol::registration {

// Per voxel of the baseline grid: b = baseline lesion class, f = the follow-up's lesion class at
// the same anatomical point (its lesion map warped to the baseline, nearest neighbour).
//   resolved b != 0, f = 0; persistent b = f != 0; new b = 0, f != 0;
//   progressed b ground-glass, f solid; regressed b solid, f ground-glass.
// All inputs on the baseline grid.
LabelImage change_map(const LabelImage& baseline_lesions, const LabelImage& warped_followup_lesions);

// Volumes (mL, in baseline space) of each change class per region: lungs, right, left and the
// upper / middle / lower thirds of each lung and of both (volumetry's zones, vol::region_names()
// order), plus the baseline and registered follow-up lesion volumes per region, from which the
// fractions follow. A voxel belongs to the region of its baseline lung label; a voxel outside
// the baseline lungs (a new lesion the registration places just outside them) to the region of
// the warped follow-up's lung label. Zones are the baseline lungs' thirds.
struct ChangeVolumes {
  std::string region;
  std::array<double, 6> class_ml{};  // by change label (index 0 unused)
  double baseline_lesion_ml = 0;     // resolved + persistent + progressed + regressed
  double followup_lesion_ml = 0;     // persistent + new + progressed + regressed
  double baseline_lung_ml = 0;
  // resolved / baseline lesion, in percent; empty (NaN) when there is no baseline lesion.
  double resolved_pct() const;
};
std::vector<ChangeVolumes> change_volumes(const LabelImage& change, const LabelImage& baseline_lungs,
                                          const LabelImage& warped_followup_lungs);

// The change measurements of one region as (metric, value, unit) rows, in a stable order:
// resolved_ml, persistent_ml, new_ml, progressed_ml, regressed_ml, baseline_lesion_ml,
// followup_lesion_ml (registered), resolved_pct (of the baseline lesion), new_pct (of the
// baseline lung volume), progressed_pct and regressed_pct (of the baseline lesion).
struct ChangeMetric {
  std::string metric;
  double value;
  std::string unit;
};
std::vector<ChangeMetric> change_metrics(const ChangeVolumes& v);

}  // namespace lungvol::registration
