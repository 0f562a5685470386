// Off-screen renders need an X server with Debian's VTK (GLX only): scripts/test.sh runs
// ctest under `xvfb-run -a`. Without a display these tests are skipped, and the skip path
// itself is tested (the probe must report, not abort).
#include "mesh/render.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/labels.hpp"
#include "mesh/outputs.hpp"
#include "report/png.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::mesh {
namespace {

LabelImage ball_labels(const Geometry& g, std::array<double, 3> c, double r, std::uint8_t v,
                       LabelImage img) {
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const double x = double(i) - c[0], y = double(j) - c[1], z = double(k) - c[2];
        if (x * x + y * y + z * z <= r * r) img.at(i, j, k) = v;
      }
  return img;
}

bool is_yellow(const std::uint8_t* p) { return p[0] > 120 && p[1] > 120 && p[2] < 0.45 * p[0]; }
bool is_red(const std::uint8_t* p) { return p[0] > 120 && p[1] < 0.35 * p[0] && p[2] < 0.35 * p[0]; }

struct Counts {
  std::size_t non_background = 0, yellow = 0, red = 0;
  double yellow_x = 0, yellow_y = 0, red_x = 0, red_y = 0;  // centroids, pixels
};
Counts count(const report::Raster& img, report::Rgb bg) {
  Counts c;
  for (std::size_t y = 0; y < img.height; ++y)
    for (std::size_t x = 0; x < img.width; ++x) {
      const std::uint8_t* p = img.at(x, y);
      if (p[0] != bg.r || p[1] != bg.g || p[2] != bg.b) ++c.non_background;
      if (is_yellow(p)) ++c.yellow, c.yellow_x += x, c.yellow_y += y;
      if (is_red(p)) ++c.red, c.red_x += x, c.red_y += y;
    }
  if (c.yellow) c.yellow_x /= c.yellow, c.yellow_y /= c.yellow;
  if (c.red) c.red_x /= c.red, c.red_y /= c.red;
  return c;
}

TEST(Render, AvailabilityProbeReportsInsteadOfAborting) {
  const RenderAvailability av = render_availability();
  if (!av.available) {
    EXPECT_FALSE(av.reason.empty());
    const char* d = std::getenv("DISPLAY");
    std::printf("render unavailable (DISPLAY=%s): %s\n", d ? d : "", av.reason.c_str());
  }
}

TEST(Render, AnteriorViewShowsLesionColoursOnTheRightSides) {
  if (!render_availability().available) GTEST_SKIP() << render_availability().reason;
  // LPS identity, 1 mm voxels: a translucent "lung" ball, a ground-glass ball on the patient's
  // right (-X) and high (+Z), a solid ball on the patient's left (+X) and low (-Z).
  Geometry g;
  g.size = {60, 60, 60};
  LabelImage lungs = ball_labels(g, {30, 30, 30}, 26, labels::kRightLung, LabelImage(g, 0));
  LabelImage lesions = ball_labels(g, {18, 30, 40}, 7, labels::kGroundGlass, LabelImage(g, 0));
  lesions = ball_labels(g, {42, 30, 20}, 6, labels::kSolid, std::move(lesions));
  const TriangleMesh lung = extract_surface(lungs, labels::kRightLung);
  const TriangleMesh ggo = extract_surface(lesions, labels::kGroundGlass);
  const TriangleMesh solid = extract_surface(lesions, labels::kSolid);
  RenderOptions o;
  o.width = 300;
  o.height = 240;
  const report::Raster img = render_meshes({{&lung, report::kRightLungColour, 0.2},
                                            {&ggo, report::kGroundGlassColour, 1.0},
                                            {&solid, report::kSolidColour, 1.0}},
                                           o);
  ASSERT_EQ(img.width, 300u);
  ASSERT_EQ(img.height, 240u);
  ASSERT_EQ(img.channels, 3);
  const Counts c = count(img, o.background);
  EXPECT_GT(c.non_background, img.width * img.height / 4);  // the lung ball fills the view
  EXPECT_GT(c.yellow, 200u);
  EXPECT_GT(c.red, 150u);
  // Patient's right on the picture's left, head up.
  EXPECT_LT(c.yellow_x, img.width / 2.0);
  EXPECT_GT(c.red_x, img.width / 2.0);
  EXPECT_LT(c.yellow_y, img.height / 2.0);
  EXPECT_GT(c.red_y, img.height / 2.0);
}

TEST(Render, MeshOutputsWriteFilesAndTheRenderOrSayWhyNot) {
  Geometry g;
  g.size = {40, 30, 30};
  g.spacing = {1.5, 1.5, 2.0};
  LabelImage lungs = ball_labels(g, {11, 15, 15}, 9, labels::kRightLung, LabelImage(g, 0));
  lungs = ball_labels(g, {29, 15, 15}, 9, labels::kLeftLung, std::move(lungs));
  const LabelImage lesions = ball_labels(g, {11, 15, 15}, 3, labels::kGroundGlass, LabelImage(g, 0));
  const std::string dir = test::temp_dir("mesh_outputs");
  const MeshOutputs out = write_mesh_outputs(lungs, lesions, dir);
  ASSERT_EQ(out.surfaces.size(), 4u);
  EXPECT_EQ(out.surfaces[0].name, "right_lung");
  EXPECT_EQ(out.surfaces[3].name, "solid");
  EXPECT_TRUE(out.surfaces[3].vtp.empty());  // no solid voxel: no file
  for (int n = 0; n < 3; ++n) {
    EXPECT_TRUE(std::filesystem::is_regular_file(dir + "/" + out.surfaces[n].vtp));
    EXPECT_TRUE(std::filesystem::is_regular_file(dir + "/" + out.surfaces[n].stl));
  }
  // 9-voxel ball radius = 13.5 mm along i, j and 18 mm along k: an ellipsoid.
  const double lung_ml = 4.0 / 3.0 * 3.14159265358979 * 13.5 * 13.5 * 18.0 / 1000.0;
  EXPECT_NEAR(out.surfaces[0].volume_ml / lung_ml, 1.0, 0.05);
  const auto j = mesh_outputs_json(out);
  EXPECT_EQ(j["coordinate_system"], "LPS");
  EXPECT_TRUE(j["surfaces"]["solid"]["vtp"].is_null());
  if (render_availability().available) {
    ASSERT_TRUE(out.rendered);
    const report::Raster png = report::read_png(dir + "/qc_3d.png");
    EXPECT_EQ(png.width, 640u);
    EXPECT_GT(count(png, RenderOptions{}.background).yellow, 50u);
    EXPECT_EQ(j["render"]["file"], "qc_3d.png");
  } else {
    EXPECT_FALSE(out.rendered);
    EXPECT_FALSE(std::filesystem::exists(dir + "/qc_3d.png"));
    EXPECT_EQ(j["render"]["skipped"], render_availability().reason);
  }
}

}  // namespace
}  // namespace lungvol::mesh
