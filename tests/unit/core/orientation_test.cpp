// core/orientation: the canonical axial grid is reached from every axis order exactly, and only
// grids within the shared tilt tolerance of the patient axes count as axis-aligned.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "core/orientation.hpp"
#include "tests/support/reorient.hpp"

namespace lungvol {
namespace {

CtImage numbered_volume() {
  Geometry g;
  g.size = {5, 4, 3};
  g.spacing = {0.7, 0.9, 2.5};
  g.origin = {-12.5, 30.25, -100.0};
  CtImage img(g);
  for (std::size_t n = 0; n < img.size(); ++n) img[n] = static_cast<std::int16_t>(n * 7 - 300);
  return img;
}

std::array<double, 9> rotation_about_z(double degrees) {
  const double t = degrees * M_PI / 180.0, c = std::cos(t), s = std::sin(t);
  return {c, -s, 0, s, c, 0, 0, 0, 1};
}

TEST(Orientation, AllFortyEightAxisOrdersReachTheCanonicalGridExactly) {
  const CtImage ref = numbered_volume();
  int count = 0;
  for (const auto& p : test::all_signed_permutations()) {
    const CtImage stored = test::stored_as(ref, p);
    const Orientation o = orientation_of(stored.geom);
    ASSERT_TRUE(o.axis_aligned) << p.name();
    EXPECT_EQ(o.axes, p.name());
    EXPECT_EQ(o.map.identity(), p.name() == "LPS") << p.name();
    const CtImage canonical = to_canonical(stored, o.map);
    EXPECT_EQ(canonical.data, ref.data) << p.name();
    EXPECT_TRUE(canonical.geom.same_grid(ref.geom, 1e-9)) << p.name();
    EXPECT_EQ(canonical.geom.direction, ref.geom.direction) << p.name();
    // And back: exactly the stored voxels on exactly the stored geometry.
    const CtImage back = to_original(canonical, o.map, stored.geom);
    EXPECT_EQ(back.data, stored.data) << p.name();
    EXPECT_EQ(back.geom.origin, stored.geom.origin) << p.name();
    ++count;
  }
  EXPECT_EQ(count, 48);
}

TEST(Orientation, NamesFollowTheSliceAxis) {
  Geometry g;
  EXPECT_EQ(orientation_of(g).describe(), "axial (index axes L, P, S)");
  // Coronal DICOM: rows along +x, columns towards the feet, normal = row x column = +y.
  g.direction = {1, 0, 0, 0, 0, 1, 0, -1, 0};
  EXPECT_EQ(orientation_of(g).describe(), "coronal (index axes L, I, P)");
  // Sagittal: rows along +y, columns towards the feet, normal = -x.
  g.direction = {0, 0, -1, 1, 0, 0, 0, -1, 0};
  EXPECT_EQ(orientation_of(g).describe(), "sagittal (index axes P, I, R)");
  // Axial with rows and columns swapped (row direction along y).
  g.direction = {0, 1, 0, 1, 0, 0, 0, 0, -1};
  EXPECT_EQ(orientation_of(g).name, "axial");
  EXPECT_EQ(orientation_of(g).axes, "PLI");
}

TEST(Orientation, TiltWithinTheSharedToleranceIsAlignedBeyondItOblique) {
  Geometry g;
  // 0.05 degrees: within kTiltTolerance (sin 0.057 degrees), like the reader's shear allowance.
  g.direction = rotation_about_z(0.05);
  Orientation o = orientation_of(g);
  EXPECT_TRUE(o.axis_aligned);
  EXPECT_TRUE(o.map.identity());
  g.direction = rotation_about_z(0.1);
  o = orientation_of(g);
  EXPECT_FALSE(o.axis_aligned);
  EXPECT_EQ(o.name, "oblique");
  EXPECT_NE(o.describe().find("0.1 degrees"), std::string::npos) << o.describe();
  g.direction = rotation_about_z(30);
  EXPECT_NE(orientation_of(g).describe().find("30.0 degrees"), std::string::npos);
  // The reader's allowance for slice positions: 0.02 mm, or 0.001 x the distance.
  EXPECT_DOUBLE_EQ(tilt_allowance_mm(5.0), 0.02);
  EXPECT_DOUBLE_EQ(tilt_allowance_mm(-300.0), 0.3);
}

TEST(Orientation, CanonicalGeometryOfACoronalGrid) {
  Geometry g;
  g.size = {10, 20, 30};
  g.spacing = {0.5, 1.5, 2.0};
  g.origin = {1, 2, 3};
  g.direction = {1, 0, 0, 0, 0, 1, 0, -1, 0};  // i -> +x, j -> -z, k -> +y
  const Orientation o = orientation_of(g);
  const Geometry c = canonical_geometry(g, o.map);
  EXPECT_EQ(c.size, (std::array<std::size_t, 3>{10, 30, 20}));
  EXPECT_EQ(c.spacing, (std::array<double, 3>{0.5, 2.0, 1.5}));
  EXPECT_EQ(c.direction, (std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  // The lowest voxel: j = 19 (j runs to the feet), z = 3 - 19 x 1.5.
  EXPECT_DOUBLE_EQ(c.origin[0], 1.0);
  EXPECT_DOUBLE_EQ(c.origin[1], 2.0);
  EXPECT_DOUBLE_EQ(c.origin[2], 3.0 - 19 * 1.5);
}

}  // namespace
}  // namespace lungvol
