// Given masks on the synthetic chest (phantom/): a one-region lungs mask (one lung, a region of
// interest) is measured as `lungs` with the sides empty; a given lesions mask reports, in mL,
// what was dropped (binary: outside the lesion band or the lungs) or is questionable (labelled
// solid over aerated lung). Expected counts are taken straight from the phantom's voxels.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "io/image_io.hpp"
#include "phantom/phantom.hpp"
#include "pipeline/analyze.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::pipeline {
namespace {

const phantom::Phantom& chest() {
  static const phantom::Phantom ph = [] {
    phantom::PhantomOptions o;
    o.size = {128, 128, 48};
    o.spacing = {2.7, 2.7, 6.0};
    return phantom::make_phantom(o);
  }();
  return ph;
}

std::string write_mask(const LabelImage& m, const std::string& name) {
  const std::string path = test::temp_dir("given_phantom") + "/" + name;
  io::write_label_image(m, path);
  return path;
}

LabelImage mask_where(const std::function<std::uint8_t(std::size_t, std::size_t, std::size_t)>& f) {
  const Geometry& g = chest().ct.geom;
  LabelImage m(g, 0);
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) m.at(i, j, k) = f(i, j, k);
  return m;
}

std::size_t count(const LabelImage& m) {
  std::size_t n = 0;
  for (auto v : m.data) n += v != 0;
  return n;
}

Analysis analysis_with(const std::string& lungs_mask, const std::string& lesions_mask = "") {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  Analysis a;
  a.protocol = load_protocol(kDefaultProtocol);
  a.input.image = chest().ct;
  const Geometry& g = a.input.image.geom;
  a.given_lungs = load_lungs_mask(lungs_mask, g, a.protocol.lung.min_lung_ml);
  a.warnings = a.given_lungs->warnings;
  if (!lesions_mask.empty()) a.given_lesions = load_lesions_mask(lesions_mask, g);
  segment_and_measure(a);
  return a;
}

bool warned(const Analysis& a, const std::string& what) {
  for (const auto& w : a.warnings) {
    if (w.find(what) != std::string::npos) return true;
  }
  return false;
}

void expect_sides_empty(const Analysis& a) {
  for (const auto& r : a.regions) {
    if (r.name.rfind("right", 0) == 0 || r.name.rfind("left", 0) == 0) {
      EXPECT_EQ(r.volumes.volume_ml, 0.0) << r.name;
      EXPECT_EQ(r.volumes.lesion_ml, 0.0) << r.name;
    }
  }
}

TEST(GivenMasksPhantom, OneLungMaskIsMeasuredAsLungsWithTheSidesEmpty) {
  const auto& ph = chest();
  const double voxel_ml = ph.ct.geom.voxel_volume_ml();
  const LabelImage one = mask_where(
      [&](std::size_t i, std::size_t j, std::size_t k) { return ph.lungs.at(i, j, k) == labels::kLeftLung; });
  const Analysis a = analysis_with(write_mask(one, "left_only.nii.gz"));
  EXPECT_TRUE(a.given_lungs->one_region);
  EXPECT_TRUE(a.sides_unknown());
  EXPECT_DOUBLE_EQ(a.region("lungs").volumes.volume_ml, double(count(one)) * voxel_ml);
  EXPECT_GT(a.region("lungs").volumes.lesion_ml, 0.0);  // the left lung's lesions, found inside
  expect_sides_empty(a);
  EXPECT_TRUE(warned(a, "is one region")) << a.warnings.size();
  const auto j = metrics_json(a);
  EXPECT_EQ(j["segmentation"]["lung_sides"], "unknown");
  EXPECT_EQ(j["regions"]["right"]["volume_ml"].get<double>(), 0.0);
}

TEST(GivenMasksPhantom, RegionOfInterestIsMeasuredAsLungs) {
  const auto& ph = chest();
  const Geometry& g = ph.ct.geom;
  // The lower half (by slice) of the right lung, its front half only: a reviewer's ROI.
  const LabelImage roi = mask_where([&](std::size_t i, std::size_t j, std::size_t k) {
    return ph.lungs.at(i, j, k) == labels::kRightLung && k < g.size[2] / 2 && j < g.size[1] / 2;
  });
  ASSERT_GT(double(count(roi)) * g.voxel_volume_ml(), 100.0);
  const Analysis a = analysis_with(write_mask(roi, "roi.nii.gz"));
  EXPECT_TRUE(a.sides_unknown());
  EXPECT_DOUBLE_EQ(a.region("lungs").volumes.volume_ml, double(count(roi)) * g.voxel_volume_ml());
  expect_sides_empty(a);
}

TEST(GivenMasksPhantom, TwoLungBinaryMaskIsStillSplit) {
  const auto& ph = chest();
  const double voxel_ml = ph.ct.geom.voxel_volume_ml();
  const LabelImage both = mask_where([&](std::size_t i, std::size_t j, std::size_t k) {
    const auto l = ph.lungs.at(i, j, k);
    return l == labels::kRightLung || l == labels::kLeftLung;
  });
  const Analysis a = analysis_with(write_mask(both, "both.nii.gz"));
  EXPECT_FALSE(a.sides_unknown());
  std::size_t right = 0;
  for (auto v : ph.lungs.data) right += v == labels::kRightLung;
  EXPECT_DOUBLE_EQ(a.region("right").volumes.volume_ml, double(right) * voxel_ml);
  EXPECT_EQ(metrics_json(a)["segmentation"]["lung_sides"], "right_left");
}

// A binary lesions mask painted over the phantom's lesions, a block of aerated left lung and a
// block outside the lungs: only the lung voxels in [-700, 100) HU count; the rest is reported.
TEST(GivenMasksPhantom, BinaryLesionsMaskReportsWhatWasDropped) {
  const auto& ph = chest();
  const Geometry& g = ph.ct.geom;
  const double v = g.voxel_volume_ml();
  const LabelImage lungs = ph.lungs;  // labelled: 1 right, 2 left, 3 airway
  // A block of the left lung without lesions, and a block of the body outside the lungs.
  std::array<std::size_t, 3> in_lung{}, outside{};
  bool found_lung = false, found_out = false;
  for (std::size_t k = 4; k + 4 < g.size[2] && !(found_lung && found_out); ++k)
    for (std::size_t j = 4; j + 4 < g.size[1]; ++j)
      for (std::size_t i = 4; i + 4 < g.size[0]; ++i) {
        bool all_lung = true, none_lung = true;
        for (std::size_t d = 0; d < 27; ++d) {
          const auto l = ph.lungs.at(i + d % 3, j + d / 3 % 3, k + d / 9);
          all_lung = all_lung && l == labels::kLeftLung && !ph.lesions.at(i + d % 3, j + d / 3 % 3, k + d / 9);
          none_lung = none_lung && l == labels::kBackground;
        }
        if (!found_lung && all_lung) in_lung = {i, j, k}, found_lung = true;
        if (!found_out && none_lung && ph.ct.at(i, j, k) > -200) outside = {i, j, k}, found_out = true;
      }
  ASSERT_TRUE(found_lung && found_out);
  const auto in_block = [](const std::array<std::size_t, 3>& c, std::size_t i, std::size_t j, std::size_t k) {
    return i >= c[0] && i < c[0] + 3 && j >= c[1] && j < c[1] + 3 && k >= c[2] && k < c[2] + 3;
  };
  const LabelImage painted = mask_where([&](std::size_t i, std::size_t j, std::size_t k) {
    return ph.lesions.at(i, j, k) != 0 || in_block(in_lung, i, j, k) || in_block(outside, i, j, k);
  });
  // The expected fate of every painted voxel, from the phantom itself.
  std::size_t counted = 0, below = 0, above = 0, out = 0;
  for (std::size_t n = 0; n < painted.size(); ++n) {
    if (!painted[n]) continue;
    const bool lung = lungs[n] == labels::kRightLung || lungs[n] == labels::kLeftLung;
    const double hu = ph.ct[n];
    if (!lung) ++out;
    else if (hu < -700) ++below;
    else if (hu >= 100) ++above;
    else ++counted;
  }
  ASSERT_GT(below, 20u);
  ASSERT_GT(out, 20u);
  const Analysis a =
      analysis_with(write_mask(lungs, "lungs.nii.gz"), write_mask(painted, "lesions.nii.gz"));
  ASSERT_TRUE(a.lesions_mask_use.has_value());
  const LesionsMaskUse& u = *a.lesions_mask_use;
  EXPECT_DOUBLE_EQ(u.painted_ml, double(count(painted)) * v);
  EXPECT_DOUBLE_EQ(u.counted_ml, double(counted) * v);
  EXPECT_DOUBLE_EQ(u.below_band_ml, double(below) * v);
  EXPECT_DOUBLE_EQ(u.above_band_ml, double(above) * v);
  EXPECT_DOUBLE_EQ(u.outside_lungs_ml, double(out) * v);
  EXPECT_DOUBLE_EQ(a.region("lungs").volumes.lesion_ml, double(counted) * v);
  EXPECT_TRUE(warned(a, "a binary mask counts only lung voxels in the lesion band [-700, 100) HU"));
  EXPECT_TRUE(warned(a, "outside the lungs not counted"));
  const nlohmann::json metrics = metrics_json(a);
  const auto& j = metrics["segmentation"]["lesions_mask"]["use"];
  EXPECT_DOUBLE_EQ(j["below_band_ml"].get<double>(), double(below) * v);
  EXPECT_DOUBLE_EQ(j["painted_ml"].get<double>(), double(count(painted)) * v);
  bool in_json = false;
  for (const auto& w : metrics["input"]["warnings"]) {
    in_json = in_json || w.get<std::string>().find("not counted") != std::string::npos;
  }
  EXPECT_TRUE(in_json);
}

// A labelled mask is counted as labelled, but solid painted over aerated lung is flagged.
TEST(GivenMasksPhantom, LabelledSolidOverAeratedLungIsFlagged) {
  const auto& ph = chest();
  const Geometry& g = ph.ct.geom;
  const double v = g.voxel_volume_ml();
  // Solid (2) over every lesion-free right-lung voxel of one slice band: aerated lung (~-850).
  const std::size_t k0 = g.size[2] / 2;
  const LabelImage solid = mask_where([&](std::size_t i, std::size_t j, std::size_t k) {
    return std::uint8_t(k == k0 && ph.lungs.at(i, j, k) == labels::kRightLung &&
                                !ph.lesions.at(i, j, k)
                            ? labels::kSolid
                            : 0);
  });
  std::size_t n = 0, aerated = 0;
  for (std::size_t m = 0; m < solid.size(); ++m) {
    if (!solid[m]) continue;
    ++n;
    aerated += ph.ct[m] < -700;
  }
  ASSERT_GT(aerated, n / 2);
  const Analysis a =
      analysis_with(write_mask(ph.lungs, "lungs.nii.gz"), write_mask(solid, "solid.nii.gz"));
  EXPECT_TRUE(a.given_lesions->labelled);
  EXPECT_DOUBLE_EQ(a.region("lungs").volumes.solid_ml, double(n) * v);  // counted as given
  EXPECT_DOUBLE_EQ(a.lesions_mask_use->solid_below_band_ml, double(aerated) * v);
  EXPECT_TRUE(warned(a, "labelled lesion over aerated lung"));
}

TEST(GivenMasksPhantom, LesionsMaskWithoutLungsMaskSaysWhyAndWhatToDo) {
  const std::string dir = test::temp_dir("given_phantom_no_lungs");
  io::write_ct_image(chest().ct, dir + "/ct.nii.gz");
  io::write_label_image(chest().lesions, dir + "/lesions.nii.gz");
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  AnalyzeOptions o;
  o.input = dir + "/ct.nii.gz";
  o.lesions_mask = dir + "/lesions.nii.gz";
  try {
    analyze(o);
    FAIL() << "accepted --lesions-mask without --lungs-mask";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--lesions-mask needs --lungs-mask"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--lungs-mask OUT/lungs.nii.gz"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace lungvol::pipeline
