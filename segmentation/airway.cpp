#include "segmentation/airway.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/log.hpp"
#include "segmentation/lungs.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {
namespace {

// Geometry of the tracking, in mm / mm^2: the adult trachea is 15-25 mm wide and main bronchi
// 10-16 mm, so a cross-section larger than kMaxAreaMm2 or growing by kLeakGrowth between slices
// has leaked into the lung.
constexpr double kMinSeedAreaMm2 = 30;
constexpr double kMaxSeedAreaMm2 = 700;
constexpr double kMaxAreaMm2 = 900;
constexpr double kLeakGrowth = 2.2;
constexpr double kBronchusLengthMm = 35;   // tracked below the carina
constexpr double kMaxTracheaLengthMm = 220;

struct Region2d {
  std::vector<std::size_t> pixels;  // in-slice indices
  double cx = 0;
};

}  // namespace

AirwayResult segment_airway(const CtImage& ct, const MaskImage& air, double midline_i,
                            const LungParams&) {
  const Geometry& g = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  const double pixel_mm2 = g.spacing[0] * g.spacing[1];
  AirwayResult result;
  result.mask = MaskImage(g, 0);
  const int step = -superior_step(g);  // walk from head to feet
  const std::ptrdiff_t k_first = step > 0 ? 0 : std::ptrdiff_t(nz) - 1;

  auto lumen = [&](std::size_t k, std::size_t pix) {
    const std::size_t n = k * sxy + pix;
    return air[n] != 0;
  };
  std::vector<std::uint8_t> seen(sxy);
  auto flood = [&](std::size_t k, std::size_t start) {
    Region2d r;
    std::vector<std::size_t> stack{start};
    seen[start] = 1;
    double sx = 0;
    while (!stack.empty()) {
      const std::size_t q = stack.back();
      stack.pop_back();
      r.pixels.push_back(q);
      sx += double(q % nx);
      const std::size_t i = q % nx, j = q / nx;
      auto visit = [&](std::size_t w) {
        if (!seen[w] && lumen(k, w)) {
          seen[w] = 1;
          stack.push_back(w);
        }
      };
      if (i > 0) visit(q - 1);
      if (i + 1 < nx) visit(q + 1);
      if (j > 0) visit(q - nx);
      if (j + 1 < ny) visit(q + nx);
    }
    r.cx = sx / double(r.pixels.size());
    return r;
  };

  // 1. Seed: the first cranial slice with a small, central lumen.
  std::vector<Region2d> current;
  std::ptrdiff_t k = k_first;
  for (; k >= 0 && k < std::ptrdiff_t(nz); k += step) {
    std::fill(seen.begin(), seen.end(), 0);
    const double centre = midline_i;
    Region2d best;
    double best_dist = 1e30;
    for (std::size_t q = 0; q < sxy; ++q) {
      if (seen[q] || !lumen(std::size_t(k), q)) continue;
      Region2d r = flood(std::size_t(k), q);
      const double area = double(r.pixels.size()) * pixel_mm2;
      const double dist = std::abs(r.cx - centre) * g.spacing[0];
      if (area >= kMinSeedAreaMm2 && area <= kMaxSeedAreaMm2 && dist < 40.0 && dist < best_dist) {
        best = std::move(r);
        best_dist = dist;
      }
    }
    if (!best.pixels.empty()) {
      log::debug("airway: trachea seed on slice {} ({:.0f} mm2)", k,
                 double(best.pixels.size()) * pixel_mm2);
      current.push_back(std::move(best));
      break;
    }
  }
  if (current.empty()) {
    result.warnings.push_back("trachea not found in the cranial slices; no airway excluded");
    return result;
  }

  // 2. Follow the lumen caudally, stopping a branch when its cross-section explodes.
  double tracked_mm = 0;
  double below_carina_mm = -1;
  while (true) {
    for (const auto& r : current) {
      for (std::size_t q : r.pixels) result.mask[std::size_t(k) * sxy + q] = 1;
    }
    const std::ptrdiff_t next = k + step;
    if (next < 0 || next >= std::ptrdiff_t(nz)) break;
    tracked_mm += g.spacing[2];
    if (below_carina_mm >= 0) below_carina_mm += g.spacing[2];
    if (tracked_mm > kMaxTracheaLengthMm || below_carina_mm > kBronchusLengthMm) break;
    std::fill(seen.begin(), seen.end(), 0);
    std::vector<Region2d> following;
    for (const auto& parent : current) {
      for (std::size_t q : parent.pixels) {
        if (seen[q] || !lumen(std::size_t(next), q)) continue;
        Region2d r = flood(std::size_t(next), q);
        const double area = double(r.pixels.size()) * pixel_mm2;
        const double parent_area = double(parent.pixels.size()) * pixel_mm2;
        if (area > kMaxAreaMm2 || area > kLeakGrowth * parent_area + 4 * pixel_mm2) {
          log::debug("airway: slice {} branch stops ({:.0f} mm2 after {:.0f} mm2)", next, area,
                     parent_area);
          continue;
        }
        following.push_back(std::move(r));
      }
    }
    // Ignore specks (noise) once the main lumen is being followed.
    following.erase(std::remove_if(following.begin(), following.end(),
                                   [&](const Region2d& r) {
                                     return double(r.pixels.size()) * pixel_mm2 < 5.0;
                                   }),
                    following.end());
    if (following.empty()) break;
    if (following.size() >= 2 && below_carina_mm < 0) {
      below_carina_mm = 0;
      result.carina_found = true;
    }
    current = std::move(following);
    k = next;
  }
  if (!result.carina_found) {
    result.warnings.push_back("carina not found; airway limited to the trachea");
  }
  // Take the partial-volume rim of the airway wall with the lumen, but only air voxels.
  const Box box = bounding_box(result.mask, std::uint8_t(1), 4.0);
  if (!box.empty()) {
    const MaskImage sub = crop(result.mask, box);
    const double rim = std::max(g.spacing[0], g.spacing[1]) * 1.5;
    MaskImage grown = dilate(sub, rim);
    const MaskImage sub_air = crop(air, box);
    for (std::size_t n = 0; n < grown.size(); ++n) grown[n] = grown[n] && sub_air[n];
    paste_nonzero(result.mask, grown, box, 1);
  }
  return result;
}

}  // namespace lungvol::seg
