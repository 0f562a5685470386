// Real anatomy: the POPI chest CT (no masks). Lungs found and plausible, low residual lesion
// fraction, and lesions of known volume inserted into it are measured back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/labels.hpp"
#include "io/series.hpp"
#include "pipeline/analyze.hpp"
#include "segmentation/lungs.hpp"
#include "segmentation/morphology.hpp"
#include "tests/support/lesion_insertion.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::pipeline {
namespace {

class Popi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::missing_shared("data/" + std::string(kPopi)).empty()) return;  // SetUp skips
    setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
    base_ = new Analysis();
    base_->protocol = load_protocol(kDefaultProtocol);
    base_->input = io::load_ct(test::shared_data(kPopi));
    segment_and_measure(*base_);
  }
  void SetUp() override { LUNGVOL_REQUIRE_DATA(kPopi); }
  static void TearDownTestSuite() { delete base_; }
  static constexpr const char* kPopi = "popi-4dct-phase00-itkelastix/dicom";
  static Analysis* base_;
};
Analysis* Popi::base_ = nullptr;

TEST_F(Popi, TwoPlausibleLungsAndLowResidual) {
  const auto& l = base_->region("lungs").volumes;
  const auto& r = base_->region("right").volumes;
  const auto& lf = base_->region("left").volumes;
  std::printf("POPI: lungs %.1f mL (right %.1f, left %.1f), airway %.1f mL, lesion %.2f%% "
              "(ggo %.2f%%, solid %.2f%%)\n",
              l.volume_ml, r.volume_ml, lf.volume_ml, base_->lungs.airway_ml, l.lesion_pct,
              l.ggo_pct, l.solid_pct);
  EXPECT_GT(l.volume_ml, 3500);
  EXPECT_LT(l.volume_ml, 7500);
  EXPECT_GT(r.volume_ml, lf.volume_ml);  // the right lung is the larger one
  EXPECT_GT(lf.volume_ml, 0.3 * l.volume_ml);
  EXPECT_GT(base_->lungs.airway_ml, 20);
  EXPECT_LT(base_->lungs.airway_ml, 150);
  // A solid tumour is present, so "residual" is not zero; it must stay small.
  EXPECT_LT(l.lesion_pct, 2.0);
  // No dense-tissue review flag on a clean scan (left out, blobs, right share, lung bases).
  for (const auto& w : base_->warnings) EXPECT_NE(w.rfind("dense tissue", 0), 0u) << w;
  EXPECT_LE(base_->lungs.right_base.rise_mm(), 0.0);  // measured -8 mm: lowest at the back
  EXPECT_LE(base_->lungs.left_base.rise_mm(), 0.0);
}

// Picks a voxel inside the lung of `label` whose distance to non-lung is about `depth_mm`
// (deep for interior lesions, shallow for one against the chest wall), searching the lung's
// mid-height slices on its lateral side.
std::array<double, 3> pick_centre(const LabelImage& lungs, std::uint8_t label, double depth_mm,
                                  bool lateral_wall) {
  MaskImage background(lungs.geom, 0);
  for (std::size_t n = 0; n < lungs.size(); ++n) background[n] = lungs[n] != label;
  const auto d2 = seg::squared_distance_to(background);
  const Geometry& g = lungs.geom;
  const std::size_t k = g.size[2] / 2;
  double best = 1e30;
  std::array<double, 3> out{0, 0, double(k)};
  for (std::size_t j = 0; j < g.size[1]; ++j) {
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      const std::size_t n = g.index(i, j, k);
      if (lungs[n] != label) continue;
      const double d = std::sqrt(d2[n]);
      // Prefer the most lateral point at the requested depth for the wall lesion.
      const double lateral = label == labels::kRightLung ? double(i) : -double(i);
      const double score = std::abs(d - depth_mm) + (lateral_wall ? 0.05 * lateral : 0.0);
      if (score < best) {
        best = score;
        out = {double(i), double(j), double(k)};
      }
    }
  }
  return out;
}

TEST_F(Popi, InsertedLesionsAreMeasured) {
  Analysis with;
  with.protocol = base_->protocol;
  with.input.image = base_->input.image;
  const LabelImage& lungs = base_->lungs.lungs;
  std::vector<test::InsertedLesion> ins;
  test::InsertedLesion ggo1;
  ggo1.centre_index = pick_centre(lungs, labels::kLeftLung, 25, false);
  ggo1.semi_axes_mm = {15, 12, 14};
  ins.push_back(ggo1);
  test::InsertedLesion ggo2 = ggo1;
  ggo2.centre_index = pick_centre(lungs, labels::kRightLung, 22, false);
  ggo2.centre_index[2] += 20;  // another height
  ggo2.semi_axes_mm = {12, 16, 10};
  ins.push_back(ggo2);
  test::InsertedLesion solid;
  solid.centre_index = pick_centre(lungs, labels::kLeftLung, 15, false);
  solid.centre_index[2] -= 25;
  solid.semi_axes_mm = {10, 9, 12};
  solid.lo_hu = -50;
  solid.hi_hu = 50;
  ins.push_back(solid);
  test::InsertedLesion wall = solid;  // against the lateral chest wall of the right lung
  wall.centre_index = pick_centre(lungs, labels::kRightLung, 6, true);
  wall.semi_axes_mm = {10, 14, 12};
  ins.push_back(wall);
  const auto counts = test::insert_lesions(with.input.image, ins, 7);
  segment_and_measure(with);

  const double vml = base_->input.image.geom.voxel_volume_ml();
  // Only the part of the wall lesion inside the original lung is lung: the part that replaced
  // chest wall was never lung. Inserted volumes count the voxels that were lung before.
  auto inside_before = [&](const test::InsertedLesion& l) {
    CtImage probe = base_->input.image;
    std::fill(probe.data.begin(), probe.data.end(), 0);
    test::InsertedLesion p = l;
    p.lo_hu = 1;
    p.hi_hu = 1;
    p.noise_hu = 0;
    test::insert_lesions(probe, {p}, 1);
    std::uint64_t n = 0;
    for (std::size_t v = 0; v < probe.size(); ++v) {
      n += probe[v] == 1 && (lungs[v] == labels::kRightLung || lungs[v] == labels::kLeftLung);
    }
    return double(n) * vml;
  };
  const double ggo_in = inside_before(ins[0]) + inside_before(ins[1]);
  const double solid_in = inside_before(ins[2]) + inside_before(ins[3]);
  const auto& b = base_->region("lungs").volumes;
  const auto& w = with.region("lungs").volumes;
  std::printf("inserted ggo %.2f mL (%llu+%llu voxels) -> measured increase %.2f mL\n", ggo_in,
              static_cast<unsigned long long>(counts[0]), static_cast<unsigned long long>(counts[1]),
              w.ggo_ml - b.ggo_ml);
  std::printf("inserted solid %.2f mL (wall lesion %.2f mL inside lung) -> increase %.2f mL\n",
              solid_in, inside_before(ins[3]), w.solid_ml - b.solid_ml);
  std::printf("lung volume %.1f -> %.1f mL\n", b.volume_ml, w.volume_ml);
  EXPECT_NEAR(w.ggo_ml - b.ggo_ml, ggo_in, 0.10 * ggo_in);
  EXPECT_NEAR(w.solid_ml - b.solid_ml, solid_in, 0.10 * solid_in);
  EXPECT_GE(w.volume_ml, b.volume_ml - 0.002 * b.volume_ml);
}


// A dependent pleural effusion (fluid, 0-20 HU) in the right lung's posterior base: a crescent
// along the back of the lung, 38 mm thick at the base thinning to 8 mm at 40 % of the lung's
// height, replacing lung (as fluid compresses it). Fluid is neither lung nor lesion; what
// lungvol does with it is measured here (docs/validation.md, "Pleural effusion").
TEST_F(Popi, DependentEffusionIsNotSilentlyLesion) {
  Analysis with;
  with.protocol = base_->protocol;
  with.input.image = base_->input.image;
  const LabelImage& lungs = base_->lungs.lungs;
  const Geometry& g = lungs.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const int up = seg::superior_step(g);
  // The right lung's lowest and highest slice.
  std::ptrdiff_t lo = -1, hi = -1;
  for (std::size_t k = 0; k < nz; ++k) {
    bool any = false;
    for (std::size_t n = k * nx * ny; n < (k + 1) * nx * ny && !any; ++n) {
      any = lungs[n] == labels::kRightLung;
    }
    if (!any) continue;
    if (lo < 0) lo = std::ptrdiff_t(k);
    hi = std::ptrdiff_t(k);
  }
  ASSERT_GE(lo, 0);
  const std::ptrdiff_t base = up > 0 ? lo : hi;
  const double height = double(hi - lo) * g.spacing[2];
  MaskImage fluid(g, 0);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0.0, 12.0);
  std::uint64_t n_fluid = 0;
  for (std::size_t k = 0; k < nz; ++k) {
    const double above = double((std::ptrdiff_t(k) - base) * up) * g.spacing[2];
    if (above < 0 || above > 0.4 * height) continue;
    const double t_mm = 38.0 - 30.0 * above / (0.4 * height);
    for (std::size_t i = 0; i < nx; ++i) {
      std::ptrdiff_t back = -1;  // LPS: j grows to the back on POPI's axial grid
      for (std::size_t j = 0; j < ny; ++j) {
        if (lungs.at(i, j, k) == labels::kRightLung) back = std::ptrdiff_t(j);
      }
      if (back < 0) continue;
      for (std::size_t j = 0; j < ny; ++j) {
        if (lungs.at(i, j, k) != labels::kRightLung) continue;
        if (double(back - std::ptrdiff_t(j)) * g.spacing[1] > t_mm) continue;
        fluid.at(i, j, k) = 1;
        with.input.image.at(i, j, k) = std::int16_t(std::lround(std::clamp(10.0 + noise(rng), -10.0, 30.0)));
        ++n_fluid;
      }
    }
  }
  const double vml = g.voxel_volume_ml();
  const double fluid_ml = double(n_fluid) * vml;
  segment_and_measure(with);
  std::uint64_t inside = 0, as_lesion = 0;
  for (std::size_t n = 0; n < fluid.size(); ++n) {
    if (!fluid[n]) continue;
    const std::uint8_t l = with.lungs.lungs[n];
    inside += l == labels::kRightLung || l == labels::kLeftLung;
    as_lesion += with.lesions.lesions[n] != 0;
  }
  bool flagged = false;
  for (const auto& w : with.warnings) flagged = flagged || w.rfind("dense tissue", 0) == 0;
  const auto& b = base_->region("lungs").volumes;
  const auto& w = with.region("lungs").volumes;
  std::printf("effusion %.1f mL: %.1f %% inside the lung mask, %.1f %% labelled lesion; solid "
              "%+.1f mL, lungs %.1f -> %.1f mL; base rise right %.1f mm; dense-tissue flag %s\n",
              fluid_ml, 100.0 * double(inside) / double(n_fluid),
              100.0 * double(as_lesion) / double(n_fluid), w.solid_ml - b.solid_ml, b.volume_ml,
              w.volume_ml, with.lungs.right_base.rise_mm(), flagged ? "yes" : "no");
  for (const auto& m : with.warnings) std::printf("  warning: %s\n", m.c_str());
  EXPECT_GT(fluid_ml, 100.0);
  // Measured: 199 mL of fluid, 8.4 % inside the lung mask, 4.3 % labelled lesion, no flag.
  // Fluid is kept out of the lung; what enters it (the meniscus against aerated lung) must
  // stay a small part of the fluid unless the scan is flagged.
  EXPECT_LT(double(inside), 0.15 * double(n_fluid));
  EXPECT_TRUE(flagged || double(as_lesion) < 0.08 * double(n_fluid))
      << "fluid labelled lesion without a dense-tissue flag";
}

}  // namespace
}  // namespace lungvol::pipeline
