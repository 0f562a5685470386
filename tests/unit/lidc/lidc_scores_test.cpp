// The scoring arithmetic of the LIDC validation on hand-counted inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "tests/support/test_paths.hpp"
#include "tests/unit/lidc/lidc_nodules.hpp"

namespace lungvol::lidc {
namespace {

TEST(LidcScores, AucCountsEveryPairTiesAsHalf) {
  // Pairs (x, y): (2,1) 1, (2,2) 1/2, (3,1) 1, (3,2) 1 -> 3.5 / 4.
  EXPECT_DOUBLE_EQ(roc_auc({2, 3}, {1, 2}), 0.875);
  EXPECT_DOUBLE_EQ(roc_auc({5, 6}, {1, 2, 3}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({1}, {5, 6}), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc({1, 1}, {1}), 0.5);
  EXPECT_TRUE(std::isnan(roc_auc({}, {1})));
}

TEST(LidcScores, MedianOddEvenAndNaN) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2.0);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({std::nan(""), 7}), 7.0);
}

TEST(LidcScores, BandedAndAllVoxelFractions) {
  setenv("LUNGVOL_PROTOCOL_DIR", (test::source_dir() + "/protocols").c_str(), 1);
  const Protocol p = load_protocol(kDefaultProtocol);  // [-700, 100), split -300
  HuHistogram h;
  for (int hu : {-900, -800, -650, -400, -301, -300, -100, 99, 100, 400}) h.add(hu);
  // Band [-700, 100): -650 -400 -301 -300 -100 99 -> 6 voxels, 3 of them >= -300.
  EXPECT_DOUBLE_EQ(banded_solid_fraction(h, p, 0.001), 0.5);
  // All 10 voxels: -300 -100 99 100 400 are >= -300.
  EXPECT_DOUBLE_EQ(all_solid_fraction(h, -300), 0.5);
  EXPECT_DOUBLE_EQ(all_solid_fraction(h, 0), 0.3);
  HuHistogram air;
  air.add(-1000);
  EXPECT_TRUE(std::isnan(banded_solid_fraction(air, p, 0.001)));
}

}  // namespace
}  // namespace lungvol::lidc
