// Outside and tracheal air on real scans no one here made: air is -1000 HU by definition.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "core/protocol.hpp"
#include "densitometry/calibration.hpp"
#include "io/image_io.hpp"
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

}  // namespace
}  // namespace lungvol::dens
