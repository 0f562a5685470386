#pragma once
// Lesions inside the lungs, split into ground-glass and solid components by the protocol.
#include "core/image.hpp"
#include "core/protocol.hpp"

namespace lungvol::seg {

struct LesionSegmentation {
  LabelImage lesions;  // labels::kGroundGlass / kSolid; every voxel inside a lung
  // Lung voxels whose HU lies in the lesion band but that are not lesion: vessels and specks
  // removed by the size filter. Kept so that thresholds can be swept from histograms later.
  MaskImage suppressed;
};

// Lesion region: lung voxels whose lightly smoothed HU (3x3x3 mean over lung) lies in
// [low, high), without vessels, told by shape (bright tubes: segmentation/vesselness.hpp, at the
// protocol's vessel_scales_mm and vesselness_threshold_hu), and without components smaller than
// min_lesion_mm3. Plates and blobs of any thickness stay lesion. A voxel of the region is
// ground-glass or solid by its own HU.
LesionSegmentation segment_lesions(const CtImage& ct, const LabelImage& lungs,
                                   const LesionParams& params);

}  // namespace lungvol::seg
