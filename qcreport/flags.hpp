#pragma once
// QC flags: findings a reader should look at before trusting a scan's numbers.
#include <string>

#include "qcreport/batch_view.hpp"

namespace lungvol::qcreport {

struct FlagOptions {
  double lung_change_pct = 10;           // |lung volume change| between visits above this, in %
  double inspiration_mass_pct = 10;      // ... while the tissue mass changes more than this
  double min_baseline_lesion_pct = 0.5;  // baseline lesion_pct below this: little to measure
  bool check_border = true;              // read lesions.nii.gz (when present) for border lesions
};

// Sets the flags and QC score of every Visit of `view` (batch::compute_qc with these limits: the
// same flags the batch stores, pipeline/flags.hpp). For a scan whose metrics.json predates the
// end-slice counts, lesion_at_border is found by reading lesions.nii.gz (when check_border).
void add_flags(BatchView& view, const FlagOptions& options);

// Number of lesion voxels on the first and last slice (k = 0, k = nz - 1) of a label image
// file; Error(kInput) when it cannot be read.
std::size_t lesion_voxels_on_end_slices(const std::string& lesions_path);

}  // namespace lungvol::qcreport
