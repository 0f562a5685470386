// Image buffers: filled in parallel (core/image.cpp), so every voxel must still get the value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "core/image.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lungvol {
namespace {

template <class T>
void expect_filled(std::size_t nx, std::size_t ny, std::size_t nz, T value) {
  Geometry g;
  g.size = {nx, ny, nz};
  const Image<T> im(g, value);
  ASSERT_EQ(im.size(), nx * ny * nz);
  EXPECT_EQ(std::count(im.data.begin(), im.data.end(), value), std::ptrdiff_t(im.size()))
      << nx << "x" << ny << "x" << nz;
}

TEST(Image, EveryVoxelGetsTheFillValueAtAnyThreadCount) {
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
  for (const int n : {1, 2, 3, 7}) {
    omp_set_num_threads(n);
#endif
    // Below and above the size where the fill goes parallel (1 MiB), and an odd count that
    // does not split evenly between threads.
    expect_filled<std::uint8_t>(7, 5, 3, 9);
    expect_filled<std::uint8_t>(513, 511, 7, 1);
    expect_filled<std::int16_t>(509, 512, 5, -1024);
    expect_filled<std::uint32_t>(300, 301, 5, 0xdeadbeefu);
    expect_filled<float>(257, 256, 9, 2.5f);
#ifdef _OPENMP
  }
  omp_set_num_threads(threads);
#endif
}

TEST(Image, CopiesAndComparesLikeAVector) {
  Geometry g;
  g.size = {600, 600, 4};
  Image<std::int16_t> a(g, 3);
  a.at(599, 599, 3) = -7;
  const Image<std::int16_t> b = a;
  EXPECT_TRUE(a.data == b.data);
  a[0] = 1;
  EXPECT_FALSE(a.data == b.data);
  EXPECT_EQ(b.at(599, 599, 3), -7);
}

TEST(Image, LargeBuffersStartOnAHugePageBoundaryAndSmallOnesStillWork) {
  // Volumes from 2 MiB up are mapped 2 MiB aligned (transparent huge pages need it); smaller
  // ones come from operator new. Both must hold and keep every value, across reallocation.
  const std::size_t huge = detail::kHugePageBytes;
  for (const std::size_t bytes : {std::size_t(1000), huge - 1, huge, huge + 1, 3 * huge + 12345}) {
    VoxelVector<std::uint16_t> v(bytes / sizeof(std::uint16_t) + 1);
#if !defined(__SANITIZE_ADDRESS__)  // under ASan every buffer comes from operator new
    if (v.size() * sizeof(std::uint16_t) >= huge) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % huge, 0u) << bytes;
    }
#endif
    std::iota(v.begin(), v.end(), std::uint16_t(0));
    VoxelVector<std::uint16_t> copy = v;
    v.resize(v.size() * 2 + 7);  // reallocates: the old buffer is unmapped or deleted
    for (std::size_t n = 0; n < copy.size(); ++n) {
      ASSERT_EQ(v[n], std::uint16_t(n)) << bytes;
      ASSERT_EQ(copy[n], std::uint16_t(n)) << bytes;
    }
  }
}

}  // namespace
}  // namespace lungvol
