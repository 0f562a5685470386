// The fast kernels against plain definitions written here: run-based connected components
// (including more than 65535 components and several slabs of slices), and small-radius
// morphology (windowed minima) against a brute-force ball on anisotropic grids.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "segmentation/components.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {
namespace {

Geometry grid(std::size_t nx, std::size_t ny, std::size_t nz, double hx, double hy, double hz) {
  Geometry g;
  g.size = {nx, ny, nz};
  g.spacing = {hx, hy, hz};
  return g;
}

MaskImage random_mask(const Geometry& g, int percent, std::uint32_t seed) {
  MaskImage m(g, 0);
  for (auto& v : m.data) {
    seed = seed * 1664525u + 1013904223u;
    v = (seed >> 8) % 100 < std::uint32_t(percent);
  }
  return m;
}

// Component sizes by flood fill, per voxel.
std::vector<std::uint64_t> reference_sizes(const MaskImage& m, std::vector<std::uint32_t>& id) {
  id.assign(m.size(), 0);
  std::vector<std::uint64_t> sizes{0};
  for (std::size_t s = 0; s < m.size(); ++s) {
    if (!m[s] || id[s]) continue;
    const auto c = std::uint32_t(sizes.size());
    sizes.push_back(0);
    std::vector<std::size_t> stack{s};
    id[s] = c;
    while (!stack.empty()) {
      const std::size_t v = stack.back();
      stack.pop_back();
      ++sizes[c];
      for_each_face_neighbour(m.geom, v, [&](std::size_t w) {
        if (m[w] && !id[w]) {
          id[w] = c;
          stack.push_back(w);
        }
      });
    }
  }
  return sizes;
}

TEST(ComponentsKernel, MoreThan65535ComponentsUseWideLabels) {
  // Voxels with i + j + k even have no face neighbour in the mask: each is its own component.
  const Geometry g = grid(64, 64, 40, 1, 1, 1);
  MaskImage m(g, 0);
  for (std::size_t k = 0; k < 40; ++k)
    for (std::size_t j = 0; j < 64; ++j)
      for (std::size_t i = 0; i < 64; ++i) m.at(i, j, k) = (i + j + k) % 2 == 0;
  const Components c = label_components(m);
  ASSERT_EQ(c.count(), 64u * 64u * 40u / 2u);
  EXPECT_EQ(c.labels.bytes_per_voxel(), 4u);
  EXPECT_EQ(c.labels[g.index(0, 0, 0)], 1u);
  EXPECT_EQ(c.labels[g.index(62, 63, 39)], 81920u);  // last in raster order
  EXPECT_EQ(c.labels[g.index(1, 0, 0)], 0u);
  remove_small_components(m, 2);
  EXPECT_EQ(count_nonzero(m), 0u);
}

TEST(ComponentsKernel, FewComponentsUseOneByteLabels) {
  const Geometry g = grid(10, 4, 3, 1, 1, 1);
  MaskImage m(g, 0);
  m.at(1, 1, 1) = 1;
  m.at(2, 1, 1) = 1;
  m.at(7, 3, 2) = 1;
  const Components c = label_components(m);
  ASSERT_EQ(c.count(), 2u);
  EXPECT_EQ(c.labels.bytes_per_voxel(), 1u);
  EXPECT_EQ(c.labels[g.index(2, 1, 1)], 1u);
  EXPECT_EQ(c.labels[g.index(7, 3, 2)], 2u);
  EXPECT_EQ(c.sizes[1], 2u);
  EXPECT_EQ(c.labels[g.index(0, 0, 0)], 0u);
}

TEST(ComponentsKernel, RemoveSmallMatchesFloodFillAcrossThreadCounts) {
  const Geometry g = grid(23, 19, 37, 1, 1, 1);
  const MaskImage m = random_mask(g, 42, 7);
  std::vector<std::uint32_t> id;
  const auto sizes = reference_sizes(m, id);
  for (int threads : {1, 2, 3, 5}) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    const Components c = label_components(m);
    ASSERT_EQ(c.count() + 1, sizes.size()) << threads << " threads";
    ASSERT_GT(c.count(), 255u);  // 2-byte labels
    EXPECT_EQ(c.labels.bytes_per_voxel(), 2u);
    for (std::size_t v = 0; v < m.size(); ++v) ASSERT_EQ(c.labels[v], id[v]) << v;
    for (std::uint64_t min : {2u, 5u, 40u}) {
      MaskImage kept = m;
      remove_small_components(kept, min);
      for (std::size_t v = 0; v < m.size(); ++v) {
        ASSERT_EQ(kept[v] != 0, m[v] && sizes[id[v]] >= min) << v << " min " << min;
      }
    }
  }
#ifdef _OPENMP
  omp_set_num_threads(omp_get_num_procs());
#endif
}

// A voxel is in the dilation when a mask voxel lies within radius (mm) of it.
MaskImage reference_dilate(const MaskImage& m, double r) {
  const Geometry& g = m.geom;
  MaskImage out(g, 0);
  const auto reach = [&](int a) { return int(std::floor(r / g.spacing[a])); };
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        bool hit = false;
        for (int c = -reach(2); c <= reach(2) && !hit; ++c)
          for (int b = -reach(1); b <= reach(1) && !hit; ++b)
            for (int a = -reach(0); a <= reach(0) && !hit; ++a) {
              const long x = long(i) + a, y = long(j) + b, z = long(k) + c;
              if (x < 0 || y < 0 || z < 0 || x >= long(g.size[0]) || y >= long(g.size[1]) ||
                  z >= long(g.size[2]))
                continue;
              const double d2 = std::pow(a * g.spacing[0], 2) + std::pow(b * g.spacing[1], 2) +
                                std::pow(c * g.spacing[2], 2);
              hit = d2 <= r * r && m.at(std::size_t(x), std::size_t(y), std::size_t(z));
            }
        out.at(i, j, k) = hit;
      }
  return out;
}

TEST(MorphologyKernel, SmallRadiiMatchABruteForceBall) {
  // Radii between lattice distances (no ties), on an anisotropic grid like a CT's.
  const Geometry g = grid(31, 27, 19, 0.7, 0.8, 1.9);
  const MaskImage sparse = random_mask(g, 3, 11);
  const MaskImage dense = random_mask(g, 85, 13);
  for (double r : {1.0, 1.5, 2.3, 3.1}) {
    EXPECT_EQ(dilate(sparse, r).data, reference_dilate(sparse, r).data) << "dilate r=" << r;
    // Erosion: voxels of the mask with no background voxel within r (the image border is not
    // background).
    MaskImage background(g, 0);
    for (std::size_t n = 0; n < g.voxel_count(); ++n) background[n] = !dense[n];
    const MaskImage near_bg = reference_dilate(background, r);
    MaskImage expected(g, 0);
    for (std::size_t n = 0; n < g.voxel_count(); ++n) expected[n] = dense[n] && !near_bg[n];
    EXPECT_EQ(erode(dense, r).data, expected.data) << "erode r=" << r;
  }
}

TEST(MorphologyKernel, SingleSliceAndFullMasks) {
  const Geometry g = grid(37, 23, 1, 0.6, 0.6, 5.0);  // one axial slice
  const MaskImage m = random_mask(g, 4, 29);
  for (double r : {0.9, 1.7}) {
    EXPECT_EQ(dilate(m, r).data, reference_dilate(m, r).data) << r;
  }
  const MaskImage full(g, 1);  // no background anywhere: erosion keeps every voxel
  EXPECT_EQ(count_nonzero(erode(full, 1.7)), g.voxel_count());
  const MaskImage empty(g, 0);
  EXPECT_EQ(count_nonzero(dilate(empty, 1.7)), 0u);
}

TEST(MorphologyKernel, SmallAndLargeRadiusPathsAgree) {
  // A radius just below the window limit (windowed minima) and the same shapes scaled into the
  // distance-transform path agree with the brute-force ball alike.
  const Geometry g = grid(30, 28, 20, 1.0, 1.0, 1.0);
  const MaskImage m = random_mask(g, 2, 17);
  for (double r : {4.2, 6.5, 9.7}) {
    EXPECT_EQ(dilate(m, r).data, reference_dilate(m, r).data) << r;
  }
}

}  // namespace
}  // namespace lungvol::seg

namespace lungvol::seg {
namespace {

TEST(FloodKernel, BorderConnectedMatchesAPixelFlood) {
  for (std::uint32_t seed : {3u, 5u, 8u}) {
    const std::size_t nx = 41, ny = 29;
    const MaskImage m = random_mask(grid(nx, ny, 1, 1, 1, 1), 50 + int(seed), seed);
    // Reference: flood from every set border pixel through set pixels.
    std::vector<std::uint8_t> ref(nx * ny, 0);
    std::vector<std::size_t> stack;
    const auto seed_at = [&](std::size_t p) {
      if (m[p] && !ref[p]) {
        ref[p] = 1;
        stack.push_back(p);
      }
    };
    for (std::size_t i = 0; i < nx; ++i) {
      seed_at(i);
      seed_at((ny - 1) * nx + i);
    }
    for (std::size_t j = 0; j < ny; ++j) {
      seed_at(j * nx);
      seed_at(j * nx + nx - 1);
    }
    while (!stack.empty()) {
      const std::size_t p = stack.back();
      stack.pop_back();
      const std::size_t i = p % nx, j = p / nx;
      if (i > 0) seed_at(p - 1);
      if (i + 1 < nx) seed_at(p + 1);
      if (j > 0) seed_at(p - nx);
      if (j + 1 < ny) seed_at(p + nx);
    }
    std::vector<std::uint8_t> reach;
    std::vector<std::size_t> scratch;
    flood_from_border_2d(nx, ny, [&](std::size_t p) { return m[p] != 0; }, reach, scratch);
    std::size_t enclosed = 0;
    for (std::size_t p = 0; p < nx * ny; ++p) enclosed += m[p] && !ref[p];
    EXPECT_GT(enclosed, 0u);  // the masks do have enclosed set pixels
    EXPECT_EQ(reach, ref) << "seed " << seed;
  }
}

}  // namespace
}  // namespace lungvol::seg

namespace lungvol::seg {
namespace {

TEST(DistanceKernel, SquaredDistanceMatchesBruteForce) {
  const Geometry g = grid(23, 17, 13, 0.7, 0.9, 2.5);
  const MaskImage m = random_mask(g, 1, 21);
  const VoxelVector<float> d = squared_distance_to(m);
  std::size_t checked = 0;
  for (std::size_t k = 0; k < 13; ++k)
    for (std::size_t j = 0; j < 17; ++j)
      for (std::size_t i = 0; i < 23; ++i) {
        double best = 1e30;
        for (std::size_t n = 0; n < m.size(); ++n) {
          if (!m[n]) continue;
          const double dx = (double(n % 23) - double(i)) * 0.7;
          const double dy = (double((n / 23) % 17) - double(j)) * 0.9;
          const double dz = (double(n / (23 * 17)) - double(k)) * 2.5;
          best = std::min(best, dx * dx + dy * dy + dz * dz);
        }
        ASSERT_NEAR(d[g.index(i, j, k)], best, 1e-4 * best) << i << "," << j << "," << k;
        ++checked;
      }
  EXPECT_EQ(checked, g.voxel_count());
}

}  // namespace
}  // namespace lungvol::seg
