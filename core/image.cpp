#include "core/image.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>

namespace lungvol {

namespace detail {

namespace {

std::size_t mapped_length(std::size_t bytes) {
  return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
}

void* map_huge(std::size_t length) {
  // Over-map by one huge page and cut the ends off, so the buffer starts on a 2 MiB boundary
  // (the kernel backs only aligned 2 MiB ranges with huge pages).
  const std::size_t mapped = length + kHugePageBytes;
  void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  if (aligned > start) ::munmap(raw, aligned - start);
  const std::size_t tail = (start + mapped) - (aligned + length);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + length), tail);
  void* p = reinterpret_cast<void*>(aligned);
  // Advice only: where huge pages are off ("never") the buffer still works with small pages.
  (void)::madvise(p, length, MADV_HUGEPAGE);
  return p;
}

}  // namespace

// Under AddressSanitizer every buffer goes through operator new, so that reads and writes past
// a volume's end are still caught (the sanitizer does not watch mmap'd memory).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMapLargeBuffers = false;
#else
constexpr bool kMapLargeBuffers = true;
#endif

void* allocate_voxel_bytes(std::size_t bytes) {
  if (!kMapLargeBuffers || bytes < kHugePageBytes) return ::operator new(bytes);
  return map_huge(mapped_length(bytes));
}

void free_voxel_bytes(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (!kMapLargeBuffers || bytes < kHugePageBytes) {
    ::operator delete(p);
    return;
  }
  ::munmap(p, mapped_length(bytes));
}

}  // namespace detail

std::array<double, 3> Geometry::to_physical(double i, double j, double k) const {
  const double v[3] = {i * spacing[0], j * spacing[1], k * spacing[2]};
  std::array<double, 3> p{};
  for (int r = 0; r < 3; ++r) {
    p[r] = origin[r] + direction[3 * r] * v[0] + direction[3 * r + 1] * v[1] +
           direction[3 * r + 2] * v[2];
  }
  return p;
}

bool Geometry::same_grid(const Geometry& o, double tol_mm) const {
  if (size != o.size) return false;
  for (int a = 0; a < 3; ++a) {
    if (std::abs(spacing[a] - o.spacing[a]) > tol_mm) return false;
    if (std::abs(origin[a] - o.origin[a]) > tol_mm) return false;
  }
  for (int n = 0; n < 9; ++n) {
    if (std::abs(direction[n] - o.direction[n]) > 1e-4) return false;
  }
  return true;
}

template <class T>
void fill_voxels(T* p, std::size_t n, T v) {
  // Below a few pages a parallel region costs more than it saves.
  constexpr std::size_t kParallelBytes = std::size_t(1) << 20;
  if (n * sizeof(T) < kParallelBytes) {
    std::fill(p, p + n, v);
    return;
  }
#pragma omp parallel
  {
    int nt = 1, t = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    t = omp_get_thread_num();
#endif
    // Contiguous halves: the thread that fills a page is the one whose slab it belongs to in
    // the static schedules of the voxel loops.
    const std::size_t b = n * std::size_t(t) / std::size_t(nt);
    const std::size_t e = n * std::size_t(t + 1) / std::size_t(nt);
    std::fill(p + b, p + e, v);
  }
}

template void fill_voxels(std::uint8_t*, std::size_t, std::uint8_t);
template void fill_voxels(std::int16_t*, std::size_t, std::int16_t);
template void fill_voxels(std::uint16_t*, std::size_t, std::uint16_t);
template void fill_voxels(std::uint32_t*, std::size_t, std::uint32_t);
template void fill_voxels(float*, std::size_t, float);

}  // namespace lungvol
