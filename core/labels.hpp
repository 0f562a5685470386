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

// change_map.nii.gz: a follow-up's lesions against the baseline's, in baseline space
// (registration/change_map.hpp). A voxel is classed by its baseline lesion class b and the
// registered follow-up's f (0 none, ground-glass, solid).
inline constexpr std::uint8_t kNoChange = 0;     // b = f = 0
inline constexpr std::uint8_t kResolved = 1;     // b != 0, f = 0
inline constexpr std::uint8_t kPersistent = 2;   // b = f != 0
inline constexpr std::uint8_t kNew = 3;          // b = 0, f != 0
inline constexpr std::uint8_t kProgressed = 4;   // b ground-glass, f solid
inline constexpr std::uint8_t kRegressed = 5;    // b solid, f ground-glass
inline constexpr std::uint8_t kChangeLabelCount = 6;

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

inline const char* change_label_name(std::uint8_t v) {
  switch (v) {
    case kResolved: return "resolved";
    case kPersistent: return "persistent";
    case kNew: return "new";
    case kProgressed: return "progressed";
    case kRegressed: return "regressed";
    default: return "none";
  }
}

}  // namespace lungvol::labels
