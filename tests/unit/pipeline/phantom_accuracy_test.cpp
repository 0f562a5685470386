// Accuracy against the phantom's analytic truth (phantom/phantom.hpp): voxel-counted volumes of
// lungs, ground-glass and solid lesions, including the pleural lesion on the chest wall.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/error.hpp"
#include "core/labels.hpp"
#include "phantom/phantom.hpp"
#include "pipeline/analyze.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::pipeline {
namespace {

Analysis analyze_phantom(const phantom::Phantom& ph) {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  Analysis a;
  a.protocol = load_protocol(kDefaultProtocol);
  a.input.image = ph.ct;
  segment_and_measure(a);
  return a;
}

double truth(const phantom::Phantom& ph, const char* key) {
  return ph.truth.at("volumes").at(key).get<double>();
}

void expect_within(double measured, double expected, double rel, const char* what) {
  EXPECT_NEAR(measured, expected, rel * expected)
      << what << ": measured " << measured << " mL, truth " << expected << " mL";
  std::printf("%-12s measured %9.2f mL truth %9.2f mL (%+.2f%%)\n", what, measured, expected,
              100.0 * (measured - expected) / expected);
}

// Measured solid voxels split into those at the truth's solid lesions (a truth solid voxel or a
// face neighbour of one: the lesion and its boundary) and those elsewhere, in mL.
struct SolidSplit {
  double at_lesions_ml = 0, elsewhere_ml = 0;
};
SolidSplit split_solid(const phantom::Phantom& ph, const Analysis& a) {
  const Geometry& g = ph.ct.geom;
  auto truth_solid_at = [&](std::size_t i, std::size_t j, std::size_t k) {
    return ph.lesions.at(i, j, k) == labels::kSolid;
  };
  std::uint64_t at_lesions = 0, elsewhere = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        if (a.lesions.lesions.at(i, j, k) != labels::kSolid) continue;
        const bool near = truth_solid_at(i, j, k) || (i > 0 && truth_solid_at(i - 1, j, k)) ||
                          (i + 1 < g.size[0] && truth_solid_at(i + 1, j, k)) ||
                          (j > 0 && truth_solid_at(i, j - 1, k)) ||
                          (j + 1 < g.size[1] && truth_solid_at(i, j + 1, k)) ||
                          (k > 0 && truth_solid_at(i, j, k - 1)) ||
                          (k + 1 < g.size[2] && truth_solid_at(i, j, k + 1));
        (near ? at_lesions : elsewhere) += 1;
      }
  return {double(at_lesions) * g.voxel_volume_ml(), double(elsewhere) * g.voxel_volume_ml()};
}

// Fraction of the pleural (chest-wall) lesion's voxels that the lung mask holds: solid truth
// voxels inside the ellipsoid of the lesion that touches the chest wall.
double pleural_lesion_inside(const phantom::Phantom& ph, const Analysis& a) {
  std::array<double, 3> centre{}, axes{};
  for (const auto& l : ph.truth.at("lesions")) {
    if (!l.at("touches_chest_wall").get<bool>()) continue;
    for (int d = 0; d < 3; ++d) {
      centre[d] = l.at("centre_lps_mm")[d].get<double>();
      axes[d] = l.at("semi_axes_mm")[d].get<double>();
    }
  }
  EXPECT_GT(axes[0], 0.0) << "the phantom has a pleural lesion";
  std::uint64_t in_mask = 0, total = 0;
  const Geometry& g = ph.ct.geom;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const std::size_t n = g.index(i, j, k);
        if (ph.lesions[n] != labels::kSolid || axes[0] <= 0) continue;
        const auto p = g.to_physical(double(i), double(j), double(k));
        double r = 0;
        for (int d = 0; d < 3; ++d) r += std::pow((p[d] - centre[d]) / axes[d], 2);
        if (r > 1.0) continue;
        ++total;
        in_mask += a.lungs.lungs[n] == labels::kRightLung || a.lungs.lungs[n] == labels::kLeftLung;
      }
  EXPECT_GT(total, 50u);
  std::printf("pleural lesion inside the lung mask: %.1f%% of %llu voxels\n",
              total ? 100.0 * double(in_mask) / double(total) : 0.0,
              static_cast<unsigned long long>(total));
  return total ? double(in_mask) / double(total) : 0.0;
}

TEST(PhantomAccuracy, DefaultPhantomVolumes) {
  const phantom::Phantom ph = phantom::make_phantom({});
  const Analysis a = analyze_phantom(ph);
  const auto& lungs = a.region("lungs").volumes;
  expect_within(lungs.volume_ml, truth(ph, "lung_ml"), 0.02, "lung");
  expect_within(a.region("right").volumes.volume_ml, truth(ph, "right_lung_ml"), 0.02, "right");
  expect_within(a.region("left").volumes.volume_ml, truth(ph, "left_lung_ml"), 0.02, "left");
  expect_within(lungs.ggo_ml, truth(ph, "ggo_ml"), 0.02, "ground-glass");
  expect_within(a.lungs.airway_ml, truth(ph, "airway_ml"), 0.10, "airway");
  // The solid total, and the two errors it could hide (docs/validation.md): at the lesions,
  // voxels missed or chest wall taken (the lung mask, pleural lesion included), and elsewhere,
  // vessel segments at the hilum or beside a ground-glass lesion counted as solid (the lesion
  // stage's vessel suppression).
  const double solid_truth = truth(ph, "solid_ml");
  expect_within(lungs.solid_ml, solid_truth, 0.02, "solid total");
  const SolidSplit solid = split_solid(ph, a);
  expect_within(solid.at_lesions_ml, solid_truth, 0.02, "solid at lesions");
  std::printf("solid elsewhere (vessels) %.2f mL (%.1f%% of truth)\n", solid.elsewhere_ml,
              100.0 * solid.elsewhere_ml / solid_truth);
  EXPECT_LT(solid.elsewhere_ml, 0.01 * solid_truth);
}

TEST(PhantomAccuracy, PleuralLesionIsInsideTheLungMask) {
  const phantom::Phantom ph = phantom::make_phantom({});
  EXPECT_GE(pleural_lesion_inside(ph, analyze_phantom(ph)), 0.97);
}

// The pleural rim must not depend on one subject or one slice thickness.
TEST(PhantomAccuracy, PleuralLesionOtherSubjectsAndSlices) {
  struct Case {
    std::uint64_t seed;
    double slice_mm;
    double min_inside;     // fraction of the pleural lesion inside the lung mask
    double solid_rel_tol;  // solid at the lesions vs truth
  };
  // 0.7-1 mm slices: the lesion was left out entirely by the dome guard until it ignored
  // chest-wall tissue, then a rim of about 6 % against the wall in every other slice until the
  // pleural surface stopped counting the lesion's own un-admitted margin (docs/validation.md).
  for (const Case c : {Case{2, 4.0, 0.97, 0.04}, Case{3, 2.5, 0.97, 0.04},
                       Case{4, 5.0, 0.97, 0.04}, Case{1, 1.0, 0.97, 0.04},
                       Case{5, 0.7, 0.97, 0.04}}) {
    phantom::PhantomOptions o;
    o.seed = c.seed;
    o.spacing[2] = c.slice_mm;
    o.size[2] = std::size_t(std::lround(320.0 / c.slice_mm));
    const phantom::Phantom ph = phantom::make_phantom(o);
    const Analysis a = analyze_phantom(ph);
    std::printf("seed %llu, %.1f mm slices:\n", static_cast<unsigned long long>(c.seed),
                c.slice_mm);
    EXPECT_GE(pleural_lesion_inside(ph, a), c.min_inside);
    expect_within(a.region("lungs").volumes.volume_ml, truth(ph, "lung_ml"), 0.02, "lung");
    // 2.5 mm slices: +2.9 %, the wall voxels of a curved surface's staircase (docs/validation.md).
    expect_within(split_solid(ph, a).at_lesions_ml, truth(ph, "solid_ml"), c.solid_rel_tol,
                  "solid at lesions");
  }
}

// A chest so small (17 x 16 cm field) that the 30 mm rolling ball bridges the heart's own
// indentation of the left lung: the bay is lesion-shaped, so it is admitted, and the lung volume
// is 9 % too large. That must never pass silently: the admitted volume is flagged, and the
// same grid over an adult's chest (3.6 mm voxels) admits nothing of the kind.
TEST(PhantomAccuracy, SmallChestHeartBorderIsFlagged) {
  phantom::PhantomOptions o;
  o.size = {96, 96, 40};
  const phantom::Phantom small = phantom::make_phantom(o);
  const Analysis a = analyze_phantom(small);
  const double lung = a.region("lungs").volumes.volume_ml;
  std::printf("small chest: lung %.1f mL (truth %.1f), blobs admitted %.1f mL\n", lung,
              truth(small, "lung_ml"), a.lungs.blobs_added_ml);
  if (lung > 1.02 * truth(small, "lung_ml")) {
    EXPECT_GT(a.lungs.blobs_added_ml, 0.5 * (lung - truth(small, "lung_ml")));
    bool warned = false;
    for (const auto& w : a.warnings) warned = warned || w.find("admitted away from the chest wall") != std::string::npos;
    EXPECT_TRUE(warned) << "a lung volume 2 % above the truth without a warning";
  }
  o.spacing = {3.6, 3.6, 8.0};
  const phantom::Phantom adult = phantom::make_phantom(o);
  const Analysis b = analyze_phantom(adult);
  expect_within(b.region("lungs").volumes.volume_ml, truth(adult, "lung_ml"), 0.02, "adult lung");
  EXPECT_LT(b.lungs.blobs_added_ml, 0.005 * truth(adult, "lung_ml"));
  for (const auto& w : b.warnings) EXPECT_EQ(w.find("dense tissue"), std::string::npos) << w;
}

TEST(PhantomAccuracy, TouchingLungsAreSeparated) {
  phantom::PhantomOptions o;
  o.touching = true;
  const phantom::Phantom ph = phantom::make_phantom(o);
  const Analysis a = analyze_phantom(ph);
  EXPECT_TRUE(a.lungs.lungs_touching);
  expect_within(a.region("right").volumes.volume_ml, truth(ph, "right_lung_ml"), 0.02, "right");
  expect_within(a.region("left").volumes.volume_ml, truth(ph, "left_lung_ml"), 0.02, "left");
}

// The segmentation's parallel loops (per-thread partial sums, slabs of slices, the two lungs
// side by side) must not change a voxel: the same masks and air check at 1, 2 and 3 threads,
// for separate and for touching lungs (the erosion-and-regrowth path).
TEST(PhantomAccuracy, ResultsDoNotDependOnTheThreadCount) {
#ifdef _OPENMP
  for (const bool touching : {false, true}) {
    phantom::PhantomOptions o;
    o.touching = touching;
    const phantom::Phantom ph = phantom::make_phantom(o);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Analysis one = analyze_phantom(ph);
    for (const int n : {2, 3}) {
      omp_set_num_threads(n);
      const Analysis many = analyze_phantom(ph);
      EXPECT_TRUE(many.lungs.lungs.data == one.lungs.lungs.data) << n << " threads";
      EXPECT_TRUE(many.lesions.lesions.data == one.lesions.lesions.data) << n << " threads";
      EXPECT_TRUE(many.lesions.suppressed.data == one.lesions.suppressed.data) << n;
      EXPECT_EQ(many.calibration.outside_air.n, one.calibration.outside_air.n) << n;
      EXPECT_EQ(many.calibration.outside_air.mean_hu, one.calibration.outside_air.mean_hu) << n;
      EXPECT_EQ(many.calibration.trachea.n, one.calibration.trachea.n) << n;
      EXPECT_EQ(many.calibration.trachea.mean_hu, one.calibration.trachea.mean_hu) << n;
    }
    omp_set_num_threads(threads);
    // Not vacuous: the comparison is between real segmentations.
    EXPECT_GT(std::count(one.lungs.lungs.data.begin(), one.lungs.lungs.data.end(),
                         labels::kRightLung), 100000);
    EXPECT_GT(one.calibration.trachea.n, 0u);
  }
#else
  GTEST_SKIP() << "built without OpenMP";
#endif
}

TEST(PhantomAccuracy, NoLesionPhantomHasSmallResidual) {
  phantom::PhantomOptions o;
  o.with_lesions = false;
  const phantom::Phantom ph = phantom::make_phantom(o);
  const Analysis a = analyze_phantom(ph);
  const double residual = a.region("lungs").volumes.lesion_pct;
  std::printf("residual lesion fraction without lesions: %.3f%%\n", residual);
  EXPECT_LT(residual, 0.5);
}

TEST(PhantomAccuracy, LesionVolumesAreFunctionsOfTheHistograms) {
  const phantom::Phantom ph = phantom::make_phantom({});
  const Analysis a = analyze_phantom(ph);
  std::uint64_t ggo = 0, solid = 0;
  for (auto v : a.lesions.lesions.data) {
    ggo += v == labels::kGroundGlass;
    solid += v == labels::kSolid;
  }
  const double vml = ph.ct.geom.voxel_volume_ml();
  EXPECT_NEAR(a.region("lungs").volumes.ggo_ml, double(ggo) * vml, 1e-9);
  EXPECT_NEAR(a.region("lungs").volumes.solid_ml, double(solid) * vml, 1e-9);
  // Zones partition each lung.
  double zones = 0;
  for (const char* z : {"right_upper", "right_middle", "right_lower"}) {
    zones += a.region(z).volumes.volume_ml;
  }
  EXPECT_NEAR(zones, a.region("right").volumes.volume_ml, 1e-6);
}

TEST(PhantomAccuracy, FailsLoudlyWithoutLungs) {
  phantom::Phantom ph = phantom::make_phantom({});
  for (auto& v : ph.ct.data) v = 40;  // soft tissue only
  EXPECT_THROW(analyze_phantom(ph), Error);
}

}  // namespace
}  // namespace lungvol::pipeline
