#pragma once
// Trachea and main bronchi, found by following the tracheal lumen down slice by slice.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"

namespace lungvol::seg {

struct AirwayResult {
  MaskImage mask;  // lumen of trachea and main bronchi (slightly dilated to take the wall's
                   // partial-volume rim with it)
  std::vector<std::string> warnings;
  bool carina_found = false;
};

// `air` is the inside-the-body air mask (lungs + airways); the trachea is the small region
// within 40 mm of the body's midline (index `midline_i` along i) in the most cranial slices.
AirwayResult segment_airway(const CtImage& ct, const MaskImage& air, double midline_i,
                            const LungParams& p);

}  // namespace lungvol::seg
