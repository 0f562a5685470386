#include "mesh/surface.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <utility>

#include "core/labels.hpp"
#include "core/fs.hpp"
#include "phantom/phantom.hpp"
#include "tests/support/test_paths.hpp"

namespace lungvol::mesh {
namespace {

constexpr double kPi = 3.14159265358979323846;

// An oblique, right-handed direction (rotations of 30° about z, then 20° about x) and one
// that reflects (i and j swapped), both orthonormal.
std::array<double, 9> oblique_direction() {
  const double a = 30 * kPi / 180, b = 20 * kPi / 180;
  const double rz[9] = {std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0, 0, 0, 1};
  const double rx[9] = {1, 0, 0, 0, std::cos(b), -std::sin(b), 0, std::sin(b), std::cos(b)};
  std::array<double, 9> d{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      for (int n = 0; n < 3; ++n) d[r * 3 + c] += rx[r * 3 + n] * rz[n * 3 + c];
  return d;
}
constexpr std::array<double, 9> kReflecting{0, 1, 0, 1, 0, 0, 0, 0, 1};

std::array<double, 3> to_lps(const Geometry& g, std::array<double, 3> mm_along_axes) {
  std::array<double, 3> p{};
  for (int r = 0; r < 3; ++r) {
    p[r] = g.origin[r];
    for (int c = 0; c < 3; ++c) p[r] += g.direction[r * 3 + c] * mm_along_axes[c];
  }
  return p;
}

// A ball of radius r (mm) centred at `centre` (mm along the index axes from voxel 0),
// evaluated at voxel centres.
LabelImage ball(const Geometry& g, std::array<double, 3> centre, double r, std::uint8_t value) {
  LabelImage img(g, 0);
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const double x = i * g.spacing[0] - centre[0], y = j * g.spacing[1] - centre[1],
                     z = k * g.spacing[2] - centre[2];
        if (x * x + y * y + z * z <= r * r) img.at(i, j, k) = value;
      }
  return img;
}

// Closed and consistently wound: every directed edge appears once and its reverse once.
bool closed_and_oriented(const TriangleMesh& m) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> directed;
  for (const auto& t : m.triangles) {
    for (int e = 0; e < 3; ++e) ++directed[{t[e], t[(e + 1) % 3]}];
  }
  for (const auto& [edge, n] : directed) {
    if (n != 1) return false;
    const auto it = directed.find({edge.second, edge.first});
    if (it == directed.end() || it->second != 1) return false;
  }
  return true;
}

Geometry sphere_grid(const std::array<double, 9>& direction) {
  Geometry g;
  g.size = {64, 56, 36};
  g.spacing = {0.7, 0.8, 1.25};
  g.origin = {-120.5, 40.25, -310.0};
  g.direction = direction;
  return g;
}

struct Accuracy {
  double area_err, volume_err;
};

Accuracy sphere_accuracy(const Geometry& g, double r, const SurfaceOptions& o = {}) {
  const std::array<double, 3> c{22.3, 21.9, 21.7};
  const TriangleMesh m = extract_surface(ball(g, c, r, 1), 1, o);
  EXPECT_TRUE(closed_and_oriented(m));
  return {surface_area_mm2(m) / (4 * kPi * r * r) - 1,
          enclosed_volume_mm3(m) / (4.0 / 3.0 * kPi * r * r * r) - 1};
}

TEST(Surface, SphereAreaAndVolumeMatchAnalyticValues) {
  // r = 18 mm on 0.7 x 0.8 x 1.25 mm voxels: a lung-lesion-sized ball on a CT-like grid.
  const Accuracy a = sphere_accuracy(sphere_grid(oblique_direction()), 18.0);
  std::printf("sphere r=18 mm: area error %+.2f%%, volume error %+.2f%%\n", 100 * a.area_err,
              100 * a.volume_err);
  EXPECT_LT(std::abs(a.area_err), 0.03);
  EXPECT_LT(std::abs(a.volume_err), 0.03);
}

TEST(Surface, SmallSphereStaysWithinFivePercent) {
  // r = 5 mm: four to seven voxels across, the size of a small lesion.
  const Accuracy a = sphere_accuracy(sphere_grid(oblique_direction()), 5.0);
  std::printf("sphere r=5 mm: area error %+.2f%%, volume error %+.2f%%\n", 100 * a.area_err,
              100 * a.volume_err);
  EXPECT_LT(std::abs(a.area_err), 0.05);
  EXPECT_LT(std::abs(a.volume_err), 0.05);
}

TEST(Surface, UnsmoothedStaircaseOverestimatesArea) {
  // Why the smoothing is there: the raw voxel surface of a ball is much larger than 4πr².
  SurfaceOptions raw;
  raw.smoothing_iterations = 0;
  raw.decimation = 0;
  const Accuracy a = sphere_accuracy(sphere_grid(oblique_direction()), 18.0, raw);
  std::printf("sphere r=18 mm, no smoothing: area error %+.2f%%\n", 100 * a.area_err);
  EXPECT_GT(a.area_err, 0.05);
}

TEST(Surface, SphereCentreAndExtentAreInPatientCoordinates) {
  for (const auto& dir : {oblique_direction(), kReflecting}) {
    const Geometry g = sphere_grid(dir);
    const std::array<double, 3> c{22.3, 21.9, 21.7};
    const double r = 15.0;
    const TriangleMesh m = extract_surface(ball(g, c, r, 2), 2);
    ASSERT_FALSE(m.empty());
    const auto b = mesh_bounds(m);
    const auto centre = to_lps(g, c);
    for (int a = 0; a < 3; ++a) {
      // A ball's extent along any axis is its centre ± r, whatever the rotation; the voxel
      // sampling and smoothing leave it within about half a voxel.
      EXPECT_NEAR(b[2 * a], centre[a] - r, 0.7) << "axis " << a;
      EXPECT_NEAR(b[2 * a + 1], centre[a] + r, 0.7) << "axis " << a;
    }
    // Outward winding even when the direction matrix reflects.
    EXPECT_GT(enclosed_volume_mm3(m), 0);
    EXPECT_TRUE(closed_and_oriented(m));
  }
}

TEST(Surface, UnsmoothedBoxBoundsAreTheVoxelFacesInLps) {
  // Voxels i 3..12, j 5..9, k 2..4 of a grid whose i axis points to -Y (anterior), j to +X
  // and k to -Z (a reflection): the raw surface lies half a voxel outside the voxel centres.
  Geometry g;
  g.size = {16, 12, 8};
  g.spacing = {0.5, 2.0, 3.0};
  g.origin = {10, 20, 30};
  g.direction = {0, 1, 0, -1, 0, 0, 0, 0, -1};
  LabelImage img(g, 0);
  for (std::size_t k = 2; k <= 4; ++k)
    for (std::size_t j = 5; j <= 9; ++j)
      for (std::size_t i = 3; i <= 12; ++i) img.at(i, j, k) = labels::kSolid;
  SurfaceOptions raw;
  raw.smoothing_iterations = 0;
  raw.decimation = 0;
  const TriangleMesh m = extract_surface(img, labels::kSolid, raw);
  const auto b = mesh_bounds(m);
  // x = 10 + j*2: j from 4.5 to 9.5; y = 20 - i*0.5: i from 2.5 to 12.5; z = 30 - k*3.
  EXPECT_NEAR(b[0], 19.0, 1e-4);
  EXPECT_NEAR(b[1], 29.0, 1e-4);
  EXPECT_NEAR(b[2], 13.75, 1e-4);
  EXPECT_NEAR(b[3], 18.75, 1e-4);
  EXPECT_NEAR(b[4], 16.5, 1e-4);
  EXPECT_NEAR(b[5], 25.5, 1e-4);
  EXPECT_TRUE(closed_and_oriented(m));
  // A 5 x 10 x 9 mm box; marching cubes cuts its edges and corners, so a little less.
  EXPECT_GT(enclosed_volume_mm3(m), 0.9 * 450);
  EXPECT_LT(enclosed_volume_mm3(m), 450);
}

TEST(Surface, LabelTouchingTheImageBorderGivesAClosedSurface) {
  Geometry g;
  g.size = {10, 10, 10};
  LabelImage img(g, labels::kRightLung);  // every voxel
  SurfaceOptions raw;
  raw.smoothing_iterations = 0;
  raw.decimation = 0;
  const TriangleMesh m = extract_surface(img, labels::kRightLung, raw);
  EXPECT_TRUE(closed_and_oriented(m));
  const auto b = mesh_bounds(m);
  EXPECT_NEAR(b[0], -0.5, 1e-5);
  EXPECT_NEAR(b[1], 9.5, 1e-5);
  EXPECT_GT(enclosed_volume_mm3(m), 900);
  EXPECT_LT(enclosed_volume_mm3(m), 1000);
}

TEST(Surface, AbsentLabelGivesEmptyMesh) {
  Geometry g;
  g.size = {8, 8, 8};
  const LabelImage img(g, 0);
  const TriangleMesh m = extract_surface(img, labels::kGroundGlass);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(surface_area_mm2(m), 0);
  EXPECT_EQ(enclosed_volume_mm3(m), 0);
}

TEST(Surface, DecimationHalvesTrianglesAndKeepsVolume) {
  const Geometry g = sphere_grid(oblique_direction());
  const LabelImage img = ball(g, {22.3, 21.9, 21.7}, 15.0, 1);
  SurfaceOptions full;
  full.decimation = 0;
  const TriangleMesh a = extract_surface(img, 1, full);
  const TriangleMesh b = extract_surface(img, 1);  // default: decimation 0.5
  EXPECT_NEAR(double(b.triangles.size()) / double(a.triangles.size()), 0.5, 0.05);
  EXPECT_NEAR(enclosed_volume_mm3(b) / enclosed_volume_mm3(a), 1.0, 0.01);
}

TEST(Surface, PhantomLungMeshesEncloseTheLabelVolume) {
  phantom::PhantomOptions po;
  po.size = {96, 96, 40};
  po.spacing = {3.6, 3.6, 8.0};
  po.noise_hu = 0;
  const phantom::Phantom p = phantom::make_phantom(po);
  for (const std::uint8_t lung : {labels::kRightLung, labels::kLeftLung}) {
    std::size_t n = 0;
    for (auto v : p.lungs.data) n += v == lung;
    const double voxel_mm3 = double(n) * p.lungs.geom.voxel_volume_mm3();
    const TriangleMesh m = extract_surface(p.lungs, lung);
    EXPECT_TRUE(closed_and_oriented(m));
    // Coarse 3.6 x 3.6 x 8 mm voxels: the smooth surface and the voxel count agree to 3 %.
    EXPECT_NEAR(enclosed_volume_mm3(m) / voxel_mm3, 1.0, 0.03) << labels::lung_label_name(lung);
    // Right lung on the patient's right (-X in LPS), left lung on the left.
    const auto b = mesh_bounds(m);
    const double cx = 0.5 * (b[0] + b[1]);
    const auto centre = to_lps(p.lungs.geom, {0.5 * po.size[0] * po.spacing[0], 0, 0});
    if (lung == labels::kRightLung) EXPECT_LT(cx, centre[0]);
    else EXPECT_GT(cx, centre[0]);
  }
}

TEST(Surface, WritesBinaryStlAndVtp) {
  const Geometry g = sphere_grid(oblique_direction());
  const TriangleMesh m = extract_surface(ball(g, {22.3, 21.9, 21.7}, 10.0, 1), 1);
  const std::string dir = test::temp_dir("mesh_write");
  write_stl(m, dir + "/ball.stl", "ball");
  write_vtp(m, dir + "/ball.vtp", "ball");
  // Binary STL: 80-byte header, uint32 count, then 50 bytes per triangle.
  const std::string stl = read_text_file(dir + "/ball.stl");
  ASSERT_EQ(stl.size(), 84 + 50 * m.triangles.size());
  EXPECT_NE(stl.substr(0, 80).find("SPACE=LPS"), std::string::npos);
  std::uint32_t count = 0;
  std::memcpy(&count, stl.data() + 80, 4);
  EXPECT_EQ(count, m.triangles.size());
  float v0[3];
  std::memcpy(v0, stl.data() + 84 + 12, 12);  // first vertex of the first triangle
  for (int r = 0; r < 3; ++r) EXPECT_FLOAT_EQ(v0[r], m.points[m.triangles[0][0]][r]);
  const std::string vtp = read_text_file(dir + "/ball.vtp");
  EXPECT_NE(vtp.find("<VTKFile type=\"PolyData\""), std::string::npos);
  EXPECT_NE(vtp.find("NumberOfPoints=\"" + std::to_string(m.points.size()) + "\""),
            std::string::npos);
  EXPECT_NE(vtp.find("NumberOfPolys=\"" + std::to_string(m.triangles.size()) + "\""),
            std::string::npos);
  EXPECT_NE(vtp.find("compressor=\"vtkZLibDataCompressor\""), std::string::npos);
}

}  // namespace
}  // namespace lungvol::mesh
