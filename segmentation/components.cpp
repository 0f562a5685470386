#include "segmentation/components.hpp"

namespace lungvol::seg {

Components label_components(const MaskImage& mask) {
  const Geometry& g = mask.geom;
  Components out;
  out.labels = Image<std::uint32_t>(g, 0);
  out.sizes.push_back(0);
  std::vector<std::size_t> stack;
  std::uint32_t next = 0;
  for (std::size_t n = 0; n < mask.size(); ++n) {
    if (!mask[n] || out.labels[n]) continue;
    ++next;
    std::uint64_t size = 0;
    stack.clear();
    stack.push_back(n);
    out.labels[n] = next;
    while (!stack.empty()) {
      const std::size_t v = stack.back();
      stack.pop_back();
      ++size;
      for_each_face_neighbour(g, v, [&](std::size_t w) {
        if (mask[w] && !out.labels[w]) {
          out.labels[w] = next;
          stack.push_back(w);
        }
      });
    }
    out.sizes.push_back(size);
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
