#pragma once
// Binary morphology on masks (0/1 bytes), exact for balls in millimetres: every operation is a
// threshold on a separable Euclidean distance transform, so its cost does not grow with the
// radius and anisotropic voxels are handled exactly.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/image.hpp"

namespace lungvol::seg {

struct SliceRange {
  std::size_t first = 0, last = 0;  // [first, last)
};
// Inside an OpenMP parallel region: the contiguous slab of the `nz` slices this thread owns
// (all of them outside a parallel region). Slabs let a thread keep a ring of neighbouring
// slices, computed once, while it walks its own slices in order.
SliceRange this_thread_slices(std::size_t nz);

// Calls f(n) for n in [0, count), split over the threads in contiguous halves (the pages each
// thread touched first when the volume was filled, see fill_voxels). Nested inside another
// parallel region it runs on the calling thread.
template <class F>
void for_each_voxel(std::size_t count, F&& f) {
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(count); ++n) f(std::size_t(n));
}

// Squared Euclidean distance (mm^2) from each voxel to the nearest voxel where `feature` is
// non-zero; +inf where there is none. Felzenszwalb & Huttenlocher's lower envelope per axis.
VoxelVector<float> squared_distance_to(const MaskImage& feature);

MaskImage dilate(const MaskImage& mask, double radius_mm);
// Voxels farther than radius_mm from any background voxel; outside the image is not background.
MaskImage erode(const MaskImage& mask, double radius_mm);
MaskImage close(const MaskImage& mask, double radius_mm);
MaskImage open(const MaskImage& mask, double radius_mm);

// Fills, slice by slice (axial, k), background regions not connected to the slice border.
void fill_holes_2d(MaskImage& mask);

// Clears the set pixels of an nx x ny slice that are not 4-connected to the slice border through
// set pixels. Row runs joined by union-find: a few passes over the bytes, instead of a
// pixel-by-pixel flood. `scratch` is reused between calls.
void keep_border_connected_2d(std::size_t nx, std::size_t ny, std::uint8_t* m,
                              std::vector<std::size_t>& scratch);

// In one nx x ny slice: reach[p] = 1 for every pixel with passable(p) that is 4-connected to the
// slice border through passable pixels, 0 elsewhere. `stack` is scratch space.
template <class Passable>
void flood_from_border_2d(std::size_t nx, std::size_t ny, Passable passable,
                          std::vector<std::uint8_t>& reach, std::vector<std::size_t>& stack) {
  reach.resize(nx * ny);
  for (std::size_t p = 0; p < nx * ny; ++p) reach[p] = passable(p) ? 1 : 0;
  keep_border_connected_2d(nx, ny, reach.data(), stack);
}
struct Box {
  std::array<std::size_t, 3> lo{0, 0, 0};
  std::array<std::size_t, 3> hi{0, 0, 0};  // exclusive
  bool empty() const { return hi[0] <= lo[0] || hi[1] <= lo[1] || hi[2] <= lo[2]; }
};
// Bounding box of voxels equal to `value` (any non-zero when value == 0), grown by `margin_mm`
// and clipped to the image.
template <class T>
Box bounding_box(const Image<T>& image, T value, double margin_mm);
template <class T>
Image<T> crop(const Image<T>& image, const Box& box);
// Writes `part` (cropped with `box`) back into `image` where `part` is non-zero.
void paste_nonzero(MaskImage& image, const MaskImage& part, const Box& box, std::uint8_t value);

std::size_t count_nonzero(const MaskImage& mask);

}  // namespace lungvol::seg
