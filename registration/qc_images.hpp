#pragma once
// QC pictures of a follow-up's registration (docs/outputs.md, "Registration QC images"), in the
// baseline's space, in the same orientation conventions as the scan QC images
// (report/qc_images.hpp):
//   qc_change_axial.png, qc_change_coronal.png  the change map over the baseline CT (lung window,
//        baseline lung contours, change classes as 55 % opaque fills);
//   qc_checker_axial.png, qc_checker_coronal.png  a 16 mm checkerboard of the baseline and the
//        registered follow-up CT: edges that continue across the squares mean a good registration.
// The planes go through the lung voxel with the most change around it: the axial slice with the
// most change voxels (the lungs' centroid slice when there is none), the coronal plane likewise.
#include <string>
#include <vector>

#include "core/image.hpp"
#include "registration/field.hpp"
#include "report/png.hpp"

namespace lungvol::registration {

struct RegistrationQcOptions {
  std::size_t max_side = 512;
  double checker_mm = 16.0;
  double window_width = 1500.0, window_level = -600.0;
  double opacity = 0.55;
};

// Change colours: resolved green, persistent yellow, new red, progressed magenta, regressed cyan.
std::array<std::uint8_t, 3> change_colour(std::uint8_t label);

enum class RegPlane { kAxial, kCoronal };

report::Raster render_change_plane(const CtImage& baseline_ct, const LabelImage& baseline_lungs,
                                   const LabelImage& change, RegPlane plane, std::size_t slice,
                                   const RegistrationQcOptions& o = {});
report::Raster render_checkerboard(const CtImage& baseline_ct, const CtImage& followup_ct,
                                   const Transform& baseline_to_followup, RegPlane plane,
                                   std::size_t slice, const RegistrationQcOptions& o = {});

// The four PNGs into `dir`; returns their file names (in the order above).
std::vector<std::string> write_registration_qc(const CtImage& baseline_ct,
                                               const LabelImage& baseline_lungs,
                                               const LabelImage& change, const CtImage& followup_ct,
                                               const Transform& baseline_to_followup,
                                               const std::string& dir,
                                               const RegistrationQcOptions& o = {});

}  // namespace lungvol::registration
