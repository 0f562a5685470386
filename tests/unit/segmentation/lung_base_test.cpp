// The shape of a lung's base (segmentation/lung_base.hpp) on masks whose base is known
// analytically: a base that slopes down to the back (normal anatomy), the same lung with its
// lower lobe removed behind a fissure, and the same on a grid stored feet-first.
#include "segmentation/lung_base.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/labels.hpp"

namespace lungvol::seg {
namespace {

// A 60 x 150 x 260 mm block of lung (1 mm voxels; LPS y grows to the back) whose base lies at
// z = -0.4 y: 60 mm lower at the back than at the front, as the diaphragm's attachments are.
// `keep(y, z)` removes voxels; `feet_first` stores the slices from the top down.
LabelImage lung_block(const std::function<bool(double, double)>& keep, bool feet_first) {
  Geometry g;
  g.size = {60, 150, 260};
  g.origin = {0, 0, feet_first ? 199.0 : -60.0};
  if (feet_first) g.direction = {1, 0, 0, 0, 1, 0, 0, 0, -1};
  LabelImage l(g, labels::kBackground);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const auto p = g.to_physical(double(i), double(j), double(k));
        if (p[2] >= -0.4 * p[1] && keep(p[1], p[2])) l.at(i, j, k) = labels::kRightLung;
      }
    }
  }
  return l;
}

TEST(LungBase, NormalBaseIsLowestAtTheBack) {
  for (const bool feet_first : {false, true}) {
    SCOPED_TRACE(feet_first ? "feet first" : "head first");
    const LungBase b = lung_base(lung_block([](double, double) { return true; }, feet_first),
                                 labels::kRightLung);
    EXPECT_EQ(b.columns, 60u * 150u);
    EXPECT_NEAR(b.height_mm, 199 + 59, 1.0);  // from y = 149 (z = -59.6 -> -59) to 199
    // Back quarter (y >= 113): 10th percentile of -0.4 y, about y = 146, z = -58.
    EXPECT_NEAR(b.posterior_mm, -58, 1.5);
    // Front quarter (y <= 39): about y = 36.
    EXPECT_NEAR(b.anterior_mm, -14, 1.5);
    EXPECT_NEAR(b.rise_mm(), 0, 2.0);
    EXPECT_LT(b.rise_mm(), base_rise_flag_mm(1.0));
  }
}

TEST(LungBase, LowerLobeLeftOutRaisesTheBack) {
  // The major fissure rises to the back: z = -100 + y. Behind and below it the lobe is gone.
  // The remaining base is max(-0.4 y, y - 100), lowest at y = 71 (-29 mm); the back quarter
  // (y >= 113) ends on the fissure, its 10th percentile at about y = 116 (16 mm).
  for (const bool feet_first : {false, true}) {
    SCOPED_TRACE(feet_first ? "feet first" : "head first");
    const LungBase b = lung_base(
        lung_block([](double y, double z) { return z >= y - 100; }, feet_first),
        labels::kRightLung);
    EXPECT_NEAR(b.posterior_mm, 15, 2.0);
    EXPECT_NEAR(b.lowest_mm, -27, 2.5);
    EXPECT_NEAR(b.rise_mm(), 42, 3.0);
    EXPECT_GT(b.rise_mm(), base_rise_flag_mm(1.0));
  }
}

TEST(LungBase, FlagLimitFollowsSliceSpacing) {
  EXPECT_DOUBLE_EQ(base_rise_flag_mm(1.0), 10.0);
  EXPECT_DOUBLE_EQ(base_rise_flag_mm(5.0), 10.0);
  EXPECT_DOUBLE_EQ(base_rise_flag_mm(7.5), 15.0);
}

TEST(LungBase, AbsentOrTinyLungHasNoColumns) {
  Geometry g;
  g.size = {8, 8, 8};
  LabelImage l(g, labels::kBackground);
  EXPECT_EQ(lung_base(l, labels::kLeftLung).columns, 0u);
  l.at(3, 3, 3) = labels::kLeftLung;
  const LungBase b = lung_base(l, labels::kLeftLung);
  EXPECT_EQ(b.columns, 1u);
  EXPECT_DOUBLE_EQ(b.rise_mm(), 0.0);  // too few columns to judge: never flagged
}

// A diaphragm dome as base heights (1 mm columns, 0.1 mm height units: h = 10000 - 0.05 r^2,
// r in mm from the summit), with no lung beyond r = 140 mm.
constexpr std::int32_t kNoLung = std::numeric_limits<std::int32_t>::max();
constexpr std::size_t kN = 300;
std::int32_t dome(double i, double j) {
  const double r2 = (i - 150) * (i - 150) + (j - 150) * (j - 150);
  return r2 > 140.0 * 140.0 ? kNoLung : std::int32_t(std::lround(10000 - 0.05 * r2));
}

TEST(LungBase, OpeningRemovesALesionPlateauAndKeepsTheDomesSlopes) {
  std::vector<std::int32_t> h(kN * kN), truth(kN * kN);
  for (std::size_t j = 0; j < kN; ++j) {
    for (std::size_t i = 0; i < kN; ++i) truth[j * kN + i] = h[j * kN + i] = dome(double(i), double(j));
  }
  // A round consolidation of 40 mm on the dome's slope (centre 110 mm from the summit) lifts the
  // aerated base over it by 25 mm.
  std::size_t plateau = 0;
  for (std::size_t j = 0; j < kN; ++j) {
    for (std::size_t i = 0; i < kN; ++i) {
      const double di = double(i) - 260, dj = double(j) - 150;
      if (di * di + dj * dj <= 20.0 * 20.0 && h[j * kN + i] != kNoLung) {
        h[j * kN + i] += 250;
        ++plateau;
      }
    }
  }
  ASSERT_GT(plateau, 1000u);
  const auto o = open_base_heights(h, kN, kN, 30, 30);
  std::size_t checked = 0;
  for (std::size_t j = 0; j < kN; ++j) {
    for (std::size_t i = 0; i < kN; ++i) {
      const std::size_t n = j * kN + i;
      if (h[n] == kNoLung) {
        EXPECT_EQ(o[n], kNoLung);
        continue;
      }
      ASSERT_NE(o[n], kNoLung);
      EXPECT_LE(o[n], h[n]);
      // Never deeper than the dome's own drop over the square's diagonal (2 x 30 sqrt 2 mm).
      const double r = std::hypot(double(i) - 150, double(j) - 150);
      const double reach = std::min(140.0, r + 2 * 30 * std::sqrt(2.0));
      EXPECT_GE(o[n], std::lround(10000 - 0.05 * reach * reach) - 1);
      const double di = double(i) - 260, dj = double(j) - 150;
      if (di * di + dj * dj <= 20.0 * 20.0) {
        // The plateau is gone: back on (or below) the dome, 25 mm lower than it was.
        EXPECT_LE(o[n], truth[n] + 1);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, plateau);
}

TEST(LungBase, OpeningLeavesARampAndColumnsWithoutLungAlone) {
  // A base sloping 0.4 mm per column, and a band of columns with no lung in its middle.
  constexpr std::size_t nx = 120, ny = 40;
  std::vector<std::int32_t> h(nx * ny);
  for (std::size_t j = 0; j < ny; ++j) {
    for (std::size_t i = 0; i < nx; ++i) {
      h[j * nx + i] = (i >= 50 && i < 60) ? kNoLung : std::int32_t(4 * i);
    }
  }
  const auto o = open_base_heights(h, nx, ny, 10, 10);
  for (std::size_t j = 0; j < ny; ++j) {
    for (std::size_t i = 0; i < nx; ++i) {
      const std::size_t n = j * nx + i;
      if (i >= 50 && i < 60) {
        EXPECT_EQ(o[n], kNoLung) << "column " << i;
      } else if (i < 40) {
        EXPECT_EQ(o[n], h[n]) << "column " << i;  // the ramp: unchanged
      } else if (i < 50 || i >= nx - 10) {
        // The ramp's high end against the lung's edge (the band, the grid's end) is a plateau to
        // the opening: lowered, by at most the ramp's rise over the square.
        EXPECT_LE(o[n], h[n]) << "column " << i;
        EXPECT_GE(o[n], h[n] - 4 * 10) << "column " << i;
      } else {
        // Beyond the band the ramp starts afresh at its low end: unchanged.
        EXPECT_EQ(o[n], h[n]) << "column " << i;
      }
    }
  }
}

}  // namespace
}  // namespace lungvol::seg
