#include "segmentation/lesions.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "segmentation/components.hpp"
#include "segmentation/morphology.hpp"
#include "segmentation/near_feature.hpp"
#include "segmentation/vesselness.hpp"

namespace lungvol::seg {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

// Settings of the shape-based vessel suppression that are properties of CT, not of a protocol
// (measured in docs/validation.md, "Thin ground-glass: vessel suppression by shape").
// A Gaussian-blurred tube reaches about 2 sigma of its best scale from its axis.
constexpr double kZoneSigmas = 2.0;
// A tube is isolated (a vessel) when at most this share of the lung on a sphere just beyond it is
// solid: a vessel leaves that sphere in 2-4 of 26 directions (its two ends, a branch), a ridge
// along a consolidation's edge meets solid tissue on a third or more.
constexpr double kIsolatedSolidShare = 0.2;
// The pleural shell: two voxels of partial volume with the wall (a 3x3x3 mean reaches one voxel,
// the scanner's blur about one more).
constexpr double kShellVoxels = 2.01;
// A vessel's sleeve: its voxels within two in-plane voxels (0.98 mm on POPI) of aerated lung.
constexpr double kAirReachMm = 2.02;
// Growth: two steps into the candidates inside a vessel zone (a tube crossing a lesion is at
// most two voxels wide at its zone's edge), then three by own HU (one anywhere, two more in the
// pleural shell: the shell is two voxels, plus the lesion's own soft edge).
constexpr int kCandidateSteps = 2;
// Seeds (the voxels a lesion grows from) need their lung-only 3x3x3 mean this far inside the
// band. Without it, the gravity-dependent density of a normal lung (a thin subpleural layer
// just above the band's lower end: -700 to -600 HU posteriorly on POPI) has the same shape as
// thin ground-glass and was most of the clean-scan residual (0.85 % of the lung on POPI; 0.44 %
// with 50 HU, 0.20 % with 100 HU). A real lesion's fainter parts are still taken in by growth.
constexpr double kSeedMarginHu = 100;
// The solid component must be thicker than a vessel somewhere: 2 x 4 mm, the rule and radius of
// protocols before 1.2 (their shipped vessel_radius_mm). Shape alone leaves hilar vessel
// junctions (branching, touching the mediastinum: not isolated tubes) as solid; on the phantom
// 5 % of the solid truth. Thin consolidation is a separate question (issue #15's solid bands).
constexpr double kSolidCoreRadiusMm = 4.0;
constexpr int kRimSteps = 3;

// The 26 directions to a voxel's neighbours, as unit vectors.
std::vector<std::array<double, 3>> unit_directions_26() {
  std::vector<std::array<double, 3>> dirs;
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        if (!dx && !dy && !dz) continue;
        const double len = std::sqrt(double(dx * dx + dy * dy + dz * dz));
        dirs.push_back({dx / len, dy / len, dz / len});
      }
  return dirs;
}

// The 3x3x3 mean HU over lung voxels only (separable running sums along i, j, then k of HU and
// of the lung count, each over the neighbours inside the image), for the lung voxels; written
// as the band test: 1 if the mean lies in [lo, hi), 2 if it is at or above hi, 0 otherwise (and
// outside the lung). Only lung voxels count: the chest wall and mediastinum next
// to the pleura would otherwise raise the lung's outermost voxels into the band (a sheet over
// the whole lung surface). The sums of a slice over i and j are computed once into a ring of
// three slices, so no float copy of the volume is made.
MaskImage band_of_smoothed(const CtImage& ct, const LabelImage& lungs, double lo, double hi) {
  const Geometry& g = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  MaskImage region(g, MaskImage::Uninitialised{});  // every voxel is written below
  // Sums over i and j of one slice: hu[v] and count[v].
  auto sum_ij = [&](std::size_t k, std::vector<float>& row_hu, std::vector<float>& row_n,
                    float* out_hu, float* out_n) {
    const std::int16_t* c = ct.data.data() + k * sxy;
    const std::uint8_t* l = lungs.data.data() + k * sxy;
    row_hu.resize(sxy);
    row_n.resize(sxy);
    for (std::size_t j = 0; j < ny; ++j) {
      const std::int16_t* in = c + j * nx;
      const std::uint8_t* m = l + j * nx;
      float* oh = row_hu.data() + j * nx;
      float* on = row_n.data() + j * nx;
      for (std::size_t i = 0; i < nx; ++i) {
        float s = 0, n = 0;
        for (std::size_t a = i ? i - 1 : 0; a <= std::min(i + 1, nx - 1); ++a) {
          if (is_lung(m[a])) {
            s += float(in[a]);
            n += 1;
          }
        }
        oh[i] = s;
        on[i] = n;
      }
    }
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        const std::size_t v = j * nx + i;
        float s = row_hu[v], n = row_n[v];
        if (j > 0) {
          s += row_hu[v - nx];
          n += row_n[v - nx];
        }
        if (j + 1 < ny) {
          s += row_hu[v + nx];
          n += row_n[v + nx];
        }
        out_hu[v] = s;
        out_n[v] = n;
      }
    }
  };
#pragma omp parallel
  {
    const auto [k0, k1] = this_thread_slices(nz);
    std::vector<float> ring(k1 > k0 ? 6 * sxy : 0), scratch_hu, scratch_n;
    std::size_t held[3] = {nz, nz, nz};
    auto slice = [&](std::size_t k) {
      float* p = ring.data() + (k % 3) * 2 * sxy;
      if (held[k % 3] != k) {
        sum_ij(k, scratch_hu, scratch_n, p, p + sxy);
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
        if (!is_lung(lungs[base + v])) {
          region[base + v] = 0;
          continue;
        }
        float s = mid[v], n = mid[sxy + v];
        if (below) {
          s += below[v];
          n += below[sxy + v];
        }
        if (above) {
          s += above[v];
          n += above[sxy + v];
        }
        const float mean = s / n;  // n >= 1: the voxel itself is lung
        region[base + v] = mean >= hi ? 2 : mean >= lo ? 1 : 0;
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
  // Work inside the lungs' bounding box (one voxel wider, so every lung voxel has its
  // neighbours in the box).
  Stopwatch sw;
  const Box box =
      bounding_box(lungs, std::uint8_t(0), std::max({g.spacing[0], g.spacing[1], g.spacing[2]}));
  if (box.empty()) return out;
  const CtImage sub_ct = crop(ct, box);
  const LabelImage sub_lungs = crop(lungs, box);
  const Geometry& sg = sub_ct.geom;
  const double lo = p.low_hu(), hi = p.high_hu(), split = p.split_hu();
  // 1: the lung-only 3x3x3 mean lies in the lesion band, 2: above it, 0: below it or not lung.
  const MaskImage smoothed = band_of_smoothed(sub_ct, sub_lungs, lo, hi);
  log::debug("lesions: smoothing band {:.3f} s", sw.lap());

  // Vessels by shape, not thickness (issue #15): a vessel is a bright tube, a lesion a plate
  // (subpleural band) or a blob. The tube's core is where the multi-scale tube strength
  // reaches the protocol's threshold and the tube is isolated (below); the zone is the core
  // grown by kZoneSigmas x the scale's sigma plus one in-plane voxel, which holds the tube's
  // edge (a Gaussian-blurred disc reaches about 2 sigma from its axis) and the sleeve the 3x3x3
  // mean spreads around it.
  MaskImage core(sg, 0);  // 1 + the index of the tube's scale, 0: no tube core
  MaskImage zone(sg, 0);
  const double widening_mm = std::max(g.spacing[0], g.spacing[1]);
  const std::size_t nscales = std::min<std::size_t>(p.vessel_scales_mm.size(), 255);
  if (nscales > 0) {
    MaskImage active(sg, MaskImage::Uninitialised{});
    for_each_voxel(active.size(), [&](std::size_t n) { active[n] = smoothed[n] != 0; });
    TubeOptions to;
    to.scales_mm.assign(p.vessel_scales_mm.begin(), p.vessel_scales_mm.begin() + std::ptrdiff_t(nscales));
    to.clip_hi_hu = hi;
    const TubeStrength tubes = bright_tube_strength(ct, box, active, to);
    log::debug("lesions: tube strength {:.3f} s", sw.lap());
    const float threshold = float(p.vesselness_threshold_hu);
    const std::vector<std::array<double, 3>> dirs = unit_directions_26();
    const std::ptrdiff_t nx = std::ptrdiff_t(sg.size[0]), ny = std::ptrdiff_t(sg.size[1]),
                         nz = std::ptrdiff_t(sg.size[2]);
#pragma omp parallel for schedule(dynamic, 4)
    for (std::ptrdiff_t k = 0; k < nz; ++k)
      for (std::ptrdiff_t j = 0; j < ny; ++j)
        for (std::ptrdiff_t i = 0; i < nx; ++i) {
          const std::size_t n = sg.index(std::size_t(i), std::size_t(j), std::size_t(k));
          if (!active[n] || tubes.strength[n] < threshold) continue;
          // A tube is a vessel when it is isolated: on a sphere just beyond it, few of the 26
          // directions meet solid-density lung (only where the tube itself and its branches
          // leave). A ridge along the edge of a consolidation or a band, or a septum inside
          // denser tissue, has solid tissue on many sides and is not a vessel.
          const double r = kZoneSigmas * to.scales_mm[tubes.scale[n] - 1u] + widening_mm;
          std::size_t lung = 0, solid = 0;
          for (const auto& d : dirs) {
            const std::ptrdiff_t a = i + std::ptrdiff_t(std::lround(r * d[0] / sg.spacing[0]));
            const std::ptrdiff_t b = j + std::ptrdiff_t(std::lround(r * d[1] / sg.spacing[1]));
            const std::ptrdiff_t c = k + std::ptrdiff_t(std::lround(r * d[2] / sg.spacing[2]));
            if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) continue;
            const std::size_t m = sg.index(std::size_t(a), std::size_t(b), std::size_t(c));
            if (!is_lung(sub_lungs[m])) continue;
            ++lung;
            solid += sub_ct[m] >= split;
          }
          if (lung && double(solid) <= kIsolatedSolidShare * double(lung)) core[n] = tubes.scale[n];
        }
    for (std::size_t s = 0; s < nscales; ++s) {
      const std::uint8_t id = std::uint8_t(s + 1);
      const double reach = kZoneSigmas * to.scales_mm[s] + widening_mm;
      zone = near_feature(
          sg, reach, [&](std::size_t n) { return core[n] == id; },
          [&](std::size_t n, bool near) -> std::uint8_t { return zone[n] || near; });
    }
    log::debug("lesions: vessel zone {:.3f} s", sw.lap());
  }
  const auto in_band = [&](std::size_t n) { return sub_ct[n] >= lo && sub_ct[n] < hi; };
  const auto in_class = [&](std::size_t n, bool solid) {
    const double hu = sub_ct[n];
    return hu >= lo && hu < hi && (hu >= split) == solid;
  };
  // The pleural shell: lung voxels within two voxels of non-lung. Its partial volume with the
  // chest wall and the diaphragm puts a sheet of band voxels over the whole lung surface; it is
  // lesion only where a lesion reaches it from inside (the growth below). Measured in voxels:
  // partial volume spans voxels, whatever their size.
  Geometry unit = sg;
  unit.spacing = {1.0, 1.0, 1.0};
  const MaskImage shell = near_feature(
      unit, kShellVoxels, [&](std::size_t n) { return !is_lung(sub_lungs[n]); },
      [&](std::size_t n, bool near) -> std::uint8_t { return near && is_lung(sub_lungs[n]); });
  // Voxels next to aerated lung (within about two voxels): a vessel's sleeve, where it is not
  // inside a lesion.
  const MaskImage near_air = near_feature(
      sg, kAirReachMm,
      [&](std::size_t n) { return is_lung(sub_lungs[n]) && smoothed[n] == 0; },
      [&](std::size_t, bool near) -> std::uint8_t { return near; });
  // Vessel: in the zone, and the tube's core, solid, or next to aerated lung. The zone's other
  // voxels (ground-glass around a vessel that runs through ground-glass) may be lesion.
  MaskImage vessel(sg, MaskImage::Uninitialised{});
  for_each_voxel(vessel.size(), [&](std::size_t n) {
    vessel[n] = zone[n] && (core[n] || sub_ct[n] >= split || near_air[n]);
  });
  // Candidates: lung voxels in the band by their lung-only mean and by their own HU, neither
  // vessel nor shell. Seeds: the candidates outside the vessel zone whose mean is
  // kSeedMarginHu inside the band, in connected pieces of at least min_lesion_mm3 (a piece
  // smaller than that is noise or a vessel's stub).
  MaskImage candidate(sg, MaskImage::Uninitialised{});
  for_each_voxel(candidate.size(), [&](std::size_t n) {
    candidate[n] = smoothed[n] == 1 && in_band(n) && !vessel[n] && !shell[n];
  });
  // Seeds also need their mean kSeedMarginHu inside the band (see there).
  const MaskImage seed_band = band_of_smoothed(sub_ct, sub_lungs, lo + kSeedMarginHu, hi);
  MaskImage region(sg, MaskImage::Uninitialised{});
  for_each_voxel(region.size(), [&](std::size_t n) {
    region[n] = candidate[n] && !zone[n] && seed_band[n] == 1;
  });
  remove_small_components(region, std::uint64_t(std::ceil(p.min_lesion_mm3 / g.voxel_volume_mm3())));
  // Each step takes in the voxels next to the region (within one voxel diagonal) of the same
  // class as the region voxels next to them: a ground-glass lesion gets its fainter edge back,
  // not the solid vessel that passes it. First into the candidates (the seeds' parts inside a
  // vessel zone), then by own HU alone: one step anywhere (the lesion's outermost voxels, which
  // the mean pulls out of the band), more in the shell (a subpleural band's outer part).
  const double rim_mm = 1.01 * std::max({g.spacing[0], g.spacing[1], g.spacing[2]});
  const auto grow = [&](auto admit) {
    for (const bool solid : {false, true}) {
      region = near_feature(
          sg, rim_mm, [&](std::size_t n) { return region[n] && in_class(n, solid); },
          [&](std::size_t n, bool near) -> std::uint8_t {
            return region[n] || (near && in_class(n, solid) && admit(n));
          });
    }
  };
  for (int step = 0; step < kCandidateSteps; ++step) grow([&](std::size_t n) { return candidate[n] != 0; });
  for (int step = 0; step < kRimSteps; ++step) {
    grow([&](std::size_t n) {
      return !vessel[n] && is_lung(sub_lungs[n]) && (step == 0 || shell[n]);
    });
  }
  log::debug("lesions: region {:.3f} s", sw.lap());

  // Solid means solid tissue thicker than a vessel: a vessel touching or crossing a lesion (or
  // a hilar vessel junction, which is neither an isolated tube nor thin) lies inside the region
  // but is not its solid component. A connected piece of raw-HU solid voxels counts as solid
  // only if some part of it survives an opening with kSolidCoreRadiusMm; the rest is
  // suppressed like any vessel. Keeping whole pieces, not just the opened core, keeps the solid
  // lesions' edges and caps. A piece holds a voxel of the opening exactly when it holds a voxel
  // of the erosion (the erosion is part of the opening, and each voxel of the opening lies in
  // the ball of an eroded voxel, wholly inside the mask and 6-connected to its centre), so the
  // erosion alone decides.
  MaskImage solid_kept(sg, MaskImage::Uninitialised{});  // every voxel written
  for_each_voxel(solid_kept.size(), [&](std::size_t n) {
    solid_kept[n] = region[n] && sub_ct[n] >= split && sub_ct[n] < hi;
  });
  {
    const MaskImage eroded = erode(solid_kept, kSolidCoreRadiusMm);
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
    for_each_voxel(solid_kept.size(), [&](std::size_t n) {
      solid_kept[n] = solid_kept[n] && thick[pieces.labels[n]];
    });
  }
  log::debug("lesions: solid pieces {:.3f} s", sw.lap());

  // Classify straight into the full-size outputs (no cropped copies to paste back).
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
        if (region[n] && (hu < split || solid_kept[n])) {
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
