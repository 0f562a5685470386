#pragma once
// Per-scan HU calibration check against air, the one reference every chest CT contains.
//
// Air has a CT number of -1000 HU by definition, so outside air (well away from the body) and
// tracheal air show whether the scanner's HU scale was off for this scan. Lung densitometry
// reads HU directly, so a scale error in air moves lung-density figures with it. Sources:
// Parr DG et al., Am J Respir Crit Care Med 2004;170:883-890 (doi:10.1164/rccm.200403-326OC):
// correcting for changes in measured air density improved the reliability of densitometric
// emphysema progression; Stoel BC et al., Invest Radiol 1999;34:303-309: air and blood CT
// numbers depend on position in the thorax and tube replacement shifted measured blood
// density. Tracheal air reads above -1000 HU on contemporary scanners (Judy PF et al., Am J
// Respir Crit Care Med 2012;185:A2037, COPDGene), so the correction uses outside air and the
// trachea is reported as a cross-check.
//
// Blood (descending aorta) is not measured: without contrast timing and a reliable aorta
// segmentation it is not a trustworthy reference.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "core/protocol.hpp"

namespace lungvol::dens {

struct CalibrationParams {
  double air_max_hu = -900;       // outside-air candidates: HU below this ...
  double padding_max_hu = -1100;  // ... but not the reconstruction's FOV padding (HU below this)
  // Outside air counted only this far (in-plane) from anything that is not air: body, table,
  // mattress foam, blankets, their blur, and the FOV edge. 20 mm, not 10: on the CIP COPDGene
  // case (4 mm voxels) air within 10 mm read -984 HU, at 20 mm -994, at 30 mm -999.
  double body_margin_mm = 20;
  // Tracheal air: in-body air (below trachea_air_max_hu) in each axial slice, followed down from
  // the top of the scan as one tube-sized cross-section near the body midline, never a region
  // holding lung labels; sampled this far (in-plane) inside its wall.
  double trachea_air_max_hu = -500;
  double trachea_min_area_mm2 = 30, trachea_max_area_mm2 = 1200;  // an adult trachea: 150-500
  double trachea_midline_mm = 25;  // its centre lies this close to the body's midline
  double trachea_wall_margin_mm = 1.0;  // and at least one voxel (partial volume of the wall)
  std::size_t min_trachea_slices = 3;
  std::size_t min_air_voxels = 1000;   // fewer: outside air "not found"
  std::size_t min_trachea_voxels = 100;
  // The mean HU each reference must read, inclusive. The protocol's [calibration] section sets
  // them (Protocol::air_check); the defaults are the ACR CT accreditation phantom criterion for
  // the air insert, -1005 to -970 HU (ACR CT Accreditation Program, phantom testing
  // instructions; McCollough CH et al., Med Phys 2004;31:2423-2442). It is asymmetric because
  // air reads high rather than low: scatter and beam hardening add, nothing subtracts.
  double expected_air_hu = -1000;  // what --calibrate air brings outside air to
  double air_lo_hu = -1005, air_hi_hu = -970;
  double trachea_lo_hu = -1005, trachea_hi_hu = -970;
};

// The ranges of a protocol's [calibration] section on top of the other defaults.
CalibrationParams calibration_params(const AirCheckParams& ranges);

struct RegionStats {
  double mean_hu = 0, sd_hu = 0, median_hu = 0;
  std::size_t n = 0;
  bool found = false;  // n >= the minimum
};

struct CalibrationCheck {
  RegionStats outside_air;
  RegionStats trachea;
  // Constant padding found outside the reconstruction circle (one exact value over a region
  // reaching the slice border, whatever PixelPaddingValue says) and left out of outside air.
  std::vector<int> padding_values_hu;
  std::size_t padding_voxels = 0;  // on the sampled slices
  std::size_t trachea_slices = 0;  // axial slices of the tracked trachea
  // outside_air_not_found, outside_air_out_of_tolerance, trachea_not_found,
  // trachea_out_of_tolerance, no_airway_label
  std::vector<std::string> flags;
  bool checked = false;           // at least one reference was found
  bool within_tolerance = false;  // checked, and every reference found is within tolerance
};

// Outside air: per axial slice, voxels with HU < air_max_hu connected (4-neighbour, in-plane)
// to the slice border, FOV padding excluded from the statistics but not from the connectivity,
// and only voxels farther than body_margin_mm from every non-air voxel. Padding is anything
// below padding_max_hu (-2000, -3024 style markers) and the constant region outside the
// reconstruction circle: one exact value, over 5 x 5 pixel blocks, connected to the slice
// border (POPI stores -1024 there without a PixelPaddingValue; a declared padding value reaches
// here as -1024 too). Real air is never constant over 25 pixels: it has noise.
// Trachea: followed slice by slice from the top of the scan (see CalibrationParams), never a
// region holding lung labels (1, 2) of `lungs`; independent of the airway label, which thin
// slices can get wrong. Pass an empty `lungs` image to skip it.
CalibrationCheck check_calibration(const CtImage& ct, const LabelImage& lungs,
                                   const CalibrationParams& params = {});

// The outside-air mask used by check_calibration (for QC images and tests).
MaskImage outside_air_mask(const CtImage& ct, const CalibrationParams& params = {});

enum class AirCalibrationMode {
  kOffset,          // HU' = HU + (-1000 - air): shifts every tissue by the same amount
  kScaleAboutWater  // HU' = HU x (-1000 / air): keeps water at 0 HU, brings air to -1000
};

// The linear correction applied, for provenance: HU' = slope x HU + intercept_hu.
struct AirCorrection {
  bool applied = false;
  std::string mode;       // "offset" or "scale_about_water"
  std::string reference;  // "outside_air"
  double measured_air_hu = 0;
  double slope = 1, intercept_hu = 0;
  std::string reason;  // why it was not applied
};

// Corrects `ct` in place (rounded, clamped to int16; FOV padding < padding_max_hu untouched)
// so that outside air reads -1000 HU. Not applied (ct unchanged, reason set) when outside air
// was not found. The scanner's daily calibration fixes water at 0 HU, which is why
// kScaleAboutWater is the default: it corrects the scale error that air reveals without moving
// soft tissue. kOffset is the simpler one-point correction.
AirCorrection apply_air_calibration(CtImage& ct, const CalibrationCheck& check,
                                    AirCalibrationMode mode = AirCalibrationMode::kScaleAboutWater,
                                    const CalibrationParams& params = {});

}  // namespace lungvol::dens
