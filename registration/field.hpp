#pragma once
// Point maps between the visits of one subject: an affine map and a dense displacement field,
// in LPS millimetres, with the ITK conventions so that the files lungvol writes can be used by
// ITK, ANTs and 3D Slicer as they are:
//   * a transform maps points of the FIXED space (the baseline) to the MOVING space (a
//     follow-up); resampling the follow-up onto the baseline grid pulls values through it;
//   * a displacement field u maps x -> x + u(x); outside its grid u = 0 (as ITK's
//     DisplacementFieldTransform), inside it is interpolated trilinearly;
//   * the full transform applies the field first, then the affine:  y = A(x + d(x))
//     (an ITK CompositeTransform holding [affine, field], or `antsApplyTransforms -t affine
//     -t field`).
// Everything here is plain C++ with OpenMP: ITK stays in the .cpp files that register and write.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/image.hpp"

namespace lungvol::registration {

using Vec3 = std::array<double, 3>;
using FloatImage = Image<float>;

// Physical point <-> continuous voxel index of a grid (any direction matrix).
class GridMap {
 public:
  GridMap() = default;
  explicit GridMap(const Geometry& g);
  Vec3 to_index(const Vec3& p) const;
  Vec3 to_point(const Vec3& index) const;
  const Geometry& geometry() const { return g_; }

 private:
  Geometry g_;
  std::array<double, 9> fwd_{1, 0, 0, 0, 1, 0, 0, 0, 1};  // direction * diag(spacing)
  std::array<double, 9> inv_{1, 0, 0, 0, 1, 0, 0, 0, 1};
};

// y = m x + t, m row-major.
struct Affine {
  std::array<double, 9> m{1, 0, 0, 0, 1, 0, 0, 0, 1};
  Vec3 t{0, 0, 0};
  Vec3 apply(const Vec3& x) const {
    return {m[0] * x[0] + m[1] * x[1] + m[2] * x[2] + t[0],
            m[3] * x[0] + m[4] * x[1] + m[5] * x[2] + t[1],
            m[6] * x[0] + m[7] * x[1] + m[8] * x[2] + t[2]};
  }
  Affine inverse() const;  // Error(kProcessing) when singular
  double determinant() const;
  bool is_identity() const;
};
Affine compose(const Affine& outer, const Affine& inner);  // outer(inner(x))

// A dense displacement field on a grid, float components (LPS mm), interleaved xyzxyz...
class DisplacementField {
 public:
  DisplacementField() = default;
  explicit DisplacementField(const Geometry& g);  // zero field
  const Geometry& geometry() const { return map_.geometry(); }
  const GridMap& grid() const { return map_; }
  bool empty() const { return u_.empty(); }
  std::size_t voxel_count() const { return u_.size() / 3; }
  float* data() { return u_.data(); }
  const float* data() const { return u_.data(); }
  std::vector<float>& values() { return u_; }
  const std::vector<float>& values() const { return u_; }
  // u at a physical point: trilinear inside the grid (extended by half a voxel, with the
  // border values), zero outside, as ITK's DisplacementFieldTransform.
  Vec3 at(const Vec3& p) const;
  // u at a continuous index (same rules).
  Vec3 at_index(const Vec3& ci) const;
  // Largest displacement length, mm.
  double max_norm() const;

 private:
  GridMap map_;
  std::vector<float> u_;
};

// baseline (fixed) -> follow-up (moving): y = affine(x + field(x)); an empty field = 0.
struct Transform {
  Affine affine;
  DisplacementField field;
  Vec3 apply(const Vec3& x) const {
    if (field.empty()) return affine.apply(x);
    const Vec3 d = field.at(x);
    return affine.apply({x[0] + d[0], x[1] + d[1], x[2] + d[2]});
  }
};
// The transform whose map is x -> x + v(x) (a total displacement field, no affine).
Transform field_transform(DisplacementField v);

// The inverse of `t` as a total displacement field v on `grid` (x = y + v(y) with t(x) = y), by
// fixed-point iteration x <- A^-1(y) - d(x). `quality`, when given, receives the residuals
// |t(y + v(y)) - y| over the grid points whose inverse lies inside t's field, at least 3 voxels
// from its border (beyond it the field is 0, and the iteration may not settle there).
struct InverseQuality {
  double max_mm = 0, p99_mm = 0;  // of |t(y + v(y)) - y|
  double over_1mm_pct = 0;        // share of the points checked with a residual above 1 mm
  std::size_t points = 0;         // points checked
};
DisplacementField invert(const Transform& t, const Geometry& grid, int iterations = 30,
                         InverseQuality* quality = nullptr);

// A box of voxel indices [lo, hi) on some grid.
struct IndexBox {
  std::array<std::size_t, 3> lo{0, 0, 0}, hi{0, 0, 0};
  bool empty() const { return lo[0] >= hi[0] || lo[1] >= hi[1] || lo[2] >= hi[2]; }
};
IndexBox full_box(const Geometry& g);
// Bounding box of the voxels with a value in `labels` (any non-zero value when empty), grown by
// margin_mm and clipped to the grid; empty when there is no such voxel.
IndexBox label_box(const LabelImage& img, double margin_mm,
                   const std::vector<std::uint8_t>& labels = {});

// A chain of transforms applied in order: x -> steps[n-1](...steps[0](x)); null steps are the
// identity. E.g. a follow-up's point to its baseline point (the follow-up's inverse) and on to
// another follow-up (that one's forward transform).
struct TransformChain {
  std::vector<const Transform*> steps;
  Vec3 apply(Vec3 x) const {
    for (const Transform* t : steps) {
      if (t) x = t->apply(x);
    }
    return x;
  }
};
LabelImage warp_labels(const LabelImage& src, const TransformChain& chain, const Geometry& grid,
                       const IndexBox& box);

// out(x) = src(t(x)) for the voxels x of `grid` inside `box` (others 0): nearest neighbour,
// 0 outside `src`. For label maps.
LabelImage warp_labels(const LabelImage& src, const Transform& t, const Geometry& grid,
                       const IndexBox& box);
// Same with trilinear interpolation of HU, `outside` beyond `src`. For CT.
CtImage warp_ct(const CtImage& src, const Transform& t, const Geometry& grid, const IndexBox& box,
                std::int16_t outside = -1024);
// Trilinear sample of an image at a physical point (border-clamped inside the grid extended by
// half a voxel, `outside` beyond).
double sample_linear(const CtImage& img, const GridMap& map, const Vec3& p, double outside);
double sample_linear(const FloatImage& img, const GridMap& map, const Vec3& p, double outside);

// det(grad t) on the grid of t's field (the affine's determinant times det(I + grad d), central
// differences, one-sided at the border). With an empty field: a 1x1x1 image of det(A).
FloatImage jacobian_determinant(const Transform& t);

}  // namespace lungvol::registration
