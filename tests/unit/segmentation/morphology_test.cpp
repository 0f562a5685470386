#include <gtest/gtest.h>

#include <cmath>

#include "segmentation/components.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {
namespace {

Geometry grid(std::size_t n, double sx, double sy, double sz) {
  Geometry g;
  g.size = {n, n, n};
  g.spacing = {sx, sy, sz};
  return g;
}

TEST(Distance, MatchesBruteForceOnAnisotropicGrid) {
  // 37 voxels per side: more than one 16-line block along i, and a partial last block.
  const Geometry g = grid(37, 1.0, 0.5, 2.0);
  MaskImage m(g, 0);
  m.at(2, 3, 4) = 1;
  m.at(7, 1, 0) = 1;
  const auto d = squared_distance_to(m);
  for (std::size_t k = 0; k < 37; ++k) {
    for (std::size_t j = 0; j < 37; ++j) {
      for (std::size_t i = 0; i < 37; ++i) {
        auto sq = [&](double a, double b, double c) {
          return std::pow(a * 1.0, 2) + std::pow(b * 0.5, 2) + std::pow(c * 2.0, 2);
        };
        const double want = std::min(sq(double(i) - 2, double(j) - 3, double(k) - 4),
                                     sq(double(i) - 7, double(j) - 1, double(k) - 0));
        EXPECT_NEAR(d[g.index(i, j, k)], want, 1e-3) << i << "," << j << "," << k;
      }
    }
  }
}

TEST(Morphology, BallDilationHasBallVolume) {
  const Geometry g = grid(61, 0.5, 0.5, 0.5);
  MaskImage m(g, 0);
  m.at(30, 30, 30) = 1;
  const MaskImage d = dilate(m, 10.0);
  const double ml = double(count_nonzero(d)) * g.voxel_volume_mm3();
  const double ball = 4.0 / 3.0 * M_PI * 1000.0;  // r = 10 mm
  EXPECT_NEAR(ml / ball, 1.0, 0.01);
}

TEST(Morphology, ClosingFillsNotchNarrowerThanBall) {
  // A 40 x 40 x 10 mm block with a 6 mm wide slot cut into one side: closing with a 5 mm ball
  // fills the slot; opening with 5 mm leaves the block but removes a 4 mm thin fin.
  Geometry g = grid(60, 1.0, 1.0, 1.0);
  MaskImage m(g, 0);
  for (std::size_t k = 20; k < 30; ++k)
    for (std::size_t j = 10; j < 50; ++j)
      for (std::size_t i = 10; i < 50; ++i) m.at(i, j, k) = !(i >= 27 && i < 33 && j < 25);
  const MaskImage c = close(m, 5.0);
  EXPECT_TRUE(c.at(30, 15, 25));
  EXPECT_FALSE(c.at(5, 5, 25));
  MaskImage fin = m;
  for (std::size_t k = 20; k < 30; ++k)
    for (std::size_t j = 0; j < 10; ++j)
      for (std::size_t i = 40; i < 44; ++i) fin.at(i, j, k) = 1;
  const MaskImage o = open(fin, 2.5);
  EXPECT_FALSE(o.at(42, 5, 25));
  EXPECT_TRUE(o.at(20, 30, 25));
}

TEST(Morphology, FillHoles2dFillsEnclosedOnly) {
  Geometry g = grid(20, 1, 1, 1);
  g.size[2] = 1;
  MaskImage m(g, 0);
  for (std::size_t j = 5; j < 15; ++j)
    for (std::size_t i = 5; i < 15; ++i) m.at(i, j, 0) = (i == 5 || i == 14 || j == 5 || j == 14);
  m.at(14, 9, 0) = 1;
  fill_holes_2d(m);
  EXPECT_EQ(count_nonzero(m), 100u);
  m.at(5, 9, 0) = 0;  // an opening to the outside: nothing is enclosed any more
}

TEST(Components, CountsAndRemovesSmall) {
  Geometry g = grid(10, 1, 1, 1);
  MaskImage m(g, 0);
  for (std::size_t i = 0; i < 5; ++i) m.at(i, 0, 0) = 1;
  m.at(8, 8, 8) = 1;
  m.at(8, 8, 7) = 1;
  const Components c = label_components(m);
  ASSERT_EQ(c.count(), 2u);
  remove_small_components(m, 3);
  EXPECT_EQ(count_nonzero(m), 5u);
}

}  // namespace
}  // namespace lungvol::seg
