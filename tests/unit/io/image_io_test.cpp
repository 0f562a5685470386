#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.hpp"
#include "io/image_io.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::io {
namespace {

CtImage make_ct() {
  Geometry g;
  g.size = {5, 4, 3};
  g.spacing = {0.7, 0.8, 2.5};
  g.origin = {-100.0, -50.5, 12.25};
  // An oblique-free but flipped direction: x negated, y and z swapped.
  g.direction = {-1, 0, 0, 0, 0, 1, 0, 1, 0};
  CtImage img(g);
  for (std::size_t n = 0; n < img.size(); ++n) img[n] = static_cast<std::int16_t>(-1024 + 37 * n);
  img[0] = -32768;
  img[1] = 32767;
  return img;
}

void expect_same_geometry(const Geometry& a, const Geometry& b) {
  EXPECT_EQ(a.size, b.size);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(a.spacing[i], b.spacing[i], 1e-5);
    EXPECT_NEAR(a.origin[i], b.origin[i], 1e-4);
  }
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(a.direction[i], b.direction[i], 1e-6);
}

class ImageIoRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(ImageIoRoundTrip, CtAndLabelsSurviveUnchanged) {
  const std::string dir = test::temp_dir("image_io");
  const CtImage ct = make_ct();
  const std::string ct_path = dir + "/ct" + GetParam();
  write_ct_image(ct, ct_path);
  const CtImage back = read_ct_image(ct_path);
  expect_same_geometry(ct.geom, back.geom);
  EXPECT_EQ(ct.data, back.data);

  LabelImage labels(ct.geom);
  for (std::size_t n = 0; n < labels.size(); ++n) labels[n] = static_cast<std::uint8_t>(n % 4);
  labels[7] = 255;
  const std::string lab_path = dir + "/labels" + GetParam();
  write_label_image(labels, lab_path);
  const LabelImage lback = read_label_image(lab_path);
  expect_same_geometry(labels.geom, lback.geom);
  EXPECT_EQ(labels.data, lback.data);
}

INSTANTIATE_TEST_SUITE_P(Formats, ImageIoRoundTrip,
                         ::testing::Values(".nii.gz", ".nii", ".nrrd", ".mha"));

TEST(ImageIo, RecognisesExtensions) {
  EXPECT_TRUE(is_image_file("a/b.nii.gz"));
  EXPECT_TRUE(is_image_file("B.NRRD"));
  EXPECT_TRUE(is_image_file("x.mhd"));
  EXPECT_FALSE(is_image_file("IM0001"));
  EXPECT_FALSE(is_image_file("x.dcm"));
}

TEST(ImageIo, MissingFileIsInputError) {
  try {
    read_ct_image("/nonexistent/ct.nii.gz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ct.nii.gz"), std::string::npos);
  }
}

TEST(ImageIo, LabelValuesOutOfRangeAreRefused) {
  const std::string dir = test::temp_dir("image_io_bad");
  CtImage ct = make_ct();  // values far outside 0..255
  write_ct_image(ct, dir + "/x.nrrd");
  EXPECT_THROW(read_label_image(dir + "/x.nrrd"), Error);
}

// SOURCE.md: ct-64.nrrd is 64x64x79, 4.1719 x 4.1719 x 3.9873 mm, origin (-128.41, -264.41,
// -360.26), HU -1007..1095.
TEST(ImageIoData, CipNrrdHeaderAndRange) {
  LUNGVOL_REQUIRE_DATA("cip-chest-imaging-platform/ct-64.nrrd");
  const CtImage ct = read_ct_image(test::shared_data("cip-chest-imaging-platform/ct-64.nrrd"));
  EXPECT_EQ(ct.geom.size[0], 64u);
  EXPECT_EQ(ct.geom.size[1], 64u);
  EXPECT_EQ(ct.geom.size[2], 79u);
  EXPECT_NEAR(ct.geom.spacing[0], 4.1719, 1e-3);
  EXPECT_NEAR(ct.geom.spacing[2], 3.9873, 1e-3);
  EXPECT_NEAR(ct.geom.origin[0], -128.41, 0.01);
  EXPECT_NEAR(ct.geom.origin[1], -264.41, 0.01);
  EXPECT_NEAR(ct.geom.origin[2], -360.26, 0.01);
  const auto [lo, hi] = std::minmax_element(ct.data.begin(), ct.data.end());
  EXPECT_EQ(*lo, -1007);
  EXPECT_EQ(*hi, 1095);
}

}  // namespace
}  // namespace lungvol::io
