#pragma once
// Lung segmentation: right and left lung (dense lesions included), trachea and main bronchi.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"

namespace lungvol::seg {

struct LungSegmentation {
  LabelImage lungs;  // labels::kRightLung / kLeftLung / kAirway
  std::vector<std::string> warnings;
  double airway_ml = 0;
  double dense_added_ml = 0;  // volume brought back into the lungs by hole filling and closing
  bool lungs_touching = false;  // the lungs formed one component and were split
};

// Throws Error(kProcessing) when two lungs cannot be found.
LungSegmentation segment_lungs(const CtImage& ct, const LungParams& params);

// Right and left lung from a mask holding both: two regions on either side of `midline_x`
// (LPS mm), or one region split by erosion and regrowth (`touching` set). Regions smaller than
// min_lung_ml are ignored. Throws Error(kProcessing) when two lungs cannot be told apart.
LabelImage separate_left_right(const MaskImage& mask, double midline_x, double min_lung_ml,
                               bool* touching);

// Index step along k that points to the patient's head (+1 or -1), from the direction matrix.
int superior_step(const Geometry& g);

}  // namespace lungvol::seg
