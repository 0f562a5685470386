#pragma once
// The pipeline's image types. A deliberate departure from DESIGN.md's itk::Image: a plain
// contiguous buffer plus LPS geometry keeps ITK out of every header (compile time) and lets
// our voxel loops run over raw memory. io/ converts to and from ITK at the file boundary.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

namespace lungvol {

struct Geometry {
  std::array<std::size_t, 3> size{0, 0, 0};  // voxels along i (columns), j (rows), k (slices)
  std::array<double, 3> spacing{1.0, 1.0, 1.0};  // mm
  std::array<double, 3> origin{0.0, 0.0, 0.0};   // LPS mm of voxel (0,0,0)
  // Row-major 3x3; column c is the LPS direction of index axis c.
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};

  std::size_t voxel_count() const { return size[0] * size[1] * size[2]; }
  std::size_t slice_voxels() const { return size[0] * size[1]; }
  double voxel_volume_mm3() const { return spacing[0] * spacing[1] * spacing[2]; }
  double voxel_volume_ml() const { return voxel_volume_mm3() / 1000.0; }
  std::size_t index(std::size_t i, std::size_t j, std::size_t k) const {
    return i + size[0] * (j + size[1] * k);
  }
  std::array<double, 3> to_physical(double i, double j, double k) const;
  // Same grid (size, spacing, origin, direction) within a small tolerance.
  bool same_grid(const Geometry& other, double tol_mm = 1e-3) const;
};

namespace detail {
// Buffers of at least kHugePageBytes come straight from the kernel, 2 MiB aligned and marked
// for transparent huge pages (madvise). With 4 KiB pages every fresh volume cost one page fault
// per 4 KiB (POPI: 178 000 faults, 1.4 s of a 5 s one-thread run in the kernel on this virtual
// machine) and TLB misses in every voxel loop; with huge pages the run takes 2.9 s. Keeping
// freed buffers for reuse was measured too and was slower (docs/benchmarks.md, fourth round).
// Smaller buffers use operator new.
inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;
void* allocate_voxel_bytes(std::size_t bytes);
void free_voxel_bytes(void* p, std::size_t bytes) noexcept;
}  // namespace detail

// Voxel buffers are filled by all threads: a vector's own value-initialisation would touch
// every page of a fresh volume on one thread (page faults and zeroing were a fifth of the CPU
// time, and serial). The allocator leaves new elements uninitialised; fill_voxels writes them.
template <class T>
struct VoxelAllocator : std::allocator<T> {
  static_assert(std::is_trivially_copyable_v<T>);
  template <class U>
  struct rebind {
    using other = VoxelAllocator<U>;
  };
  VoxelAllocator() = default;
  template <class U>
  VoxelAllocator(const VoxelAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(detail::allocate_voxel_bytes(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { detail::free_voxel_bytes(p, n * sizeof(T)); }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <class T>
using VoxelVector = std::vector<T, VoxelAllocator<T>>;

// Sets p[0..n) to v, in parallel for large n. Defined for the voxel types in core/image.cpp.
template <class T>
void fill_voxels(T* p, std::size_t n, T v);

template <class T>
struct Image {
  Geometry geom;
  VoxelVector<T> data;

  Image() = default;
  explicit Image(const Geometry& g, T fill = T{}) : geom(g), data(g.voxel_count()) {
    fill_voxels(data.data(), data.size(), fill);
  }
  // Leaves the voxels uninitialised: for outputs that are written whole anyway.
  struct Uninitialised {};
  Image(const Geometry& g, Uninitialised) : geom(g), data(g.voxel_count()) {}
  T& operator[](std::size_t n) { return data[n]; }
  const T& operator[](std::size_t n) const { return data[n]; }
  T& at(std::size_t i, std::size_t j, std::size_t k) { return data[geom.index(i, j, k)]; }
  const T& at(std::size_t i, std::size_t j, std::size_t k) const {
    return data[geom.index(i, j, k)];
  }
  std::size_t size() const { return data.size(); }
  bool empty() const { return data.empty(); }
};

using CtImage = Image<std::int16_t>;    // Hounsfield units
using LabelImage = Image<std::uint8_t>;  // values from core/labels.hpp
using MaskImage = Image<std::uint8_t>;   // 0 / 1

}  // namespace lungvol
