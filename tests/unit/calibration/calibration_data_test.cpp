// Outside and tracheal air on real scans no one here made: air is -1000 HU by definition.
#include <gtest/gtest.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>

#include "core/protocol.hpp"
#include "densitometry/calibration.hpp"
#include "io/image_io.hpp"
#include "io/series.hpp"
#include "segmentation/lungs.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::dens {
namespace {

void report(const char* name, const CalibrationCheck& c) {
  std::printf("%s: outside air %.1f +- %.1f HU (n %zu), trachea %.1f +- %.1f HU (n %zu), flags:",
              name, c.outside_air.mean_hu, c.outside_air.sd_hu, c.outside_air.n, c.trachea.mean_hu,
              c.trachea.sd_hu, c.trachea.n);
  for (const auto& f : c.flags) std::printf(" %s", f.c_str());
  std::printf("\n");
}

TEST(CalibrationData, CipCopdGeneCase) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/ct-64.nrrd");
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  const CtImage ct = io::read_ct_image(test::shared_data("cip-chest-imaging-platform/ct-64.nrrd"));
  const seg::LungSegmentation s = seg::segment_lungs(ct, load_protocol(kDefaultProtocol).lung);
  const CalibrationCheck c = check_calibration(ct, s.lungs);
  report("CIP ct-64", c);
  for (double margin : {10.0, 30.0}) {  // how much the body's scatter still lifts the air
    CalibrationParams p;
    p.body_margin_mm = margin;
    const CalibrationCheck m = check_calibration(ct, LabelImage{}, p);
    std::printf("  margin %.0f mm: outside air %.1f +- %.1f HU, median %.0f (n %zu)\n", margin,
                m.outside_air.mean_hu, m.outside_air.sd_hu, m.outside_air.median_hu, m.outside_air.n);
  }
  std::printf("  grid %zu x %zu x %zu, spacing %.2f x %.2f x %.2f mm\n", ct.geom.size[0],
              ct.geom.size[1], ct.geom.size[2], ct.geom.spacing[0], ct.geom.spacing[1],
              ct.geom.spacing[2]);
  ASSERT_TRUE(c.outside_air.found);
  EXPECT_NEAR(c.outside_air.mean_hu, -1000, 10);
  EXPECT_TRUE(c.within_tolerance);
  if (c.trachea.found) {
    EXPECT_NEAR(c.trachea.mean_hu, -1000, 60);
  }
}

// Issue #19 item 7: POPI stores -1024 outside its reconstruction circle, undeclared. On 3f3ab5f
// that padding was sampled as outside air (mean -1013.7, median -1024, 1.7 M voxels), the scan
// was flagged on every run and --calibrate air scaled by 0.9865: air was made denser, not less.
TEST(CalibrationData, PopiPaddingIsNotOutsideAir) {
  LUNGVOL_REQUIRE_DATA("popi-4dct-phase00-itkelastix/dicom");
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  io::LoadedCt in = io::load_ct(test::shared_data("popi-4dct-phase00-itkelastix/dicom"));
  const seg::LungSegmentation s = seg::segment_lungs(in.image, load_protocol(kDefaultProtocol).lung);
  const CalibrationCheck c = check_calibration(in.image, s.lungs);
  report("POPI", c);
  EXPECT_EQ(c.padding_values_hu, std::vector<int>{-1024});
  EXPECT_GT(c.padding_voxels, 1000000u);  // 24 sampled slices x ~56 000 pixels outside the circle
  ASSERT_TRUE(c.outside_air.found);
  EXPECT_GT(c.outside_air.mean_hu, -1000.0);
  EXPECT_LT(c.outside_air.mean_hu, -985.0);
  EXPECT_GT(c.outside_air.median_hu, -1024.0);
  // Outside air is within the ACR range now; tracheal air on this radiotherapy scanner is not.
  EXPECT_EQ(std::count(c.flags.begin(), c.flags.end(), "outside_air_out_of_tolerance"), 0);
  const AirCorrection k = apply_air_calibration(in.image, c);
  ASSERT_TRUE(k.applied);
  EXPECT_GT(k.slope, 1.0);  // air above -1000 is scaled down to -1000: the slope exceeds 1
  EXPECT_NEAR(k.slope * c.outside_air.mean_hu, -1000.0, 1e-9);
}

}  // namespace
}  // namespace lungvol::dens
