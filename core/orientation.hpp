#pragma once
// Orientation of a voxel grid relative to the patient (LPS) axes, and the canonical axial grid
// the pipeline works on.
//
// The segmentation reads index axes i, j, k as the patient's x (right to left), y (anterior to
// posterior) and z (feet to head). A coronal or sagittal reformat, or an axial series whose rows
// run along y, stores the same voxels in another order. Any grid whose index axes lie along the
// patient axes (within kTiltTolerance) is brought to the canonical grid by a permutation and
// flips of its axes: every voxel is copied, none is interpolated, so the voxel values the
// pipeline sees are the same whatever the storage order. Oblique grids are refused.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>

#include "core/image.hpp"

namespace lungvol {

// The one tilt tolerance of lungvol, shared by the DICOM reader (slice positions may drift
// in-plane by at most max(kTiltAbsToleranceMm, kTiltTolerance x distance along the normal), a
// gantry tilt of about 0.057 degrees), the orientation check below (a direction may deviate from
// its patient axis by the same angle) and the DICOM SEG/SR writer (which matches the image's
// slices to the source instances with the same allowance).
inline constexpr double kTiltTolerance = 1e-3;  // sine of the largest accepted angle
inline constexpr double kTiltAbsToleranceMm = 0.02;
inline double tilt_allowance_mm(double distance_along_normal_mm) {
  return std::max(kTiltAbsToleranceMm, kTiltTolerance * std::abs(distance_along_normal_mm));
}

// How a grid's index axes map onto the canonical ones. Canonical axis c (0 = x, 1 = y, 2 = z)
// is the grid's axis source_axis[c], reversed when flipped[c] (the grid's axis runs towards -c).
struct AxisMap {
  std::array<int, 3> source_axis{0, 1, 2};
  std::array<bool, 3> flipped{false, false, false};
  bool identity() const {
    return source_axis == std::array<int, 3>{0, 1, 2} && !flipped[0] && !flipped[1] && !flipped[2];
  }
};

struct Orientation {
  bool axis_aligned = false;  // every index axis within kTiltTolerance of a patient axis
  AxisMap map;                // valid when axis_aligned
  std::string name;           // "axial", "coronal", "sagittal" (by the slice axis) or "oblique"
  std::string axes;           // patient direction of index axes i, j, k, e.g. "LPS", "LIP", "RAS"
  double worst_angle_deg = 0;  // largest angle between an index axis and its patient axis
  // One line for messages: e.g. "coronal (index axes L, I, P)" or "oblique (row direction ...)".
  std::string describe() const;
};

Orientation orientation_of(const Geometry& g);

// The canonical grid of `g` (identity axis order, axes running L, P, S): size and spacing
// permuted, origin at the voxel that becomes (0, 0, 0). `m` must come from orientation_of(g).
Geometry canonical_geometry(const Geometry& g, const AxisMap& m);

namespace detail {
// Linear index in the original grid of canonical voxel (I, J, K): base + sum step[c] * I_c.
struct IndexMap {
  std::array<std::size_t, 3> canonical_size{0, 0, 0};
  std::ptrdiff_t base = 0;
  std::array<std::ptrdiff_t, 3> step{0, 0, 0};
};
IndexMap index_map(const Geometry& original, const AxisMap& m);
template <class T>
void permute_voxels(const T* src, T* dst, const IndexMap& im, bool to_canonical);
}  // namespace detail

// The voxels of `image` on its canonical grid (a copy; exact).
template <class T>
Image<T> to_canonical(const Image<T>& image, const AxisMap& m) {
  if (m.identity()) return image;
  Image<T> out(canonical_geometry(image.geom, m), typename Image<T>::Uninitialised{});
  detail::permute_voxels(image.data.data(), out.data.data(), detail::index_map(image.geom, m), true);
  return out;
}

// The inverse: voxels of a canonical image back on the original grid `original` (exactly that
// geometry, as read). `m` is orientation_of(original).map.
template <class T>
Image<T> to_original(const Image<T>& canonical, const AxisMap& m, const Geometry& original) {
  if (m.identity()) {
    Image<T> out = canonical;
    out.geom = original;
    return out;
  }
  Image<T> out(original, typename Image<T>::Uninitialised{});
  detail::permute_voxels(canonical.data.data(), out.data.data(), detail::index_map(original, m),
                         false);
  return out;
}

}  // namespace lungvol
