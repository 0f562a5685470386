#pragma once
// Quality-control snapshots of one scan: CT in a lung window with the lung contours and the
// lesion overlay, through the centre of the lungs (axial, coronal, sagittal) and through the
// axial slice with the most lesion. Only the label volumes are read whole (to find the
// centre and that slice); the CT is touched only on the planes drawn.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "report/png.hpp"

namespace lungvol::report {

struct Rgb {
  std::uint8_t r, g, b;
};
// Contours are opaque 1-pixel outlines in the output image; lesions are semi-transparent fills.
inline constexpr Rgb kRightLungColour{0, 255, 0};      // green
inline constexpr Rgb kLeftLungColour{0, 160, 255};     // azure
inline constexpr Rgb kAirwayColour{255, 0, 255};       // magenta
inline constexpr Rgb kGroundGlassColour{255, 255, 0};  // yellow
inline constexpr Rgb kSolidColour{255, 0, 0};          // red

struct QcOptions {
  std::size_t max_side = 512;    // longest image side in pixels (0: native resolution)
  // Small matrices are enlarged until the longest side reaches this many pixels (0: never).
  // `analyze` uses 384, so that a 64 x 64 scan is not a 64-pixel picture.
  std::size_t min_side = 0;
  std::size_t max_levels = 5;    // slices in the lesion-levels row
  double window_width = 1500.0;  // HU; lung window
  double window_level = -600.0;
  double lesion_opacity = 0.45;  // 0 = invisible fill, 1 = opaque
  int png_level = 6;             // zlib 0..9
};

enum class QcPlane { kAxial, kCoronal, kSagittal };

// Which index axis runs across / down the picture for a plane, read from the direction
// matrix so that every view shows the radiological convention: axial with the patient's
// right on the image left and anterior up; coronal with head up and patient's right on the
// left; sagittal with head up and anterior on the left. For the usual LPS identity
// direction: axial = slice k (i across, j down), coronal = row j (i across, k up),
// sagittal = column i (j across, k up).
struct PlaneAxes {
  int across = 0, down = 1, normal = 2;  // index axes 0=i, 1=j, 2=k
  bool flip_across = false, flip_down = false;
};
PlaneAxes plane_axes(const Geometry& geom, QcPlane plane);

// Where the QC planes go: `centre` is the index-space centroid of the right and left lung
// voxels (rounded; the grid centre when there are none); `max_lesion_slice` is the axial
// slice index (along plane_axes(kAxial).normal) holding the most lesion voxels, the lowest
// such index on a tie, absent when there is no lesion voxel.
struct QcPlan {
  std::array<std::size_t, 3> centre{0, 0, 0};
  // The centroid of each lung alone (label 1 right, label 2 left); absent without its voxels.
  std::optional<std::array<std::size_t, 3>> centre_right, centre_left;
  // Axial slices (along plane_axes(kAxial).normal) with lesion voxels, and up to
  // QcOptions::max_levels of them spread evenly over that range (for the lesion-levels row).
  std::vector<std::size_t> lesion_slices;
  std::optional<std::size_t> max_lesion_slice;
  std::size_t max_lesion_voxels = 0;
};
// `lesions` may be empty (no lesion volume). Throws Error(kProcessing) on a size mismatch.
QcPlan plan_qc(const LabelImage& lungs, const LabelImage& lesions);

// The output size for a plane: physical aspect ratio kept (pixels are square in mm), the
// finer of the two in-plane spacings kept, then shrunk to fit max_side.
std::array<std::size_t, 2> qc_image_size(const Geometry& geom, QcPlane plane, std::size_t max_side,
                                         std::size_t min_side = 0);
// Up to `n` of the sorted `slices`, evenly spread from the first to the last (all when fewer).
std::vector<std::size_t> spread_levels(const std::vector<std::size_t>& slices, std::size_t n);
// Pictures side by side, top-aligned, separated by `gap` dark-grey pixels.
Raster montage(const std::vector<Raster>& tiles, std::size_t gap = 4);

// One RGB picture of `plane` at index `slice` along plane_axes(plane).normal. CT is
// interpolated linearly, labels by nearest neighbour; contours are drawn on the output
// pixel grid so they stay one pixel wide at any zoom.
Raster render_qc_plane(const CtImage& ct, const LabelImage& lungs, const LabelImage& lesions,
                       QcPlane plane, std::size_t slice, const QcOptions& options = {});

// Writes into `outdir` (created if needed; each file atomic), in this order:
//   qc_axial.png, qc_coronal.png        through the centroid of both lungs
//   qc_sagittal_right.png, qc_sagittal_left.png   through the centroid of each lung (a lung
//                                       without voxels has none)
//   qc_axial_max_lesion.png             the axial slice with the most lesion voxels
//   qc_axial_lesion_levels.png          a row of up to max_levels axial slices spread over the
//                                       lesion-bearing levels
// The two lesion images are absent (and logged) when there is no lesion voxel. Returns the
// paths written. `lungs` may not be empty; `lesions` may.
std::vector<std::string> write_qc_images(const CtImage& ct, const LabelImage& lungs,
                                         const LabelImage& lesions, const std::string& outdir,
                                         const QcOptions& options = {});

}  // namespace lungvol::report
