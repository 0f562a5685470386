// Point maps, warps, Jacobians, change maps, mask comparisons and transform files on small images
// built in code, with exact expected values.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/labels.hpp"
#include "registration/change_map.hpp"
#include "registration/consistency.hpp"
#include "registration/field.hpp"
#include "registration/inspiration.hpp"
#include "registration/transform_io.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::registration {
namespace {

Geometry grid(std::size_t n, double spacing, Vec3 origin = {0, 0, 0}) {
  Geometry g;
  g.size = {n, n, n};
  g.spacing = {spacing, spacing, spacing};
  g.origin = origin;
  return g;
}

// A displacement field equal to u(x) = L x + c (linear) on grid g.
DisplacementField linear_field(const Geometry& g, const std::array<double, 9>& L, const Vec3& c) {
  DisplacementField f(g);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const auto p = g.to_physical(double(i), double(j), double(k));
        float* u = f.data() + 3 * g.index(i, j, k);
        for (int r = 0; r < 3; ++r) {
          u[r] = static_cast<float>(L[3 * r] * p[0] + L[3 * r + 1] * p[1] + L[3 * r + 2] * p[2] + c[r]);
        }
      }
    }
  }
  return f;
}

TEST(Affine, InverseAndComposition) {
  Affine a;
  a.m = {1.1, 0.05, 0, -0.02, 0.95, 0.1, 0, 0.03, 1.2};
  a.t = {5, -3, 12};
  const Affine id = compose(a, a.inverse());
  for (int n = 0; n < 9; ++n) EXPECT_NEAR(id.m[n], n % 4 == 0 ? 1.0 : 0.0, 1e-12);
  for (int n = 0; n < 3; ++n) EXPECT_NEAR(id.t[n], 0.0, 1e-12);
  const Vec3 x{10, -20, 30};
  const Vec3 y = a.apply(x);
  const Vec3 back = a.inverse().apply(y);
  for (int n = 0; n < 3; ++n) EXPECT_NEAR(back[n], x[n], 1e-12);
  EXPECT_NEAR(a.determinant(), 1.1 * (0.95 * 1.2 - 0.1 * 0.03) - 0.05 * (-0.02 * 1.2), 1e-12);
}

TEST(DisplacementField, TrilinearIsExactOnLinearFieldsAndZeroOutside) {
  const Geometry g = grid(8, 2.0, {-7, -7, -7});
  const std::array<double, 9> L{0.02, 0.01, 0, 0, -0.03, 0.01, 0.01, 0, 0.04};
  const DisplacementField f = linear_field(g, L, {1, 2, 3});
  const Vec3 p{0.3, -1.7, 2.9};
  const Vec3 u = f.at(p);
  for (int r = 0; r < 3; ++r) {
    const double want = L[3 * r] * p[0] + L[3 * r + 1] * p[1] + L[3 * r + 2] * p[2] + (r + 1);
    EXPECT_NEAR(u[r], want, 1e-5);
  }
  const Vec3 far = f.at({100, 0, 0});
  EXPECT_EQ(far[0], 0);
  EXPECT_EQ(far[2], 0);
}

TEST(DisplacementField, InverseOfASmoothFieldWithAffine) {
  const Geometry g = grid(24, 2.0, {-23, -23, -23});
  Transform t;
  t.affine.m = {1.05, 0, 0, 0, 0.97, 0.02, 0, 0, 1.08};
  t.affine.t = {2, -1, 3};
  t.field = DisplacementField(g);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const auto p = g.to_physical(double(i), double(j), double(k));
        float* u = t.field.data() + 3 * g.index(i, j, k);
        u[0] = static_cast<float>(2.0 * std::sin(p[1] / 12.0));
        u[1] = static_cast<float>(1.5 * std::cos(p[2] / 10.0));
        u[2] = static_cast<float>(1.0 * std::sin((p[0] + p[1]) / 15.0));
      }
    }
  }
  const Geometry target = grid(16, 2.0, {-13, -13, -13});
  InverseQuality q;
  const DisplacementField inv = invert(t, target, 40, &q);
  EXPECT_GT(q.points, 1000u);
  EXPECT_LT(q.max_mm, 0.01);
  // Round trip at an arbitrary inner point.
  const Vec3 x{1.3, -2.2, 0.7};
  const Vec3 y = t.apply(x);
  const Transform it = field_transform(inv);
  const Vec3 back = it.apply(y);
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(back[r], x[r], 0.05);  // trilinear on a 2 mm grid
}

TEST(Jacobian, OfLinearFieldTimesAffine) {
  const Geometry g = grid(10, 1.5);
  Transform t;
  t.affine.m = {1.2, 0, 0, 0, 1, 0, 0, 0, 0.9};
  const std::array<double, 9> L{0.1, 0.02, 0, 0, -0.05, 0, 0.03, 0, 0.2};
  t.field = linear_field(g, L, {0, 0, 0});
  const FloatImage det = jacobian_determinant(t);
  const double want = 1.2 * 0.9 *
                      ((1.1) * ((0.95) * (1.2) - 0 * 0) - 0.02 * (0 * 1.2 - 0 * 0.03) +
                       0 * (0 * 0 - 0.95 * 0.03));
  for (std::size_t q = 0; q < det.size(); ++q) ASSERT_NEAR(det.data[q], want, 1e-4);
  LabelImage lungs(g, 0);
  for (std::size_t q = 0; q < lungs.size(); q += 3) lungs.data[q] = labels::kRightLung;
  const JacobianStats s = jacobian_in_lungs(t, lungs);
  EXPECT_NEAR(s.mean, want, 1e-4);
  EXPECT_NEAR(s.sd, 0, 1e-3);
  EXPECT_EQ(s.nonpositive_pct, 0);
}

TEST(Warp, LabelsFollowATranslationExactly) {
  const Geometry g = grid(12, 2.0);
  LabelImage src(g, 0);
  src.at(5, 6, 7) = 2;
  Transform t;  // baseline point x -> follow-up point x + (4, 0, -2)
  t.affine.t = {4, 0, -2};
  const LabelImage out = warp_labels(src, t, g, full_box(g));
  EXPECT_EQ(out.at(3, 6, 8), 2);
  std::size_t n = 0;
  for (auto v : out.data) n += v != 0;
  EXPECT_EQ(n, 1u);
  CtImage ct(g, -1000);
  ct.at(5, 6, 7) = 0;
  ct.at(6, 6, 7) = 100;
  Transform half;
  half.affine.t = {1.0, 0, 0};  // half a voxel along x
  const CtImage w = warp_ct(ct, half, g, full_box(g));
  EXPECT_EQ(w.at(5, 6, 7), 50);
  EXPECT_EQ(w.at(4, 6, 7), -500);
}

TEST(ChangeMap, EveryClassAndItsVolumesPerRegion) {
  Geometry g;
  g.size = {4, 2, 6};
  g.spacing = {10, 10, 10};  // 1 mL voxels
  g.origin = {-20, 0, 0};    // columns 0, 1 at x < 0 (right), 2, 3 at x >= 0
  LabelImage lungs(g, 0), base(g, 0), follow(g, 0), warped_lungs(g, 0);
  for (std::size_t k = 0; k < 6; ++k) {
    for (std::size_t j = 0; j < 2; ++j) {
      for (std::size_t i = 0; i < 4; ++i) lungs.at(i, j, k) = i < 2 ? labels::kRightLung : labels::kLeftLung;
    }
  }
  warped_lungs = lungs;
  // Right lung, top slices (upper third = slices 4, 5 with k up).
  base.at(0, 0, 5) = labels::kGroundGlass;   // resolved
  base.at(1, 0, 5) = labels::kGroundGlass;   // persistent
  follow.at(1, 0, 5) = labels::kGroundGlass;
  base.at(0, 1, 5) = labels::kGroundGlass;   // progressed
  follow.at(0, 1, 5) = labels::kSolid;
  base.at(1, 1, 5) = labels::kSolid;         // regressed
  follow.at(1, 1, 5) = labels::kGroundGlass;
  follow.at(2, 0, 0) = labels::kSolid;       // new, left lower
  follow.at(3, 0, 0) = labels::kGroundGlass; // new, left lower
  const LabelImage c = change_map(base, follow);
  EXPECT_EQ(c.at(0, 0, 5), labels::kResolved);
  EXPECT_EQ(c.at(1, 0, 5), labels::kPersistent);
  EXPECT_EQ(c.at(0, 1, 5), labels::kProgressed);
  EXPECT_EQ(c.at(1, 1, 5), labels::kRegressed);
  EXPECT_EQ(c.at(2, 0, 0), labels::kNew);
  EXPECT_EQ(c.at(0, 0, 0), labels::kNoChange);
  const auto v = change_volumes(c, lungs, warped_lungs);
  ASSERT_EQ(v[0].region, "lungs");
  EXPECT_DOUBLE_EQ(v[0].class_ml[labels::kResolved], 1);
  EXPECT_DOUBLE_EQ(v[0].class_ml[labels::kNew], 2);
  EXPECT_DOUBLE_EQ(v[0].baseline_lesion_ml, 4);
  EXPECT_DOUBLE_EQ(v[0].followup_lesion_ml, 5);
  EXPECT_DOUBLE_EQ(v[0].resolved_pct(), 25);
  EXPECT_DOUBLE_EQ(v[0].baseline_lung_ml, 48);
  EXPECT_EQ(v[1].region, "right");
  EXPECT_DOUBLE_EQ(v[1].baseline_lesion_ml, 4);
  EXPECT_DOUBLE_EQ(v[2].class_ml[labels::kNew], 2);  // left
  EXPECT_EQ(v[3].region, "right_upper");
  EXPECT_DOUBLE_EQ(v[3].class_ml[labels::kProgressed], 1);
  EXPECT_EQ(v[8].region, "left_lower");
  EXPECT_DOUBLE_EQ(v[8].class_ml[labels::kNew], 2);
  EXPECT_EQ(v[11].region, "lower");
  EXPECT_DOUBLE_EQ(v[11].class_ml[labels::kNew], 2);
  const auto rows = change_metrics(v[0]);
  EXPECT_EQ(rows[0].metric, "resolved_ml");
  EXPECT_EQ(rows[8].metric, "new_pct");
  EXPECT_NEAR(rows[8].value, 100.0 * 2 / 48, 1e-12);
  EXPECT_TRUE(std::isnan(v[2].resolved_pct()));  // no baseline lesion on the left
}

TEST(Consistency, DiceDisagreementAndMissedDenseTissue) {
  const Geometry g = grid(20, 2.0);  // 8 uL voxels
  LabelImage carried(g, 0), own(g, 0);
  CtImage ct(g, -850);
  for (std::size_t k = 2; k < 18; ++k) {
    for (std::size_t j = 2; j < 18; ++j) {
      for (std::size_t i = 2; i < 18; ++i) {
        carried.at(i, j, k) = labels::kRightLung;
        // The own mask leaves out a consolidated block deep inside (i 8..11).
        if (i < 8 || i > 11) own.at(i, j, k) = labels::kRightLung;
      }
    }
  }
  for (std::size_t k = 2; k < 18; ++k) {
    for (std::size_t j = 2; j < 18; ++j) {
      for (std::size_t i = 8; i < 12; ++i) ct.at(i, j, k) = 20;
    }
  }
  ConsistencyParams p;
  p.erode_mm = 4.0;  // 2 voxels
  p.max_missed_dense_ml = 1.0;
  const MaskAgreement m = compare_lung_masks(carried, own, ct, p);
  const double vml = g.voxel_volume_ml();
  EXPECT_NEAR(m.carried_ml, 16 * 16 * 16 * vml, 1e-9);
  EXPECT_NEAR(m.own_ml, 12 * 16 * 16 * vml, 1e-9);
  EXPECT_NEAR(m.disagreement_ml, 4 * 16 * 16 * vml, 1e-9);
  EXPECT_NEAR(m.dice, 2.0 * 12 / 28, 1e-12);
  // Eroded by 2 voxels: j, k in 4..15 (12 x 12), i 8..11.
  EXPECT_NEAR(m.missed_dense_ml, 4 * 12 * 12 * vml, 1e-9);
  EXPECT_TRUE(m.flagged);
  EXPECT_EQ(best_aerated({3.0, 1.0, 1.0}, {4000, 3900, 4100}), 2u);
}

TEST(Inspiration, SpongeModelAndFlag) {
  // A lung at 110 % of the baseline volume: (HU + 1000) x 1.1.
  EXPECT_NEAR(volume_adjusted_hu(-880, 5500, 5000), -868, 1e-9);
  EXPECT_NEAR(volume_adjusted_hu(-850, 5000, 5000), -850, 1e-12);
  JacobianStats j;
  j.mean = 1.05;
  EXPECT_FALSE(inspiration_level(5000, 5400, j).flagged);
  EXPECT_TRUE(inspiration_level(5000, 5600, j).flagged);
  j.mean = 0.85;
  EXPECT_TRUE(inspiration_level(5000, 5000, j).flagged);
}

TEST(TransformFiles, AffineAndFieldRoundTrip) {
  const std::string dir = test::temp_dir("transform_io");
  Affine a;
  a.m = {1.01, 0.02, 0, -0.01, 0.99, 0.003, 0, 0, 1.05};
  a.t = {3.5, -2.25, 10};
  write_affine(a, dir + "/affine.tfm");
  const Affine b = read_affine(dir + "/affine.tfm");
  for (int n = 0; n < 9; ++n) EXPECT_NEAR(b.m[n], a.m[n], 1e-12);
  for (int n = 0; n < 3; ++n) EXPECT_NEAR(b.t[n], a.t[n], 1e-12);
  const std::string text = read_text_file(dir + "/affine.tfm");
  EXPECT_NE(text.find("AffineTransform_double_3_3"), std::string::npos);
  Geometry g = grid(6, 3.0, {-10, 20, -30.5});
  const DisplacementField f = linear_field(g, {0.1, 0, 0, 0, 0.2, 0, 0, 0, -0.1}, {1, 2, 3});
  write_field(f, dir + "/field.nii.gz");
  const DisplacementField r = read_field(dir + "/field.nii.gz");
  EXPECT_TRUE(r.geometry().same_grid(g, 1e-4));
  for (std::size_t q = 0; q < f.values().size(); ++q) ASSERT_FLOAT_EQ(r.values()[q], f.values()[q]);
  EXPECT_THROW(read_affine(dir + "/missing.tfm"), Error);
}

}  // namespace
}  // namespace lungvol::registration
