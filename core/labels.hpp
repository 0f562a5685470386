#pragma once
// The one definition of every label value lungvol writes or reads.
#include <cstdint>

namespace lungvol::labels {

// lungs.nii.gz
inline constexpr std::uint8_t kBackground = 0;
inline constexpr std::uint8_t kRightLung = 1;
inline constexpr std::uint8_t kLeftLung = 2;
inline constexpr std::uint8_t kAirway = 3;

// lesions.nii.gz (every lesion voxel lies in kRightLung or kLeftLung)
inline constexpr std::uint8_t kNoLesion = 0;
inline constexpr std::uint8_t kGroundGlass = 1;
inline constexpr std::uint8_t kSolid = 2;

inline const char* lung_label_name(std::uint8_t v) {
  switch (v) {
    case kRightLung: return "right_lung";
    case kLeftLung: return "left_lung";
    case kAirway: return "airway";
    default: return "background";
  }
}
inline const char* lesion_label_name(std::uint8_t v) {
  switch (v) {
    case kGroundGlass: return "ground_glass";
    case kSolid: return "solid";
    default: return "none";
  }
}

}  // namespace lungvol::labels
