#include "segmentation/components.hpp"

#include <algorithm>

namespace lungvol::seg {
namespace {

// Union-find over provisional labels; parent[x] == x for roots. Roots keep the smallest label
// of their set, so the final numbering follows raster order of first appearance.
std::uint32_t find_root(std::vector<std::uint32_t>& parent, std::uint32_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

void unite(std::vector<std::uint32_t>& parent, std::uint32_t a, std::uint32_t b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a == b) return;
  if (a < b) {
    parent[b] = a;
  } else {
    parent[a] = b;
  }
}

}  // namespace

// Two raster passes (provisional labels from the -i, -j, -k neighbours, then resolution):
// memory is walked in order, unlike a flood fill's scattered stack.
Components label_components(const MaskImage& mask) {
  const Geometry& g = mask.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  Components out;
  out.labels = Image<std::uint32_t>(g, 0);
  std::vector<std::uint32_t> parent{0};
  auto& lab = out.labels.data;
  for (std::size_t k = 0; k < nz; ++k) {
    for (std::size_t j = 0; j < ny; ++j) {
      const std::size_t row = k * sxy + j * nx;
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t v = row + i;
        if (!mask[v]) continue;
        std::uint32_t l = 0;
        const std::uint32_t west = i > 0 ? lab[v - 1] : 0;
        const std::uint32_t north = j > 0 ? lab[v - nx] : 0;
        const std::uint32_t below = k > 0 ? lab[v - sxy] : 0;
        for (std::uint32_t n : {west, north, below}) {
          if (!n) continue;
          if (!l) {
            l = n;
          } else if (n != l) {
            unite(parent, l, n);
          }
        }
        if (!l) {
          l = static_cast<std::uint32_t>(parent.size());
          parent.push_back(l);
        }
        lab[v] = l;
      }
    }
  }
  // Final ids 1..n in order of each set's smallest provisional label (= raster order).
  std::vector<std::uint32_t> final_id(parent.size(), 0);
  std::uint32_t next = 0;
  for (std::uint32_t p = 1; p < parent.size(); ++p) {
    const std::uint32_t r = find_root(parent, p);
    if (!final_id[r]) final_id[r] = ++next;
    final_id[p] = final_id[r];
  }
  out.sizes.assign(std::size_t(next) + 1, 0);
  for (std::size_t v = 0; v < lab.size(); ++v) {
    if (lab[v]) {
      lab[v] = final_id[lab[v]];
      ++out.sizes[lab[v]];
    }
  }
  return out;
}

void remove_small_components(MaskImage& mask, std::uint64_t min_voxels) {
  const Components c = label_components(mask);
  for (std::size_t n = 0; n < mask.size(); ++n) {
    if (mask[n] && c.sizes[c.labels[n]] < min_voxels) mask[n] = 0;
  }
}

}  // namespace lungvol::seg
