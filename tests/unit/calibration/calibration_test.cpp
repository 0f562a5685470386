// HU calibration check on images whose air, padding, body and trachea values are set by hand,
// and on the phantom (air painted at -1000 HU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "core/labels.hpp"
#include "densitometry/calibration.hpp"
#include "phantom/phantom.hpp"
#include "segmentation/lungs.hpp"
#include "tests/support/minimal_protocol.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::dens {
namespace {

constexpr std::int16_t kPadding = -2048;
constexpr std::int16_t kTissue = 40;

struct Scan {
  CtImage ct;
  LabelImage lungs;
};

// 200 x 180 x 6 voxels of 1 x 1 x 2 mm: a circular FOV (radius 98 mm around (99.5, 89.5);
// outside: padding), a round body (radius 25 mm at (100, 80)) with a -950 HU partial-volume
// halo 4 mm wide, a table (i 20..179, j 115..119), and a trachea (label 3, radius 5 at the body
// centre) whose outer layer of voxels is wall (-500 HU) though labelled airway. Air everywhere
// reads -1000 + offset.
Scan make_scan(int offset, double noise_sd = 0, std::int16_t padding = kPadding,
               double clip_below = -1e9) {
  Geometry g;
  g.size = {200, 180, 6};
  g.spacing = {1, 1, 2};
  Scan s{CtImage(g, 0), LabelImage(g, 0)};
  const std::int16_t air = static_cast<std::int16_t>(-1000 + offset);
  const auto r = [](double x, double y, double cx, double cy) { return std::hypot(x - cx, y - cy); };
  const auto in_disc = [&](long i, long j) { return r(double(i), double(j), 100, 80) <= 5.0; };
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, noise_sd > 0 ? noise_sd : 1);
  for (std::size_t k = 0; k < 6; ++k)
    for (long j = 0; j < 180; ++j)
      for (long i = 0; i < 200; ++i) {
        const double x = double(i), y = double(j);
        double v = air;
        if (r(x, y, 99.5, 89.5) > 98) {
          v = padding;
        } else if (j >= 115 && j < 120 && i >= 20 && i < 180) {
          v = 200;  // table
        } else if (r(x, y, 100, 80) <= 25) {
          v = kTissue;
          if (in_disc(i, j)) {
            s.lungs.at(std::size_t(i), std::size_t(j), k) = labels::kAirway;
            const bool rim = !in_disc(i - 1, j) || !in_disc(i + 1, j) || !in_disc(i, j - 1) ||
                             !in_disc(i, j + 1);
            v = rim ? -500 : air;
          }
        } else if (r(x, y, 100, 80) <= 29) {
          v = -950;  // partial-volume halo of the skin
        }
        if (noise_sd > 0 && v != padding) v = std::round(v + noise(rng));
        if (r(x, y, 99.5, 89.5) <= 98) v = std::max(v, clip_below);  // a scanner's clipping
        s.ct.at(std::size_t(i), std::size_t(j), k) = static_cast<std::int16_t>(v);
      }
  return s;
}

TEST(Calibration, OutsideAirAndTracheaOfACalibratedScan) {
  const Scan s = make_scan(0);
  const CalibrationCheck c = check_calibration(s.ct, s.lungs);
  // Padding (-2048), the -950 halo, the table and the trachea wall all left out: exact -1000.
  EXPECT_TRUE(c.outside_air.found);
  EXPECT_DOUBLE_EQ(c.outside_air.mean_hu, -1000);
  EXPECT_DOUBLE_EQ(c.outside_air.sd_hu, 0);
  EXPECT_GT(c.outside_air.n, 5000u);
  EXPECT_TRUE(c.trachea.found);
  EXPECT_DOUBLE_EQ(c.trachea.mean_hu, -1000);
  EXPECT_TRUE(c.flags.empty());
  EXPECT_TRUE(c.checked);
  EXPECT_TRUE(c.within_tolerance);
}

TEST(Calibration, MarginKeepsThePartialVolumeHaloOut) {
  const Scan s = make_scan(0);
  CalibrationParams p;
  p.body_margin_mm = 0;  // the halo (-950) now counts: the mean must rise above -1000
  EXPECT_GT(check_calibration(s.ct, s.lungs, p).outside_air.mean_hu, -999.0);
  // Every voxel kept with the default 20 mm margin is > 20 mm from the table and from the
  // body's voxels (> 19 mm from the continuous circle, allowing for the voxel grid), and
  // > 20 mm from every padding voxel (brute force over the slice: the FOV circle leaves the
  // image at the top and bottom, where the image edge is not padding).
  const MaskImage m = outside_air_mask(s.ct);
  std::vector<std::pair<double, double>> padding;
  for (std::size_t j = 0; j < 180; ++j)
    for (std::size_t i = 0; i < 200; ++i)
      if (s.ct.at(i, j, 2) == kPadding) padding.emplace_back(double(i), double(j));
  ASSERT_FALSE(padding.empty());
  std::size_t kept = 0;
  for (std::size_t j = 0; j < 180; ++j)
    for (std::size_t i = 0; i < 200; ++i) {
      if (!m.at(i, j, 2)) continue;
      ++kept;
      const double x = double(i), y = double(j);
      EXPECT_GT(std::hypot(x - 100, y - 80) - 25, 19.0) << i << "," << j;
      const double dx = std::max({20 - x, 0.0, x - 179}), dy = std::max({115 - y, 0.0, y - 119});
      EXPECT_GT(std::hypot(dx, dy), 20.0) << i << "," << j;
      double nearest = 1e9;
      for (const auto& [px, py] : padding) nearest = std::min(nearest, std::hypot(x - px, y - py));
      EXPECT_GT(nearest, 20.0) << i << "," << j;
    }
  EXPECT_GT(kept, 1000u);
}

// Issue #19 item 7: POPI stores -1024 outside the reconstruction circle without declaring a
// PixelPaddingValue (a declared one reaches the check as -1024 too). That constant region is not
// air: sampled, it pulled outside air from -993 to -1014 HU, flagged the scan and made
// --calibrate air scale the wrong way (slope 0.9865 instead of > 1).
TEST(Calibration, ConstantPaddingOutsideTheCircleIsNotAir) {
  const Scan s = make_scan(10, 0, -1024);  // air reads -990, padding -1024
  std::size_t circle = 0;  // padding pixels of the 6 slices (every slice is sampled)
  for (std::size_t k = 0; k < 6; ++k)
    for (std::size_t n = 0; n < s.ct.geom.slice_voxels(); ++n) circle += s.ct[k * s.ct.geom.slice_voxels() + n] == -1024;
  const CalibrationCheck c = check_calibration(s.ct, s.lungs);
  ASSERT_TRUE(c.outside_air.found);
  EXPECT_DOUBLE_EQ(c.outside_air.mean_hu, -990);  // not a voxel of padding in the sample
  EXPECT_EQ(c.padding_values_hu, std::vector<int>{-1024});
  EXPECT_EQ(c.padding_voxels, circle);
  EXPECT_TRUE(c.within_tolerance);
  // --calibrate air: air at -990 must be scaled up to -1000 (slope > 1), never down.
  Scan fixed = s;
  const AirCorrection k = apply_air_calibration(fixed.ct, c);
  ASSERT_TRUE(k.applied);
  EXPECT_DOUBLE_EQ(k.slope, 1000.0 / 990.0);
  EXPECT_DOUBLE_EQ(check_calibration(fixed.ct, fixed.lungs).outside_air.mean_hu, -1000);
}

// Noisy air clipped at -1024 by the scanner: many single pixels read exactly the padding value,
// but never whole 5 x 5 blocks, so they stay in the sample (the clipping is the scanner's).
TEST(Calibration, ClippedNoisyAirIsNotMistakenForPadding) {
  const Scan s = make_scan(-12, 15.0, -1024, -1024);
  std::size_t circle = 0, clipped_inside = 0;
  for (std::size_t k = 0; k < 6; ++k)
    for (std::size_t j = 0; j < 180; ++j)
      for (std::size_t i = 0; i < 200; ++i) {
        const bool out = std::hypot(double(i) - 99.5, double(j) - 89.5) > 98;
        circle += out;
        clipped_inside += !out && s.ct.at(i, j, k) == -1024;
      }
  ASSERT_GT(clipped_inside, 10000u);  // a fifth of the air pixels read -1024
  const CalibrationCheck c = check_calibration(s.ct, s.lungs);
  EXPECT_EQ(c.padding_values_hu, std::vector<int>{-1024});
  EXPECT_GE(c.padding_voxels, circle);
  EXPECT_LE(c.padding_voxels, circle + circle / 20);  // the rim where clipped air touches it
  // The clipped normal distribution's mean: -1012 with the tail below -1024 moved up to it.
  EXPECT_NEAR(c.outside_air.mean_hu, -1012 + 15 * 0.0972, 1.0);
}

TEST(Calibration, OffsetScanIsFlagged) {
  const Scan s = make_scan(35);
  const CalibrationCheck c = check_calibration(s.ct, s.lungs);
  EXPECT_DOUBLE_EQ(c.outside_air.mean_hu, -965);
  EXPECT_DOUBLE_EQ(c.trachea.mean_hu, -965);
  EXPECT_FALSE(c.within_tolerance);
  EXPECT_EQ(c.flags, (std::vector<std::string>{"outside_air_out_of_tolerance", "trachea_out_of_tolerance"}));
  // The default range is the ACR phantom criterion for air, -1005 to -970 HU, inclusive:
  // 30 HU high passes, 31 HU high and 6 HU low fail.
  EXPECT_TRUE(check_calibration(make_scan(30).ct, s.lungs).within_tolerance);
  EXPECT_FALSE(check_calibration(make_scan(31).ct, s.lungs).within_tolerance);
  EXPECT_TRUE(check_calibration(make_scan(-5).ct, s.lungs).within_tolerance);
  const CalibrationCheck low = check_calibration(make_scan(-6).ct, s.lungs);
  EXPECT_EQ(low.flags, (std::vector<std::string>{"outside_air_out_of_tolerance", "trachea_out_of_tolerance"}));
}

TEST(Calibration, RangesComeFromTheProtocol) {
  const Scan s = make_scan(25);
  AirCheckParams ranges;
  ranges.outside_air = {-1020, -980};  // outside air must read within +-20 HU ...
  ranges.trachea = {-1030, -970};      // ... the trachea within +-30 HU
  const CalibrationCheck c = check_calibration(s.ct, s.lungs, calibration_params(ranges));
  EXPECT_EQ(c.flags, (std::vector<std::string>{"outside_air_out_of_tolerance"}));
  const Protocol p = parse_protocol(std::string(test::kMinimalProtocol) + R"(
[calibration]
outside_air_hu = [-1020, -980]
trachea_air_hu = [-1030, -970]
source = "site QA manual"
)", "inline.toml");
  EXPECT_EQ(p.air_check.outside_air.lo_hu, -1020);
  EXPECT_EQ(p.air_check.trachea.hi_hu, -970);
  EXPECT_EQ(p.air_check.source, "site QA manual");
  EXPECT_EQ(check_calibration(s.ct, s.lungs, calibration_params(p.air_check)).flags, c.flags);
}

TEST(Calibration, NoisyAirMeanWithinItsStandardError) {
  const Scan s = make_scan(-4, 10.0);
  const CalibrationCheck c = check_calibration(s.ct, s.lungs);
  const double se = 10.0 / std::sqrt(double(c.outside_air.n));
  EXPECT_NEAR(c.outside_air.mean_hu, -1004, 4 * se);
  EXPECT_NEAR(c.outside_air.sd_hu, 10.0, 0.5);
  EXPECT_NEAR(c.trachea.mean_hu, -1004, 4 * 10.0 / std::sqrt(double(c.trachea.n)));
  EXPECT_TRUE(c.within_tolerance);
}

TEST(Calibration, NoAirNoAirwayIsReportedNotGuessed) {
  Geometry g;
  g.size = {30, 30, 3};
  const CtImage ct(g, kTissue);
  const CalibrationCheck c = check_calibration(ct, LabelImage{});
  EXPECT_EQ(c.flags, (std::vector<std::string>{"outside_air_not_found", "no_airway_label"}));
  EXPECT_FALSE(c.checked);
  EXPECT_FALSE(c.within_tolerance);
  CtImage copy = ct;
  const AirCorrection k = apply_air_calibration(copy, c);
  EXPECT_FALSE(k.applied);
  EXPECT_FALSE(k.reason.empty());
  EXPECT_EQ(copy.data, ct.data);
}

TEST(Calibration, OffsetCorrectionBringsAirToMinus1000) {
  Scan s = make_scan(30);
  const CalibrationCheck before = check_calibration(s.ct, s.lungs);
  const AirCorrection k = apply_air_calibration(s.ct, before, AirCalibrationMode::kOffset);
  ASSERT_TRUE(k.applied);
  EXPECT_EQ(k.mode, "offset");
  EXPECT_DOUBLE_EQ(k.measured_air_hu, -970);
  EXPECT_DOUBLE_EQ(k.slope, 1);
  EXPECT_DOUBLE_EQ(k.intercept_hu, -30);
  EXPECT_EQ(s.ct.at(100, 65, 2), kTissue - 30);  // tissue shifted too
  EXPECT_EQ(s.ct.at(0, 0, 2), kPadding);         // padding untouched
  const CalibrationCheck after = check_calibration(s.ct, s.lungs);
  EXPECT_DOUBLE_EQ(after.outside_air.mean_hu, -1000);
  EXPECT_DOUBLE_EQ(after.trachea.mean_hu, -1000);
  EXPECT_TRUE(after.within_tolerance);
}

TEST(Calibration, ScaleAboutWaterKeepsWaterAndFixesAir) {
  Scan s = make_scan(-40);  // air reads -1040
  s.ct.at(100, 20, 2) = 0;  // a water voxel in the air (left out of the air by the margin)
  const CalibrationCheck before = check_calibration(s.ct, s.lungs);
  const AirCorrection k = apply_air_calibration(s.ct, before);
  ASSERT_TRUE(k.applied);
  EXPECT_EQ(k.mode, "scale_about_water");
  EXPECT_DOUBLE_EQ(k.slope, 1000.0 / 1040.0);
  EXPECT_DOUBLE_EQ(k.intercept_hu, 0);
  EXPECT_EQ(s.ct.at(100, 20, 2), 0);     // water stays 0
  EXPECT_EQ(s.ct.at(100, 65, 2), 38);    // 40 HU x 1000 / 1040 = 38.46
  EXPECT_EQ(s.ct.at(100, 80, 2), -1000); // trachea air: -1040 x 1000 / 1040
  EXPECT_EQ(s.ct.at(0, 0, 2), kPadding);
}

TEST(Calibration, PhantomAirReadsMinus1000) {
  phantom::PhantomOptions o;
  o.size = {128, 128, 40};
  o.spacing = {2.7, 2.7, 8.0};
  o.noise_hu = 15;
  o.with_lesions = false;
  const phantom::Phantom ph = phantom::make_phantom(o);
  const CalibrationCheck c = check_calibration(ph.ct, ph.lungs);
  ASSERT_TRUE(c.outside_air.found) << c.outside_air.n;
  ASSERT_TRUE(c.trachea.found) << c.trachea.n;
  EXPECT_NEAR(c.outside_air.mean_hu, -1000, 4 * 15 / std::sqrt(double(c.outside_air.n)) + 0.5);
  EXPECT_NEAR(c.outside_air.sd_hu, 15, 1.5);
  EXPECT_NEAR(c.trachea.mean_hu, -1000, 4 * 15 / std::sqrt(double(c.trachea.n)) + 0.5);
  EXPECT_TRUE(c.within_tolerance);
  std::printf("phantom: outside air %.2f +- %.2f HU (n %zu), trachea %.2f +- %.2f HU (n %zu)\n",
              c.outside_air.mean_hu, c.outside_air.sd_hu, c.outside_air.n, c.trachea.mean_hu,
              c.trachea.sd_hu, c.trachea.n);
}

// Issue #19 item 7: on thin-slice phantoms the airway label was a piece of lung (0.5 mm: the
// "trachea" read -850 HU) or nearly empty (1.6 mm: "trachea_not_found"), so a perfect image was
// flagged. The tracheal sample is now found in the image, tracked down from the top.
TEST(Calibration, ThinSlicePhantomsAreNotFlagged) {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  const LungParams lung = load_protocol(kDefaultProtocol).lung;
  for (const double dz : {1.6, 0.5}) {
    phantom::PhantomOptions o;
    o.size = {192, 192, std::size_t(std::lround(320 / dz))};
    o.spacing = {1.8, 1.8, dz};
    o.with_lesions = false;
    const phantom::Phantom ph = phantom::make_phantom(o);
    const seg::LungSegmentation seg = seg::segment_lungs(ph.ct, lung);
    const CalibrationCheck c = check_calibration(ph.ct, seg.lungs);
    std::printf("%.1f mm: airway label %.1f mL; trachea %.2f HU (n %zu, %zu slices)\n", dz,
                seg.airway_ml, c.trachea.mean_hu, c.trachea.n, c.trachea_slices);
    EXPECT_TRUE(c.flags.empty()) << dz << " mm: " << (c.flags.empty() ? "" : c.flags.front());
    ASSERT_TRUE(c.trachea.found) << dz;
    EXPECT_NEAR(c.trachea.mean_hu, -1000, 4 * 15 / std::sqrt(double(c.trachea.n)) + 0.5) << dz;
    EXPECT_GT(c.trachea_slices * dz, 60.0) << dz;  // the phantom's trachea, not a speck
    EXPECT_TRUE(c.within_tolerance) << dz;
  }
}

}  // namespace
}  // namespace lungvol::dens
