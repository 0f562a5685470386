#include <gtest/gtest.h>

#include <filesystem>

#include "core/labels.hpp"
#include "io/image_io.hpp"
#include "report/qc_images.hpp"
#include "tests/support/test_paths.hpp"
#include "tests/unit/report/libpng_helpers.hpp"

namespace lungvol::report {
namespace {

// CIP label values are type * 256 + region; regions 12-14 are the right lung thirds, 9-11
// the left ones, type 2 is airway (see ../shared/data/cip-chest-imaging-platform/SOURCE.md).
LabelImage lungs_from_cip(const CtImage& lm) {
  LabelImage out(lm.geom, labels::kBackground);
  for (std::size_t n = 0; n < lm.size(); ++n) {
    const int v = lm.data[n], region = v & 255, type = v >> 8;
    if (type == 2)
      out.data[n] = labels::kAirway;
    else if (region >= 12 && region <= 14)
      out.data[n] = labels::kRightLung;
    else if (region >= 9 && region <= 11)
      out.data[n] = labels::kLeftLung;
  }
  return out;
}

bool is(const std::uint8_t* px, Rgb c) { return px[0] == c.r && px[1] == c.g && px[2] == c.b; }

TEST(QcImagesData, CipChestIsShownRadiologically) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/lm-64.nrrd");
  const std::string dir = test::shared_data("cip-chest-imaging-platform");
  const CtImage ct = io::read_ct_image(dir + "/ct-64.nrrd");
  const LabelImage lungs = lungs_from_cip(io::read_ct_image(dir + "/lm-64.nrrd"));
  // Crude lesions, just so the overlay paths run on real data.
  LabelImage lesions(ct.geom, 0);
  for (std::size_t n = 0; n < ct.size(); ++n) {
    if (lungs.data[n] == labels::kRightLung || lungs.data[n] == labels::kLeftLung) {
      if (ct.data[n] > -300)
        lesions.data[n] = labels::kSolid;
      else if (ct.data[n] > -700)
        lesions.data[n] = labels::kGroundGlass;
    }
  }
  const std::string out = test::temp_dir("qc_cip");
  const auto files = write_qc_images(ct, lungs, lesions, out);
  ASSERT_EQ(files.size(), 6u);

  // 64 x 64 x 79 voxels of 4.1719 x 4.1719 x 3.9873 mm: 267.0 x 267.0 x 315.0 mm.
  const Raster axial = test::libpng_read(out + "/qc_axial.png");
  EXPECT_EQ(axial.width, 64u);
  EXPECT_EQ(axial.height, 64u);
  const Raster coronal = test::libpng_read(out + "/qc_coronal.png");
  EXPECT_EQ(coronal.width, 67u);  // 267.0 / 3.9873 = 66.97
  EXPECT_EQ(coronal.height, 79u);
  const Raster sagittal = test::libpng_read(out + "/qc_sagittal_right.png");
  EXPECT_EQ(sagittal.width, 67u);
  EXPECT_EQ(sagittal.height, 79u);
  // As analyze draws them: enlarged to 384 px on the longest side.
  const std::string big = test::temp_dir("qc_cip_big");
  QcOptions enlarged;
  enlarged.min_side = 384;
  write_qc_images(ct, lungs, lesions, big, enlarged);
  const Raster big_axial = test::libpng_read(big + "/qc_axial.png");
  EXPECT_EQ(big_axial.width, 384u);
  EXPECT_EQ(big_axial.height, 384u);

  // The patient's right lung is drawn on the image left in axial and coronal views.
  for (const Raster* r : {&axial, &coronal}) {
    std::size_t right_on_left = 0, right_on_right = 0, left_on_left = 0, left_on_right = 0;
    for (std::size_t y = 0; y < r->height; ++y) {
      for (std::size_t x = 0; x < r->width; ++x) {
        const bool left_half = 2 * x < r->width;
        if (is(r->at(x, y), kRightLungColour)) ++(left_half ? right_on_left : right_on_right);
        if (is(r->at(x, y), kLeftLungColour)) ++(left_half ? left_on_left : left_on_right);
      }
    }
    EXPECT_GT(right_on_left, 20u);
    EXPECT_EQ(right_on_right, 0u);
    EXPECT_GT(left_on_right, 20u);
    EXPECT_EQ(left_on_left, 0u);
  }
  // Head up: in the coronal view the trachea lies above the lung bases, so the lowest
  // lung contour pixel is well below the lowest airway pixel.
  std::size_t lowest_lung = 0, lowest_airway = 0;
  for (std::size_t y = 0; y < coronal.height; ++y) {
    for (std::size_t x = 0; x < coronal.width; ++x) {
      if (is(coronal.at(x, y), kRightLungColour) || is(coronal.at(x, y), kLeftLungColour)) {
        lowest_lung = y;
      }
      if (is(coronal.at(x, y), kAirwayColour)) lowest_airway = y;
    }
  }
  EXPECT_GT(lowest_lung, lowest_airway + 10);
}

}  // namespace
}  // namespace lungvol::report
