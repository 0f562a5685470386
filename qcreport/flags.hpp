#pragma once
// QC flags: findings a reader should look at before trusting a scan's numbers.
#include <string>

#include "qcreport/batch_view.hpp"

namespace lungvol::qcreport {

struct FlagOptions {
  double lung_change_pct = 10;           // |lung volume change| between visits above this, in %
  double min_baseline_lesion_pct = 0.5;  // baseline lesion_pct below this: little to measure
  bool check_border = true;              // read lesions.nii.gz (when present) for border lesions
};

// Appends Flag entries to every Visit of `view`:
//  lung_volume_change   lung volume differs by more than lung_change_pct % from the subject's
//                       previous measured visit (inspiration / segmentation inconsistency)
//  lesion_at_border     lesion voxels on the first or last slice of lesions.nii.gz (the lesion
//                       may continue outside the scanned range); skipped without the file
//  input_warning        one per reading warning (metrics.json input.warnings, store warnings)
//  calibration          metrics.json calibration.within_tolerance is false
//  low_baseline_lesion  baseline lesion_pct below min_baseline_lesion_pct (relative changes
//                       of a near-zero baseline are unstable)
void add_flags(BatchView& view, const FlagOptions& options);

// Number of lesion voxels on the first and last slice (k = 0, k = nz - 1) of a label image
// file; Error(kInput) when it cannot be read.
std::size_t lesion_voxels_on_end_slices(const std::string& lesions_path);

}  // namespace lungvol::qcreport
