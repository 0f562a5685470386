#include "segmentation/lesions.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "segmentation/components.hpp"
#include "segmentation/morphology.hpp"
#include "segmentation/near_feature.hpp"

namespace lungvol::seg {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

// Lung voxels whose 3x3x3 mean HU (separable running means along i, j, then k, each over the
// neighbours inside the image) lies in [lo, hi). The mean of a slice over i and j is computed
// once into a ring of three slices, so no float copy of the volume is made; the float
// operations are those of a whole-volume pass, in the same order.
MaskImage band_of_smoothed(const CtImage& ct, const LabelImage& lungs, double lo, double hi) {
  const Geometry& g = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  MaskImage region(g, MaskImage::Uninitialised{});  // every voxel is written below
  auto mean_ij = [&](std::size_t k, std::vector<float>& row_mean, float* out) {
    const std::int16_t* c = ct.data.data() + k * sxy;
    row_mean.resize(sxy);
    for (std::size_t j = 0; j < ny; ++j) {
      const std::int16_t* in = c + j * nx;
      float* o = row_mean.data() + j * nx;
      for (std::size_t i = 0; i < nx; ++i) {
        float s = float(in[i]);
        int cnt = 1;
        if (i > 0) {
          s += float(in[i - 1]);
          ++cnt;
        }
        if (i + 1 < nx) {
          s += float(in[i + 1]);
          ++cnt;
        }
        o[i] = s / float(cnt);
      }
    }
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t v = j * nx + i;
        float s = row_mean[v];
        int cnt = 1;
        if (j > 0) {
          s += row_mean[v - nx];
          ++cnt;
        }
        if (j + 1 < ny) {
          s += row_mean[v + nx];
          ++cnt;
        }
        out[v] = s / float(cnt);
      }
    }
  };
#pragma omp parallel
  {
    const auto [k0, k1] = this_thread_slices(nz);
    std::vector<float> ring(k1 > k0 ? 3 * sxy : 0), scratch;
    std::size_t held[3] = {nz, nz, nz};
    auto slice = [&](std::size_t k) {
      float* p = ring.data() + (k % 3) * sxy;
      if (held[k % 3] != k) {
        mean_ij(k, scratch, p);
        held[k % 3] = k;
      }
      return static_cast<const float*>(p);
    };
    for (std::size_t k = k0; k < k1; ++k) {
      const float* below = k > 0 ? slice(k - 1) : nullptr;
      const float* above = k + 1 < nz ? slice(k + 1) : nullptr;
      const float* mid = slice(k);
      const std::size_t base = k * sxy;
      for (std::size_t v = 0; v < sxy; ++v) {
        float s = mid[v];
        if (nz > 1) {
          int cnt = 1;
          if (below) {
            s += below[v];
            ++cnt;
          }
          if (above) {
            s += above[v];
            ++cnt;
          }
          s = s / float(cnt);
        }
        region[base + v] = is_lung(lungs[base + v]) && s >= lo && s < hi;
      }
    }
  }
  return region;
}

}  // namespace

LesionSegmentation segment_lesions(const CtImage& ct, const LabelImage& lungs,
                                   const LesionParams& p) {
  const Geometry& g = ct.geom;
  LesionSegmentation out;
  out.lesions = LabelImage(g, labels::kNoLesion);
  out.suppressed = MaskImage(g, 0);
  // Work inside the lungs' bounding box only.
  Stopwatch sw;
  Box box = bounding_box(lungs, std::uint8_t(0), 0.0);
  if (box.empty()) return out;
  const CtImage sub_ct = crop(ct, box);
  const LabelImage sub_lungs = crop(lungs, box);
  const double lo = p.low_hu(), hi = p.high_hu();
  MaskImage region = band_of_smoothed(sub_ct, sub_lungs, lo, hi);
  log::debug("lesions: smoothing band {:.3f} s", sw.lap());
  if (p.vessel_radius_mm > 0) {
    // The 3x3x3 mean widens every vessel by about one voxel in-plane: a 40 HU vessel's
    // neighbours average into the lesion band. Without compensating, the opening would keep
    // vessels from vessel_radius_mm minus a voxel upwards (measured on the phantom: hilar vessel
    // junctions counted as 9 % extra solid; on POPI, most of the residual "lesion").
    const double widening_mm = std::max(g.spacing[0], g.spacing[1]);
    region = open(region, p.vessel_radius_mm + widening_mm);
  }
  log::debug("lesions: opening {:.3f} s", sw.lap());
  const double voxel_mm3 = g.voxel_volume_mm3();
  remove_small_components(region, std::uint64_t(std::ceil(p.min_lesion_mm3 / voxel_mm3)));
  log::debug("lesions: small regions {:.3f} s", sw.lap());
  // Smoothing pulls a lesion's outermost voxels out of the band; take back the voxels next to
  // the region whose own HU is in the band, of the same class as the region next to them: a
  // ground-glass lesion gets its fainter edge back, not the solid vessel that passes it.
  const double rim_mm = 1.01 * std::max({g.spacing[0], g.spacing[1], g.spacing[2]});
  const double split_hu = p.split_hu();
  const auto in_class = [&](std::size_t n, bool solid) {
    const double hu = sub_ct[n];
    return hu >= lo && hu < hi && (hu >= split_hu) == solid;
  };
  // One class at a time, each a single pass: the class's region voxels are the features, and
  // the voxels of that class near them join. The solid pass still reads the region before any
  // rim (the ground-glass rim adds no solid voxel, so its features are unchanged).
  const auto with_rim = [&](const MaskImage& from, bool solid) {
    return near_feature(
        sub_ct.geom, rim_mm, [&](std::size_t n) { return region[n] && in_class(n, solid); },
        [&](std::size_t n, bool near) {
          return from[n] || (near && is_lung(sub_lungs[n]) && in_class(n, solid));
        });
  };
  const MaskImage with_ggo_rim = with_rim(region, false);
  region = with_rim(with_ggo_rim, true);

  log::debug("lesions: rim {:.3f} s", sw.lap());
  // Solid means solid tissue thicker than a vessel: a vessel touching or crossing a
  // ground-glass lesion lies inside the region but is not its solid component. A connected
  // piece of raw-HU solid voxels counts as solid only if some part of it is thicker than a
  // vessel (survives the opening with the vessel radius; no smoothing here, so no widening);
  // the rest is suppressed like any vessel. Keeping whole pieces, not just the opened core,
  // keeps the solid lesions' edges and caps.
  // A piece holds a voxel of the opening exactly when it holds a voxel of the erosion: the
  // erosion is part of the opening, and each voxel of the opening lies in the ball of an eroded
  // voxel, a ball wholly inside the mask and 6-connected to its centre. So the erosion alone
  // decides, and the opening's dilation is never computed.
  MaskImage solid_kept;
  if (p.vessel_radius_mm > 0) {
    solid_kept = MaskImage(region.geom, MaskImage::Uninitialised{});  // every voxel written
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(region.size()); ++n) {
      solid_kept[n] = region[n] && sub_ct[n] >= split_hu && sub_ct[n] < hi;
    }
    const MaskImage eroded = erode(solid_kept, p.vessel_radius_mm);
    const Components pieces = label_components(solid_kept);
    std::vector<std::uint8_t> thick(pieces.count() + 1, 0);
#pragma omp parallel
    {
      std::vector<std::uint8_t> mine(thick.size(), 0);
#pragma omp for schedule(static)
      for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(eroded.size()); ++n) {
        if (eroded[std::size_t(n)]) mine[pieces.labels[std::size_t(n)]] = 1;
      }
#pragma omp critical(lungvol_thick_pieces)
      for (std::size_t id = 0; id < thick.size(); ++id) thick[id] |= mine[id];
    }
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(region.size()); ++n) {
      solid_kept[n] = solid_kept[n] && thick[pieces.labels[n]];
    }
  }

  log::debug("lesions: solid pieces {:.3f} s", sw.lap());
  // Classify straight into the full-size outputs (no cropped copies to paste back).
  const double split = split_hu;
  const Geometry& sg = sub_ct.geom;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(sg.size[2]); ++kk) {
    const std::size_t k = std::size_t(kk);
    for (std::size_t j = 0; j < sg.size[1]; ++j) {
      const std::size_t n0 = sg.index(0, j, k);
      const std::size_t m0 = g.index(box.lo[0], box.lo[1] + j, box.lo[2] + k);
      for (std::size_t i = 0; i < sg.size[0]; ++i) {
        const std::size_t n = n0 + i;
        if (!is_lung(sub_lungs[n])) continue;
        const double hu = sub_ct[n];
        if (hu < lo || hu >= hi) continue;
        if (region[n] && (hu < split || solid_kept.empty() || solid_kept[n])) {
          out.lesions[m0 + i] = hu < split ? labels::kGroundGlass : labels::kSolid;
        } else {
          out.suppressed[m0 + i] = 1;
        }
      }
    }
  }
  log::debug("lesions: classify {:.3f} s", sw.lap());
  return out;
}

}  // namespace lungvol::seg
