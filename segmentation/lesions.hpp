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

// Lesion region: lung voxels whose lightly smoothed HU lies in [low, high), opened with a ball
// of vessel_radius_mm (removes vessels and their partial-volume sleeves) and without components
// smaller than min_lesion_mm3. A voxel of the region is ground-glass or solid by its own HU.
LesionSegmentation segment_lesions(const CtImage& ct, const LabelImage& lungs,
                                   const LesionParams& params);

}  // namespace lungvol::seg
