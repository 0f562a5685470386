// The bright-tube measure (segmentation/vesselness.hpp) on analytic shapes: tubes score about a
// third of their contrast at the fitting scale (sigma = r / sqrt(2): A * U * exp(-U), U = 1),
// plates and blobs score little.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>

#include "segmentation/vesselness.hpp"

namespace lungvol::seg {
namespace {

constexpr double kLung = -850, kTissue = 40;

Geometry grid(std::array<std::size_t, 3> size, std::array<double, 3> spacing) {
  Geometry g;
  g.size = size;
  g.spacing = spacing;
  return g;
}

// Image of `g` with value kTissue where inside(x, y, z) (mm from the grid centre), kLung
// elsewhere; each voxel is supersampled 3 x 3 x 3 (partial volume).
CtImage paint(const Geometry& g, const std::function<bool(double, double, double)>& inside) {
  CtImage ct(g, std::int16_t(kLung));
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        int in = 0;
        for (int a = -1; a <= 1; ++a)
          for (int b = -1; b <= 1; ++b)
            for (int c = -1; c <= 1; ++c) {
              const double x = (double(i) + a / 3.0 - 0.5 * double(g.size[0] - 1)) * g.spacing[0];
              const double y = (double(j) + b / 3.0 - 0.5 * double(g.size[1] - 1)) * g.spacing[1];
              const double z = (double(k) + c / 3.0 - 0.5 * double(g.size[2] - 1)) * g.spacing[2];
              in += inside(x, y, z);
            }
        ct.at(i, j, k) = std::int16_t(std::lround(kLung + (kTissue - kLung) * in / 27.0));
      }
  return ct;
}

float strength_at_centre(const CtImage& ct, const std::vector<double>& scales,
                         double pyramid = 2.0) {
  Box box;
  box.hi = ct.geom.size;
  MaskImage active(ct.geom, 1);
  TubeOptions o;
  o.scales_mm = scales;
  o.pyramid_sigma_voxels = pyramid;
  const TubeStrength t = bright_tube_strength(ct, box, active, o);
  const auto& s = ct.geom.size;
  return t.strength.at(s[0] / 2, s[1] / 2, s[2] / 2);
}

TEST(Vesselness, EigenvaluesOfAKnownMatrix) {
  // diag(-3, 1, 2) rotated about z by 30 degrees.
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  const double xx = -3 * c * c + 1 * s * s, yy = -3 * s * s + 1 * c * c, xy = (-3 - 1) * c * s;
  const auto e = symmetric_eigenvalues({xx, yy, 2.0, xy, 0.0, 0.0});
  EXPECT_NEAR(e[0], 1, 1e-9);
  EXPECT_NEAR(e[1], 2, 1e-9);
  EXPECT_NEAR(e[2], -3, 1e-9);
}

TEST(Vesselness, TubeScoresAThirdOfItsContrast) {
  const double contrast = kTissue - kLung;
  for (const double r : {1.5, 2.5}) {
    const Geometry g = grid({41, 41, 21}, {0.5, 0.5, 1.0});
    const CtImage ct = paint(g, [&](double x, double y, double) { return x * x + y * y <= r * r; });
    const double best_sigma = r / std::sqrt(2.0);
    const float s = strength_at_centre(ct, {best_sigma}, 0);
    std::printf("tube r %.1f mm: strength %.1f HU at sigma %.2f mm (contrast %.0f HU)\n", r, s,
                best_sigma, contrast);
    for (const double pyr : {1.0, 1.5, 2.0})
      std::printf("   pyramid %.1f: %.1f\n", pyr, strength_at_centre(ct, {best_sigma}, pyr));
    EXPECT_NEAR(s, contrast / std::exp(1.0), 0.08 * contrast / std::exp(1.0));
  }
}


// What the lesion stage keeps: a plate (a subpleural band of any thickness) and a blob (a
// nodule, a patch) score far below a tube of the same contrast, at every scale.
TEST(Vesselness, PlatesAndBlobsScoreFarBelowATube) {
  const Geometry g = grid({41, 41, 41}, {0.7, 0.7, 1.0});
  const std::vector<double> scales{1.0, 1.5, 2.0, 3.0};
  const CtImage tube = paint(g, [](double x, double y, double) { return x * x + y * y <= 2.0 * 2.0; });
  const float t = strength_at_centre(tube, scales);
  for (const double half : {1.5, 2.5, 4.0}) {  // plates 3, 5 and 8 mm thick
    const CtImage plate = paint(g, [&](double, double, double z) { return std::abs(z) <= half; });
    const float s = strength_at_centre(plate, scales);
    std::printf("plate %.0f mm: %.1f HU (tube r 2 mm: %.1f HU)\n", 2 * half, s, t);
    EXPECT_LT(s, 0.1 * t) << 2 * half << " mm plate";
  }
  for (const double r : {2.0, 3.0, 5.0}) {
    const CtImage blob = paint(g, [&](double x, double y, double z) { return x * x + y * y + z * z <= r * r; });
    const float s = strength_at_centre(blob, scales);
    std::printf("blob r %.0f mm: %.1f HU\n", r, s);
    EXPECT_LT(s, 0.3 * t) << "blob r " << r;
  }
}

}  // namespace
}  // namespace lungvol::seg
