#include <gtest/gtest.h>

#include "core/error.hpp"
#include "pipeline/given_masks.hpp"

namespace lungvol::pipeline {
namespace {

Geometry grid(std::size_t n, double spacing, double origin) {
  Geometry g;
  g.size = {n, n, n};
  g.spacing = {spacing, spacing, spacing};
  g.origin = {origin, origin, origin};
  return g;
}

TEST(ToCtGrid, SameGridIsTakenAsItIs) {
  const Geometry g = grid(8, 2.0, 0.0);
  LabelImage m(g, 0);
  m.at(3, 4, 5) = 2;
  std::vector<std::string> warnings;
  const LabelImage out = to_ct_grid(m, g, "m.nii", warnings);
  EXPECT_EQ(out.data, m.data);
  EXPECT_TRUE(warnings.empty());
}

TEST(ToCtGrid, FinerGridOverTheSameBoxIsResampledByNearestNeighbour) {
  // CT: 8 voxels of 2 mm from 0 (box -1..15 mm). Mask: 16 voxels of 1 mm from -0.5 (same box).
  const Geometry ct = grid(8, 2.0, 0.0);
  const Geometry fine = grid(16, 1.0, -0.5);
  LabelImage m(fine, 0);
  // Label the fine voxels of CT voxel (2..4, 2..4, 2..4): fine indices 4..9.
  for (std::size_t k = 4; k < 10; ++k)
    for (std::size_t j = 4; j < 10; ++j)
      for (std::size_t i = 4; i < 10; ++i) m.at(i, j, k) = 1;
  std::vector<std::string> warnings;
  const LabelImage out = to_ct_grid(m, ct, "fine.nii", warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("nearest neighbour"), std::string::npos);
  std::size_t n = 0;
  for (auto v : out.data) n += v;
  EXPECT_EQ(n, 27u);
  EXPECT_EQ(out.at(3, 3, 3), 1);
  EXPECT_EQ(out.at(5, 5, 5), 0);
}

TEST(ToCtGrid, OtherBoxOrOrientationIsRefused) {
  const Geometry ct = grid(8, 2.0, 0.0);
  std::vector<std::string> warnings;
  EXPECT_THROW(to_ct_grid(LabelImage(grid(8, 2.0, 10.0), 0), ct, "shifted.nii", warnings),
               Error);
  Geometry flipped = ct;
  flipped.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
  flipped.size[0] = 9;
  try {
    to_ct_grid(LabelImage(flipped, 0), ct, "flipped.nii", warnings);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kInput);
    EXPECT_NE(std::string(e.what()).find("flipped.nii"), std::string::npos);
  }
}

}  // namespace
}  // namespace lungvol::pipeline
