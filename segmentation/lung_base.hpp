#pragma once
// The shape of a lung's base: where its lowest part lies, front against back.
//
// The diaphragm is attached low at the back (the posterior costophrenic recess reaches the
// 12th rib, about the level of T12-L1) and high at the front (the xiphoid and the 7th-8th costal
// cartilages, about T9): so in every normal lung, whatever the inspiration, the lowest lung lies
// at the back. A lower lobe that is consolidated and left out of the mask takes the back of the
// base with it: what remains ends on the major fissure, which is highest at the back. A mask
// whose base lies higher at the back than at the front has lost its dependent part, whatever
// the density, the size or the position of the lesion that did it.
#include <cstdint>
#include <vector>

#include "core/image.hpp"

namespace lungvol::seg {

struct LungBase {
  double posterior_mm = 0;  // height (LPS z) of the low part of the base, back quarter
  double anterior_mm = 0;   // the same, front quarter
  double lowest_mm = 0;     // the low part of the whole base (5th percentile of all columns)
  double height_mm = 0;     // the lung's craniocaudal extent
  std::size_t columns = 0;  // columns (i, j) the lung covers
  // How far the back of the base lies above the lowest part of the base: near zero in a normal
  // lung, large when the back is missing.
  double rise_mm() const { return posterior_mm - lowest_mm; }
};

// Above this rise a lung's base is flagged: the back of a normal base lies at its lowest part,
// within the slice quantisation of the two percentiles (two slices) and the variation of the
// lateral recess against the posterior one (10 mm). Measured: clean POPI -8 mm both lungs, CIP
// ct-64 0 mm both; a consolidated lower lobe left out, 18-56 mm (docs/validation.md).
double base_rise_flag_mm(double slice_mm);

// For the voxels of `label` in `labels` (an axial grid whose k axis runs along the patient's
// z): per column its lowest voxel; the columns in the front and the back quarter of the lung's
// anteroposterior extent; the 10th percentile of their lowest heights in each.
LungBase lung_base(const LabelImage& labels, std::uint8_t label);

// The diaphragm is a smooth dome; a consolidation resting on it lifts the aerated base of the
// columns it covers into a plateau as wide as the lesion, and a diaphragm limit taken from the
// aerated base would then keep the lesion out. A grayscale opening of the base heights (erosion,
// then dilation, by a square of half-width wi x wj columns) removes raised plateaus narrower than
// the square and keeps the dome's slopes: an opening leaves a monotonic ramp unchanged, and on a
// paraboloid lowers only the summit (by its curvature times the half-width squared).
// `heights`: one value per column (nx x ny, i fastest), larger is higher; INT32_MAX = no lung in
// the column, which stays so and is ignored by its neighbours. The result is never above the
// input.
std::vector<std::int32_t> open_base_heights(const std::vector<std::int32_t>& heights, std::size_t nx,
                                            std::size_t ny, std::size_t wi, std::size_t wj);

}  // namespace lungvol::seg
