#include "segmentation/morphology.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/labels.hpp"
#include "segmentation/components.hpp"
#include "segmentation/lungs.hpp"
#include "segmentation/near_feature.hpp"

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

// Sparse random features on an anisotropic grid, against a brute-force search for a feature
// within the radius. 2.3 mm takes the windowed path (a few neighbours per axis), 9.1 mm the
// distance transform; neither radius equals a distance between voxel centres on this grid, so
// float rounding cannot decide a case. keep gets the voxel index it is asked about.
TEST(NearFeature, MatchesBruteForceOnBothPaths) {
  Geometry g;
  g.size = {23, 19, 17};
  g.spacing = {1.0, 0.7, 1.6};
  std::uint32_t state = 777;
  auto rnd = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  MaskImage feature(g, 0), other(g, 0);
  for (auto& v : feature.data) v = rnd() % 1000 < 4;
  for (auto& v : other.data) v = rnd() % 2;
  for (const double r : {2.3, 9.1}) {
    const MaskImage got = near_feature(
        g, r, [&](std::size_t n) { return feature[n] != 0; },
        [&](std::size_t n, bool near) { return near != (other[n] != 0); });
    std::size_t near_count = 0;
    for (std::size_t k = 0; k < g.size[2]; ++k) {
      for (std::size_t j = 0; j < g.size[1]; ++j) {
        for (std::size_t i = 0; i < g.size[0]; ++i) {
          bool near = false;
          for (std::size_t m = 0; m < feature.size() && !near; ++m) {
            if (!feature[m]) continue;
            const std::size_t mi = m % g.size[0], mj = (m / g.size[0]) % g.size[1],
                              mk = m / (g.size[0] * g.size[1]);
            const double dx = (double(i) - double(mi)) * g.spacing[0];
            const double dy = (double(j) - double(mj)) * g.spacing[1];
            const double dz = (double(k) - double(mk)) * g.spacing[2];
            near = dx * dx + dy * dy + dz * dz <= r * r;
          }
          near_count += near;
          const std::size_t n = g.index(i, j, k);
          ASSERT_EQ(got[n] != 0, near != (other[n] != 0))
              << "r " << r << " at " << i << "," << j << "," << k;
        }
      }
    }
    EXPECT_GT(near_count, 0u);
    EXPECT_LT(near_count, feature.size());
  }
}

// What segment_lesions relies on to skip the opening's dilation: a connected piece of a mask
// holds a voxel of the opening exactly when it holds a voxel of the erosion.
TEST(NearFeature, PiecesHitByTheOpeningAreThoseHitByTheErosion) {
  std::uint32_t state = 4242;
  auto rnd = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  int pieces_with_core = 0, pieces_without = 0;
  for (int trial = 0; trial < 6; ++trial) {
    Geometry g;
    g.size = {30, 28, 14};
    g.spacing = {0.8, 0.8, trial % 2 ? 2.0 : 1.0};
    MaskImage m(g, 0);
    // Blobs of random radius (some thick enough to survive, some not) and thin rods.
    for (int b = 0; b < 8; ++b) {
      const double ci = rnd() % 30, cj = rnd() % 28, ck = rnd() % 14;
      const double rad = 1.0 + double(rnd() % 40) / 10.0;
      for (std::size_t k = 0; k < g.size[2]; ++k)
        for (std::size_t j = 0; j < g.size[1]; ++j)
          for (std::size_t i = 0; i < g.size[0]; ++i) {
            const double dx = (double(i) - ci) * g.spacing[0], dy = (double(j) - cj) * g.spacing[1],
                         dz = (double(k) - ck) * g.spacing[2];
            if (dx * dx + dy * dy + dz * dz <= rad * rad) m.at(i, j, k) = 1;
          }
    }
    for (std::size_t i = 0; i < g.size[0]; ++i) m.at(i, 14, 7) = 1;
    const double r = 2.0;
    const MaskImage opened = open(m, r), eroded = erode(m, r);
    const Components c = label_components(m);
    std::vector<int> hit_open(c.count() + 1, 0), hit_erode(c.count() + 1, 0);
    for (std::size_t n = 0; n < m.size(); ++n) {
      if (opened[n]) hit_open[c.labels[n]] = 1;
      if (eroded[n]) hit_erode[c.labels[n]] = 1;
    }
    EXPECT_EQ(hit_open[0], 0);  // the opening lies inside the mask
    for (std::size_t id = 1; id <= c.count(); ++id) {
      EXPECT_EQ(hit_open[id], hit_erode[id]) << "trial " << trial << " piece " << id;
      (hit_open[id] ? pieces_with_core : pieces_without) += 1;
    }
  }
  // Both kinds of piece occur, so the comparison is not vacuous.
  EXPECT_GT(pieces_with_core, 0);
  EXPECT_GT(pieces_without, 0);
}

}  // namespace
}  // namespace lungvol::seg

namespace lungvol::seg {
namespace {

// Random masks against a plain flood fill written here: same number of components, same
// partition of the voxels, ids in raster order of first appearance.
TEST(Components, MatchesAReferenceFloodFillOnRandomMasks) {
  std::uint32_t state = 12345;
  auto rnd = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int trial = 0; trial < 20; ++trial) {
    Geometry g;
    g.size = {17, 13, 11};
    MaskImage m(g, 0);
    for (auto& v : m.data) v = rnd() % 100 < 45;
    const Components c = label_components(m);
    // Reference.
    Image<std::uint32_t> ref(g, 0);
    std::uint32_t next = 0;
    for (std::size_t s = 0; s < m.size(); ++s) {
      if (!m[s] || ref[s]) continue;
      ++next;
      std::vector<std::size_t> stack{s};
      ref[s] = next;
      while (!stack.empty()) {
        const std::size_t v = stack.back();
        stack.pop_back();
        for_each_face_neighbour(g, v, [&](std::size_t w) {
          if (m[w] && !ref[w]) {
            ref[w] = next;
            stack.push_back(w);
          }
        });
      }
    }
    ASSERT_EQ(c.count(), next);
    for (std::size_t v = 0; v < m.size(); ++v) ASSERT_EQ(c.labels[v], ref[v]) << v;
    std::uint64_t total = 0;
    for (std::size_t id = 1; id < c.sizes.size(); ++id) total += c.sizes[id];
    EXPECT_EQ(total, count_nonzero(m));
  }
}

}  // namespace
}  // namespace lungvol::seg

namespace lungvol::seg {
namespace {

// Issue 19 item 2: a lung cut in two by a bad slice loses its smaller part; the part must be
// named. Three boxes of air (10 mm voxels = 1 mL): right 300 mL, left 250 mL and, on the
// right, a detached 120 mL piece; a 40 mL piece is below min_lung_ml (100) and not reported.
TEST(SeparateLeftRight, LargeDiscardedAirRegionsAreReported) {
  Geometry g;
  g.size = {40, 20, 30};
  g.spacing = {10, 10, 10};
  MaskImage m(g, 0);
  const auto box = [&](std::size_t i0, std::size_t i1, std::size_t j1, std::size_t k0,
                       std::size_t k1) {
    for (std::size_t k = k0; k < k1; ++k)
      for (std::size_t j = 2; j < j1; ++j)
        for (std::size_t i = i0; i < i1; ++i) m.at(i, j, k) = 1;
  };
  box(2, 12, 12, 10, 13);   // right lung: 10 x 10 x 3 = 300 mL
  box(25, 35, 7, 10, 15);   // left lung: 10 x 5 x 5 = 250 mL
  box(2, 8, 12, 20, 22);    // detached right piece: 6 x 10 x 2 = 120 mL
  box(30, 32, 4, 25, 30);   // small piece: 2 x 2 x 5 = 20 mL
  const double midline = 20 * 10.0;  // LPS x of the middle column (origin 0, identity)
  bool touching = false;
  std::vector<double> discarded;
  const LabelImage lab = separate_left_right(m, midline, 100, &touching, &discarded);
  EXPECT_FALSE(touching);
  ASSERT_EQ(discarded.size(), 1u);
  EXPECT_NEAR(discarded[0], 120.0, 1e-9);
  std::size_t right = 0, left = 0;
  for (std::size_t n = 0; n < lab.size(); ++n) {
    right += lab[n] == labels::kRightLung;
    left += lab[n] == labels::kLeftLung;
  }
  EXPECT_EQ(right, 300u);
  EXPECT_EQ(left, 250u);
}

}  // namespace
}  // namespace lungvol::seg
