#include "report/qc_images.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "tests/support/test_paths.hpp"
#include "tests/unit/report/libpng_helpers.hpp"

namespace lungvol::report {
namespace {

// A 100 x 100 x 25 phantom, 1 x 1 x 4 mm (LPS identity):
//   right lung (label 1) i 10..44, left lung (label 2) i 56..90, both j 20..80, k 2..22,
//     so the lung centroid is exactly (50, 50, 12); airway (label 3) i 48..51, j 30..33,
//     k 15..24, excluded from the centroid;
//   ground glass i 20..29, j 40..49, k 5..7 plus j 50..59 on k = 6 only (k = 6 has 200 lesion
//     voxels, the most); solid i 65..69, j 40..44, k 14..15 (25 per slice).
// CT: 40 HU body, -850 HU lung, -450 HU in a box around the ground glass.
constexpr std::int16_t kBodyHu = 40, kLungHu = -850, kGgoHu = -450;

struct Phantom {
  CtImage ct;
  LabelImage lungs, lesions;
};

template <class T, class F>
void fill_box(Image<T>& img, std::array<std::size_t, 3> lo, std::array<std::size_t, 3> hi, T value,
              F&& keep) {
  for (std::size_t k = lo[2]; k < hi[2]; ++k)
    for (std::size_t j = lo[1]; j < hi[1]; ++j)
      for (std::size_t i = lo[0]; i < hi[0]; ++i)
        if (keep(i, j, k)) img.at(i, j, k) = value;
}
template <class T>
void fill_box(Image<T>& img, std::array<std::size_t, 3> lo, std::array<std::size_t, 3> hi,
              T value) {
  fill_box(img, lo, hi, value, [](std::size_t, std::size_t, std::size_t) { return true; });
}

Phantom make_phantom() {
  Geometry g;
  g.size = {100, 100, 25};
  g.spacing = {1.0, 1.0, 4.0};
  Phantom p{CtImage(g, kBodyHu), LabelImage(g, 0), LabelImage(g, 0)};
  fill_box(p.lungs, {10, 20, 2}, {45, 81, 23}, labels::kRightLung);
  fill_box(p.lungs, {56, 20, 2}, {91, 81, 23}, labels::kLeftLung);
  fill_box(p.lungs, {48, 30, 15}, {52, 34, 25}, labels::kAirway);
  fill_box(p.ct, {10, 20, 2}, {45, 81, 23}, kLungHu);
  fill_box(p.ct, {56, 20, 2}, {91, 81, 23}, kLungHu);
  fill_box(p.ct, {18, 38, 4}, {32, 62, 9}, kGgoHu);
  fill_box(p.lesions, {20, 40, 5}, {30, 50, 8}, labels::kGroundGlass);
  fill_box(p.lesions, {20, 50, 6}, {30, 60, 7}, labels::kGroundGlass);
  fill_box(p.lesions, {65, 40, 14}, {70, 45, 16}, labels::kSolid);
  return p;
}

// Lung window W 1500 / L -600 maps [-1350, 150] HU onto [0, 255].
int grey(double hu) { return static_cast<int>(std::lround((hu + 1350.0) * 255.0 / 1500.0)); }
int blended(int g, int colour, double a) {
  return static_cast<int>(std::lround((1.0 - a) * g + a * colour));
}

void expect_rgb(const Raster& r, std::size_t x, std::size_t y, int red, int green, int blue) {
  const std::uint8_t* px = r.at(x, y);
  EXPECT_EQ(px[0], red) << "at " << x << "," << y;
  EXPECT_EQ(px[1], green) << "at " << x << "," << y;
  EXPECT_EQ(px[2], blue) << "at " << x << "," << y;
}
void expect_rgb(const Raster& r, std::size_t x, std::size_t y, Rgb c) {
  expect_rgb(r, x, y, c.r, c.g, c.b);
}

TEST(QcImages, PlanFindsLungCentroidAndMaxLesionSlice) {
  const Phantom p = make_phantom();
  const QcPlan plan = plan_qc(p.lungs, p.lesions);
  EXPECT_EQ(plan.centre, (std::array<std::size_t, 3>{50, 50, 12}));
  ASSERT_TRUE(plan.max_lesion_slice.has_value());
  EXPECT_EQ(*plan.max_lesion_slice, 6u);
  EXPECT_EQ(plan.max_lesion_voxels, 200u);
  EXPECT_FALSE(plan_qc(p.lungs, LabelImage{}).max_lesion_slice.has_value());
}

TEST(QcImages, WritesEveryViewWithPhysicalAspect) {
  const Phantom p = make_phantom();
  const std::string dir = test::temp_dir("qc") + "/qc";  // created by the writer
  const auto files = write_qc_images(p.ct, p.lungs, p.lesions, dir);
  ASSERT_EQ(files.size(), 6u);
  const char* names[] = {"qc_axial.png", "qc_coronal.png", "qc_sagittal_right.png",
                         "qc_sagittal_left.png", "qc_axial_max_lesion.png"};
  for (std::size_t n = 0; n < 5; ++n) {
    EXPECT_EQ(std::filesystem::path(files[n]).filename(), names[n]);
    ASSERT_TRUE(std::filesystem::exists(files[n]));
    const Raster r = test::libpng_read(files[n]);
    // 100 mm x 100 mm in every plane (25 slices x 4 mm): square, 1 mm pixels.
    EXPECT_EQ(r.width, 100u) << names[n];
    EXPECT_EQ(r.height, 100u) << names[n];
    EXPECT_EQ(r.channels, 3);
  }
}

TEST(QcImages, AxialShowsContoursLesionsAndRadiologicalOrientation) {
  const Phantom p = make_phantom();
  const std::string dir = test::temp_dir("qc_axial");
  write_qc_images(p.ct, p.lungs, p.lesions, dir);
  const Raster axial = test::libpng_read(dir + "/qc_axial.png");  // k = 12
  // Right lung (low i) on the image left, its boundary in the right-lung colour.
  expect_rgb(axial, 10, 50, kRightLungColour);
  expect_rgb(axial, 44, 50, kRightLungColour);
  expect_rgb(axial, 27, 20, kRightLungColour);
  expect_rgb(axial, 56, 50, kLeftLungColour);
  const int lung = grey(kLungHu), body = grey(kBodyHu);
  expect_rgb(axial, 27, 50, lung, lung, lung);  // interior: CT only
  expect_rgb(axial, 9, 50, body, body, body);   // outside: no contour
  expect_rgb(axial, 27, 19, body, body, body);

  const Raster max_lesion = test::libpng_read(dir + "/qc_axial_max_lesion.png");  // k = 6
  const double a = QcOptions{}.lesion_opacity;
  const int g = grey(kGgoHu);
  const Rgb y = kGroundGlassColour;
  for (auto [x, yy] : {std::pair<std::size_t, std::size_t>{25, 45}, {25, 55}, {20, 40}}) {
    expect_rgb(max_lesion, x, yy, blended(g, y.r, a), blended(g, y.g, a), blended(g, y.b, a));
  }
  expect_rgb(max_lesion, 25, 60, g, g, g);           // j = 60: past the lesion, -450 HU
  expect_rgb(max_lesion, 25, 62, lung, lung, lung);  // past the -450 HU box
  expect_rgb(max_lesion, 10, 50, kRightLungColour);
}

TEST(QcImages, SolidLesionHasItsOwnColour) {
  const Phantom p = make_phantom();
  const Raster r = render_qc_plane(p.ct, p.lungs, p.lesions, QcPlane::kAxial, 14);
  const double a = QcOptions{}.lesion_opacity;
  const int g = grey(kLungHu);
  const Rgb s = kSolidColour;
  expect_rgb(r, 67, 42, blended(g, s.r, a), blended(g, s.g, a), blended(g, s.b, a));
  expect_rgb(r, 70, 42, g, g, g);
  // The airway (k 15..24) is not in this slice, but is in slice 20.
  const Raster up = render_qc_plane(p.ct, p.lungs, p.lesions, QcPlane::kAxial, 20);
  expect_rgb(up, 48, 31, kAirwayColour);
  expect_rgb(r, 48, 31, grey(kBodyHu), grey(kBodyHu), grey(kBodyHu));
}

TEST(QcImages, CoronalAndSagittalAreHeadUp) {
  const Phantom p = make_phantom();
  const std::string dir = test::temp_dir("qc_cor");
  write_qc_images(p.ct, p.lungs, p.lesions, dir);
  // Coronal at j = 50: 4 output rows per 4 mm slice, slice k on rows 4*(24-k) .. +3.
  const Raster cor = test::libpng_read(dir + "/qc_coronal.png");
  expect_rgb(cor, 27, 8, kRightLungColour);   // top of the right lung, k = 22
  expect_rgb(cor, 27, 91, kRightLungColour);  // bottom, k = 2
  // Rows 6..7 blend k = 23 and 22 (linear CT); row 5 is k = 23..24, body only.
  expect_rgb(cor, 27, 5, grey(kBodyHu), grey(kBodyHu), grey(kBodyHu));
  expect_rgb(cor, 60, 91, kLeftLungColour);
  // Ground glass at j = 50 exists only on k = 6: rows 72..75 (the CT there is -450 HU on
  // k = 4..8, so the interpolated CT is exact).
  const double a = QcOptions{}.lesion_opacity;
  const int g = grey(kGgoHu);
  const Rgb y = kGroundGlassColour;
  for (std::size_t row : {72u, 75u}) {
    expect_rgb(cor, 25, row, blended(g, y.r, a), blended(g, y.g, a), blended(g, y.b, a));
  }
  expect_rgb(cor, 25, 71, g, g, g);
  expect_rgb(cor, 25, 76, g, g, g);

  // A midline sagittal (i = 50) would cut only the airway; the sagittal views go through each
  // lung's own centroid (i = 27 right, i = 73 left): the lung from j = 20 (anterior, image
  // left) to 80, k 2..22 (rows 4 * (24 - k)), and no airway.
  for (const auto& [file, colour] : {std::pair<const char*, Rgb>{"qc_sagittal_right.png", kRightLungColour},
                                     {"qc_sagittal_left.png", kLeftLungColour}}) {
    const Raster sag = test::libpng_read(dir + "/" + file);
    expect_rgb(sag, 20, 50, colour);  // anterior edge
    expect_rgb(sag, 80, 50, colour);  // posterior edge
    expect_rgb(sag, 50, 91, colour);  // base, k = 2
    expect_rgb(sag, 50, 50, grey(kLungHu), grey(kLungHu), grey(kLungHu));  // interior
    std::size_t airway = 0;
    for (std::size_t y = 0; y < sag.height; ++y) {
      for (std::size_t x = 0; x < sag.width; ++x) {
        const std::uint8_t* px = sag.at(x, y);
        airway += px[0] == kAirwayColour.r && px[1] == kAirwayColour.g && px[2] == kAirwayColour.b;
      }
    }
    EXPECT_EQ(airway, 0u) << file;
  }
  const QcPlan plan = plan_qc(p.lungs, p.lesions);
  ASSERT_TRUE(plan.centre_right && plan.centre_left);
  EXPECT_EQ(*plan.centre_right, (std::array<std::size_t, 3>{27, 50, 12}));
  EXPECT_EQ(*plan.centre_left, (std::array<std::size_t, 3>{73, 50, 12}));
}

TEST(QcImages, LesionLevelsRowShowsEveryLesionBearingLevel) {
  const Phantom p = make_phantom();
  const QcPlan plan = plan_qc(p.lungs, p.lesions);
  // Ground glass on k 5..7, solid on k 14..15.
  EXPECT_EQ(plan.lesion_slices, (std::vector<std::size_t>{5, 6, 7, 14, 15}));
  EXPECT_EQ(spread_levels(plan.lesion_slices, 5), plan.lesion_slices);
  EXPECT_EQ(spread_levels(plan.lesion_slices, 3), (std::vector<std::size_t>{5, 7, 15}));
  EXPECT_EQ(spread_levels(plan.lesion_slices, 2), (std::vector<std::size_t>{5, 15}));
  const std::string dir = test::temp_dir("qc_levels");
  write_qc_images(p.ct, p.lungs, p.lesions, dir);
  const Raster row = test::libpng_read(dir + "/qc_axial_lesion_levels.png");
  EXPECT_EQ(row.width, 5u * 100u + 4u * 4u);  // five 100 px tiles, 4 px gaps
  EXPECT_EQ(row.height, 100u);
  // Tile 2 (k = 6) shows the ground glass at (25, 55); tile 4 (k = 14) the solid lesion.
  const double a = QcOptions{}.lesion_opacity;
  const int g = grey(kGgoHu), l = grey(kLungHu);
  const Rgb y = kGroundGlassColour, r = kSolidColour;
  expect_rgb(row, 104 + 25, 55, blended(g, y.r, a), blended(g, y.g, a), blended(g, y.b, a));
  expect_rgb(row, 3 * 104 + 67, 42, blended(l, r.r, a), blended(l, r.g, a), blended(l, r.b, a));
  expect_rgb(row, 101, 50, 40, 40, 40);  // the gap
}

TEST(QcImages, SmallMatricesAreEnlarged) {
  Geometry g;
  g.size = {64, 64, 79};
  g.spacing = {4.1719, 4.1719, 3.9873};  // CIP's 64-pixel chest: 267 x 267 x 315 mm
  EXPECT_EQ(qc_image_size(g, QcPlane::kAxial, 512), (std::array<std::size_t, 2>{64, 64}));
  EXPECT_EQ(qc_image_size(g, QcPlane::kAxial, 512, 384), (std::array<std::size_t, 2>{384, 384}));
  EXPECT_EQ(qc_image_size(g, QcPlane::kCoronal, 512, 384), (std::array<std::size_t, 2>{325, 384}));  // 267.0 mm at 315.0 / 384 mm
  // A large matrix is left alone.
  g.size = {512, 512, 300};
  g.spacing = {0.7, 0.7, 1.0};
  EXPECT_EQ(qc_image_size(g, QcPlane::kAxial, 512, 384), (std::array<std::size_t, 2>{512, 512}));
}

TEST(QcImages, NoLesionMeansNoMaxLesionImage) {
  Phantom p = make_phantom();
  const std::string dir = test::temp_dir("qc_none");
  p.lesions = LabelImage(p.lungs.geom, 0);
  EXPECT_EQ(write_qc_images(p.ct, p.lungs, p.lesions, dir).size(), 4u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/qc_axial_max_lesion.png"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/qc_axial_lesion_levels.png"));
  EXPECT_EQ(write_qc_images(p.ct, p.lungs, LabelImage{}, dir).size(), 4u);
}

TEST(QcImages, MismatchedGridsAreRefused) {
  Phantom p = make_phantom();
  Geometry other = p.lungs.geom;
  other.size[2] = 24;
  EXPECT_THROW(write_qc_images(p.ct, LabelImage(other, 0), p.lesions, test::temp_dir("qc_bad")),
               Error);
  EXPECT_THROW(render_qc_plane(p.ct, p.lungs, p.lesions, QcPlane::kAxial, 25), Error);
}

TEST(QcImages, SizesKeepPhysicalAspectOnAnyGrid) {
  Geometry g;
  g.size = {64, 48, 10};
  g.spacing = {0.5, 0.75, 3.0};  // 32 x 36 x 30 mm
  EXPECT_EQ(qc_image_size(g, QcPlane::kAxial, 512), (std::array<std::size_t, 2>{64, 72}));
  EXPECT_EQ(qc_image_size(g, QcPlane::kCoronal, 512), (std::array<std::size_t, 2>{64, 60}));
  EXPECT_EQ(qc_image_size(g, QcPlane::kSagittal, 512), (std::array<std::size_t, 2>{48, 40}));
  // A full chest: 358.4 x 358.4 x 600 mm; the 600 mm side is held to 512 px.
  g.size = {512, 512, 600};
  g.spacing = {0.7, 0.7, 1.0};
  EXPECT_EQ(qc_image_size(g, QcPlane::kAxial, 512), (std::array<std::size_t, 2>{512, 512}));
  EXPECT_EQ(qc_image_size(g, QcPlane::kCoronal, 512), (std::array<std::size_t, 2>{306, 512}));
  EXPECT_EQ(qc_image_size(g, QcPlane::kSagittal, 0), (std::array<std::size_t, 2>{512, 857}));
}

TEST(QcImages, TinyAnisotropicGridRendersEveryPlane) {
  Geometry g;
  g.size = {64, 64, 79};
  g.spacing = {5.0, 5.0, 2.5};  // 320 x 320 x 197.5 mm
  const CtImage ct(g, -900);
  LabelImage lungs(g, 0);
  fill_box(lungs, {5, 5, 5}, {30, 60, 70}, labels::kRightLung);
  const auto cor = render_qc_plane(ct, lungs, LabelImage{}, QcPlane::kCoronal, 32);
  EXPECT_EQ(cor.width, 128u);  // 320 mm at 2.5 mm
  EXPECT_EQ(cor.height, 79u);  // 197.5 mm at 2.5 mm (lround)
  // i = 5 spans columns 10, 11; k = 69 (the top lung slice) is row 78 - 69 = 9.
  expect_rgb(cor, 10, 40, kRightLungColour);
  expect_rgb(cor, 20, 9, kRightLungColour);
  expect_rgb(cor, 20, 8, grey(-900), grey(-900), grey(-900));
}

TEST(QcImages, OrientationFollowsTheDirectionMatrix) {
  Geometry g;
  g.size = {10, 20, 30};
  // k runs head to foot (-S): coronal and sagittal must not flip k.
  g.direction = {1, 0, 0, 0, 1, 0, 0, 0, -1};
  PlaneAxes cor = plane_axes(g, QcPlane::kCoronal);
  EXPECT_EQ(cor.across, 0);
  EXPECT_EQ(cor.down, 2);
  EXPECT_EQ(cor.normal, 1);
  EXPECT_FALSE(cor.flip_down);
  EXPECT_TRUE(plane_axes(Geometry{}, QcPlane::kCoronal).flip_down);
  // A coronal acquisition: i along L, j along -S, k along P.
  g.direction = {1, 0, 0, 0, 0, 1, 0, -1, 0};
  const PlaneAxes ax = plane_axes(g, QcPlane::kAxial);
  EXPECT_EQ(ax.normal, 1);
  EXPECT_EQ(ax.across, 0);
  EXPECT_EQ(ax.down, 2);
  EXPECT_FALSE(ax.flip_down);
  const PlaneAxes sag = plane_axes(g, QcPlane::kSagittal);
  EXPECT_EQ(sag.across, 2);
  EXPECT_EQ(sag.down, 1);
  EXPECT_FALSE(sag.flip_down);  // j already runs toward the feet
}

}  // namespace
}  // namespace lungvol::report
