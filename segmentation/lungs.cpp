#include "segmentation/lungs.hpp"

#include <algorithm>
#include <functional>
#include <array>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <limits>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "segmentation/airway.hpp"
#include "segmentation/components.hpp"
#include "segmentation/costal.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::seg {
namespace {

// Low-density voxels connected, within their axial slice, to the slice border: outside air,
// the gap under the table and FOV padding. Everything else is "inside" the patient.
// One pass per axial slice: low-density voxels connected, within their slice, to the slice
// border are outside (outside air, the gap under the table, FOV padding); the other low voxels
// are air inside the patient. Also sums the body's voxel positions for its midline.
struct BodyAir {
  MaskImage outside;
  MaskImage air;         // inside-the-body air
  double midline_x = 0;  // LPS x of the body's centroid
};

BodyAir find_body_air(const CtImage& ct, double air_max_hu) {
  const Geometry& g = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  BodyAir r{MaskImage(g, 0), MaskImage(g, 0), 0.0};
  double sum_i = 0;
  std::uint64_t count = 0;
#pragma omp parallel reduction(+ : sum_i, count)
  {
    std::vector<std::uint8_t> reach;
    std::vector<std::size_t> stack;
#pragma omp for schedule(dynamic, 2)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
      const std::size_t base = std::size_t(kk) * sxy;
      const std::int16_t* c = ct.data.data() + base;
      flood_from_border_2d(nx, ny, [&](std::size_t q) { return c[q] < air_max_hu; }, reach, stack);
      std::uint8_t* out = r.outside.data.data() + base;
      std::uint8_t* air = r.air.data.data() + base;
      for (std::size_t q = 0; q < sxy; ++q) {
        out[q] = reach[q];
        air[q] = !reach[q] && c[q] < air_max_hu;
        if (!reach[q]) {
          sum_i += double(q % nx);
          ++count;
        }
      }
    }
  }
  const double ci = count ? sum_i / double(count) : double(nx) / 2;
  r.midline_x = g.to_physical(ci, double(ny) / 2, double(nz) / 2)[0];
  return r;
}

struct Blob {
  std::uint32_t id = 0;
  std::uint64_t voxels = 0;
  std::array<double, 3> centroid{0, 0, 0};  // physical LPS mm
  double left_fraction = 0;  // fraction of voxels on the patient's left of the body midline
};

std::vector<Blob> describe(const Components& c, double midline_x) {
  const std::size_t nc = c.sizes.size();
  std::vector<Blob> blobs(nc);
  // Integer index sums: exact, so the per-thread partial sums add up to the serial result.
  std::vector<std::array<std::uint64_t, 3>> sum(nc, {0, 0, 0});
  std::vector<std::uint64_t> left(nc, 0);
  const Geometry& g = c.labels.geom;
  // Physical x is linear in the index: x = x0 + dxi*i + dxj*j + dxk*k.
  const double x0 = g.origin[0];
  const double dxi = g.direction[0] * g.spacing[0];
  const double dxj = g.direction[1] * g.spacing[1];
  const double dxk = g.direction[2] * g.spacing[2];
#pragma omp parallel
  {
    std::vector<std::array<std::uint64_t, 3>> my_sum(nc, {0, 0, 0});
    std::vector<std::uint64_t> my_left(nc, 0);
    const auto [k0, k1] = this_thread_slices(g.size[2]);
    for (std::size_t k = k0; k < k1; ++k) {
      for (std::size_t j = 0; j < g.size[1]; ++j) {
        std::size_t n = g.index(0, j, k);
        for (std::size_t i = 0; i < g.size[0]; ++i, ++n) {
          const auto id = c.labels[n];
          if (!id) continue;
          my_sum[id][0] += i;
          my_sum[id][1] += j;
          my_sum[id][2] += k;
          if (x0 + dxi * double(i) + dxj * double(j) + dxk * double(k) > midline_x) ++my_left[id];
        }
      }
    }
#pragma omp critical(lungvol_describe)
    for (std::size_t id = 1; id < nc; ++id) {
      for (int a = 0; a < 3; ++a) sum[id][a] += my_sum[id][a];
      left[id] += my_left[id];
    }
  }
  for (std::size_t id = 1; id < c.sizes.size(); ++id) {
    Blob& b = blobs[id];
    b.id = std::uint32_t(id);
    b.voxels = c.sizes[id];
    const double s = double(std::max<std::uint64_t>(1, b.voxels));
    b.centroid = g.to_physical(double(sum[id][0]) / s, double(sum[id][1]) / s,
                               double(sum[id][2]) / s);
    b.left_fraction = double(left[id]) / s;
  }
  blobs.erase(blobs.begin());
  std::sort(blobs.begin(), blobs.end(),
            [](const Blob& a, const Blob& b) { return a.voxels > b.voxels; });
  return blobs;
}

// Splits one component holding both lungs: erode until two large parts appear, then give every
// voxel to the nearer part (multi-source breadth-first search inside the mask).
bool split_touching_lungs(const MaskImage& mask, Image<std::uint32_t>& out_labels,
                          double midline_x) {
  MaskImage background(mask.geom, 0);
  for_each_voxel(mask.size(), [&](std::size_t n) { background[n] = !mask[n]; });
  const auto dist2 = squared_distance_to(background);
  const std::size_t total = count_nonzero(mask);
  for (double r : {1.5, 2.5, 3.5, 5.0, 7.0, 9.0, 12.0, 15.0}) {
    MaskImage core(mask.geom, 0);
    const float r2 = float(r * r);
    for_each_voxel(mask.size(), [&](std::size_t n) { core[n] = mask[n] && dist2[n] > r2; });
    Components c = label_components(core);
    auto blobs = describe(c, midline_x);
    if (blobs.size() < 2) continue;
    std::uint64_t core_total = 0;
    for (const auto& b : blobs) core_total += b.voxels;
    if (double(blobs[1].voxels) < 0.15 * double(core_total)) continue;
    if ((blobs[0].centroid[0] - midline_x) * (blobs[1].centroid[0] - midline_x) >= 0) continue;
    // Grow the two cores back over the mask.
    out_labels = Image<std::uint32_t>(mask.geom, 0);
    std::deque<std::size_t> queue;
    for (std::size_t n = 0; n < mask.size(); ++n) {
      const auto id = c.labels[n];
      if (id == blobs[0].id || id == blobs[1].id) {
        out_labels[n] = id == blobs[0].id ? 1 : 2;
        queue.push_back(n);
      }
    }
    while (!queue.empty()) {
      const std::size_t v = queue.front();
      queue.pop_front();
      for_each_face_neighbour(mask.geom, v, [&](std::size_t w) {
        if (mask[w] && !out_labels[w]) {
          out_labels[w] = out_labels[v];
          queue.push_back(w);
        }
      });
    }
    (void)total;
    return true;
  }
  return false;
}

// Axial hole filling that leaves the diaphragm dome out: near the lung base the liver or spleen
// dome is a soft-tissue island enclosed by lung in axial slices. Holes up to kSmallHoleMm2 per
// slice (vessels, small lesions) are always filled; a larger hole only when it lies above the
// lung's own base (drop_regions_below_floor).
constexpr double kSmallHoleMm2 = 400;

// Removes from `region` its 3-D components that lie mostly below the diaphragm limit `floor`
// (per column of the grid, the lowest height - k times the superior step - the lung may have
// there), keeping small ones (at most `keep_area_mm2` in every slice) wherever they lie. Near
// the lung base the liver or spleen dome pokes up into the lung and is enclosed by it in axial
// slices; in its columns the lung lies only above it. A lesion enclosed by lung has lung below
// it in its columns.
std::size_t drop_regions_below_floor(MaskImage& region, const std::vector<std::int32_t>& floor,
                                     int superior, double keep_area_mm2 = 0) {
  const Geometry& g = region.geom;
  const std::size_t sxy = g.slice_voxels();
  const Components c = label_components(region);
  const std::size_t nc = c.sizes.size();
  if (nc <= 1) return 0;
  std::vector<std::uint64_t> max_area(nc, 0), area(nc, 0), below(nc, 0);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    std::fill(area.begin(), area.end(), 0);
    const std::int32_t h = std::int32_t(k) * superior;
    for (std::size_t p = 0; p < sxy; ++p) {
      const auto id = c.labels[k * sxy + p];
      if (!id) continue;
      ++area[id];
      if (h < floor[p]) ++below[id];
    }
    for (std::size_t id = 1; id < nc; ++id) max_area[id] = std::max(max_area[id], area[id]);
  }
  const double pixel_mm2 = g.spacing[0] * g.spacing[1];
  std::vector<std::uint8_t> keep(nc, 0);
  for (std::size_t id = 1; id < nc; ++id) {
    keep[id] = double(max_area[id]) * pixel_mm2 <= keep_area_mm2 || 2 * below[id] < c.sizes[id];
  }
  std::size_t dropped = 0;
  for (std::size_t id = 1; id < nc; ++id) dropped += keep[id] ? 0 : c.sizes[id];
  for_each_voxel(region.size(), [&](std::size_t n) {
    if (c.labels[n] && !keep[c.labels[n]]) region[n] = 0;
  });
  return dropped;
}

// Drops the regions of `region` (a box at `box` of a full grid `full`) that come within
// kFovEdgeVoxels of the full grid's in-plane border: there the field of view cuts the body, the
// ribs beyond are unseen, and a bay cannot be told from the chest wall (CIP ct-64's lateral
// wall lies on the image edge: a 12 mm crescent of intercostal tissue had been admitted).
// Returns the voxels dropped.
constexpr std::size_t kFovEdgeVoxels = 2;
std::size_t drop_regions_at_fov_edge(MaskImage& region, const Box& box, const Geometry& full) {
  const Geometry& g = region.geom;
  const Components c = label_components(region);
  const std::size_t nc = c.sizes.size();
  if (nc <= 1) return 0;
  std::vector<std::uint8_t> edge(nc, 0);
  const auto near_edge = [&](std::size_t v, std::size_t n) {
    return v < kFovEdgeVoxels || v + kFovEdgeVoxels >= n;
  };
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const auto id = c.labels[g.index(i, j, k)];
        if (id && (near_edge(box.lo[0] + i, full.size[0]) || near_edge(box.lo[1] + j, full.size[1]))) {
          edge[id] = 1;
        }
      }
    }
  }
  std::size_t dropped = 0;
  for (std::size_t id = 1; id < nc; ++id) dropped += edge[id] ? c.sizes[id] : 0;
  if (dropped == 0) return 0;
  for_each_voxel(region.size(), [&](std::size_t n) {
    if (c.labels[n] && edge[c.labels[n]]) region[n] = 0;
  });
  return dropped;
}

void fill_lung_holes(MaskImage& lung, const std::vector<std::int32_t>& floor, int superior) {
  MaskImage holes = lung;
  fill_holes_2d(holes);
  for_each_voxel(lung.size(), [&](std::size_t n) { holes[n] = holes[n] && !lung[n]; });
  if (count_nonzero(holes) == 0) return;
  drop_regions_below_floor(holes, floor, superior, kSmallHoleMm2);
  for_each_voxel(lung.size(), [&](std::size_t n) {
    if (holes[n]) lung[n] = 1;
  });
}

// Downsampling of a mask by integer factors (the coarse grid of the closing): a coarse voxel is
// set by majority vote, or when `any` of its fine voxels is set. `fine(n)` is the fine voxel at
// index n (a mask's value, or a test on the CT), so no fine mask need exist.
template <class Fine>
MaskImage downsample_by(const Geometry& s, const std::array<std::size_t, 3>& f, bool any,
                        Fine fine) {
  Geometry g = s;
  for (int a = 0; a < 3; ++a) {
    g.size[a] = (s.size[a] + f[a] - 1) / f[a];
    g.spacing[a] = s.spacing[a] * double(f[a]);
  }
  MaskImage out(g, MaskImage::Uninitialised{});
#pragma omp parallel
  {
    std::vector<std::uint32_t> count(g.size[0]), total(g.size[0]);
#pragma omp for schedule(static)
    for (std::ptrdiff_t r = 0; r < std::ptrdiff_t(g.size[1] * g.size[2]); ++r) {
      const std::size_t jc = std::size_t(r) % g.size[1], kc = std::size_t(r) / g.size[1];
      std::fill(count.begin(), count.end(), 0);
      std::fill(total.begin(), total.end(), 0);
      for (std::size_t k = kc * f[2]; k < std::min(s.size[2], (kc + 1) * f[2]); ++k) {
        for (std::size_t j = jc * f[1]; j < std::min(s.size[1], (jc + 1) * f[1]); ++j) {
          const std::size_t row = s.index(0, j, k);
          for (std::size_t i = 0; i < s.size[0]; ++i) {
            count[i / f[0]] += fine(row + i) ? 1u : 0u;
            ++total[i / f[0]];
          }
        }
      }
      std::uint8_t* o = &out.at(0, jc, kc);
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        o[i] = any ? count[i] > 0 : (2 * count[i] >= total[i] && count[i] > 0);
      }
    }
  }
  return out;
}

MaskImage downsample(const MaskImage& m, const std::array<std::size_t, 3>& f, bool any) {
  const std::uint8_t* d = m.data.data();
  return downsample_by(m.geom, f, any, [d](std::size_t n) { return d[n] != 0; });
}

// Brings dense lesions back into one lung: 2-D hole filling, then a closing with a ball of
// closing_radius_mm (the "rolling ball" along the pleura) on a grid of about 2 mm, admitting
// only voxels that are inside the patient, not bone (HU below fill_max_hu), not airway, not the
// other lung, not in the hilum (within kHilumMm of the main bronchi or in the medial, central
// part of the slice), where a closing would take in the pulmonary arteries and veins, and only
// along the chest wall (within chest_wall_mm of bone), so that the diaphragm dome and the
// cardiac notch are not filled.
constexpr double kHilumMm = 30.0;
// Half-width of the opening of the lungs' base heights (open_base_heights): consolidations on the
// diaphragm up to about twice this across (a 100 mL sphere is 58 mm) no longer lift the
// diaphragm limit with them.
constexpr double kDomeLesionMm = 30.0;

// Per-slice extent of a lung. The hilum is the medial third of the lung's width within the
// central half of its antero-posterior depth: a closing there would take in the hilar vessels.
struct SliceExtent {
  std::size_t imin = 0, imax = 0, jmin = 0, jmax = 0;
  bool empty = true;
  bool in_hilum(std::size_t i, std::size_t j, bool medial_plus_i) const {
    const double w = double(imax - imin) / 3.0;
    const bool medial = medial_plus_i ? double(i) > double(imax) - w : double(i) < double(imin) + w;
    const double d = double(jmax - jmin) / 4.0;
    return medial && double(j) > double(jmin) + d && double(j) < double(jmax) - d;
  }
};

SliceExtent slice_extent(const MaskImage& m, std::size_t k) {
  SliceExtent e;
  const Geometry& g = m.geom;
  e.imin = g.size[0];
  e.jmin = g.size[1];
  for (std::size_t j = 0; j < g.size[1]; ++j) {
    const std::uint8_t* row = &m.at(0, j, k);
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      if (!row[i]) continue;
      e.imin = std::min(e.imin, i);
      e.imax = std::max(e.imax, i);
      e.jmin = std::min(e.jmin, j);
      e.jmax = std::max(e.jmax, j);
      e.empty = false;
    }
  }
  return e;
}
constexpr double kCoarseMm = 2.0;

// Distances (mm^2, on a coarse grid of about kCoarseMm) to bone and to the main bronchi: they
// only gate whole bays, so the coarse grid is precise enough; computed once for both lungs.
struct BayGates {
  std::array<std::size_t, 3> f{1, 1, 1};  // fine voxels per coarse voxel
  Geometry coarse;
  VoxelVector<float> bone_d2, hilum_d2;
  bool near_bone(std::size_t i, std::size_t j, std::size_t k, double mm) const {
    return bone_d2[coarse.index(i / f[0], j / f[1], k / f[2])] <= float(mm * mm);
  }
  bool passes(std::size_t i, std::size_t j, std::size_t k, double wall_mm) const {
    const std::size_t c = coarse.index(i / f[0], j / f[1], k / f[2]);
    return bone_d2[c] <= float(wall_mm * wall_mm) && hilum_d2[c] > float(kHilumMm * kHilumMm);
  }
};

BayGates bay_gates(const CtImage& ct, const LabelImage& labels, const MaskImage& airway,
                   const LungParams& p) {
  BayGates gates;
  for (int a = 0; a < 3; ++a) {
    gates.f[a] = std::max<std::size_t>(1, std::size_t(std::floor(kCoarseMm / ct.geom.spacing[a])));
  }
  // Bone straight onto the coarse grid: no fine bone mask.
  const std::int16_t* hu = ct.data.data();
  const std::uint8_t* lab = labels.data.data();
  const auto bone_min = p.bone_min_hu;
  const MaskImage coarse_bone = downsample_by(ct.geom, gates.f, true, [&](std::size_t n) {
    return hu[n] >= bone_min && lab[n] == labels::kBackground;
  });
  gates.coarse = coarse_bone.geom;
  gates.bone_d2 = squared_distance_to(coarse_bone);
  const MaskImage ca = downsample(airway, gates.f, true);
  gates.hilum_d2 = squared_distance_to(ca);
  return gates;
}

// In-plane depth below the skin: distance (mm), within the axial slice, to the outside air.
// Along the chest wall the pleural surface lies at a slowly varying depth, so depth tells the
// lung side of the wall from the wall itself. The outside mask is kept on a coarse in-plane
// grid for the slices of the working box only (the full-size mask is freed early); the skin
// itself may lie outside the box, hence whole slices.
struct SkinDepth {
  MaskImage outside;                           // slices k0.. of the image, coarse in-plane grid
  std::array<std::size_t, 2> f{1, 1};          // fine voxels per coarse voxel in i and j
  std::array<std::size_t, 3> offset{0, 0, 0};  // fine index of the working box in the image
  // Depth of each slice, computed on first use; both lungs' threads share it.
  mutable std::vector<VoxelVector<float>> cache;

  // Depth (mm) of every coarse voxel of the working box's slice k.
  const VoxelVector<float>& slice(std::size_t k) const {
    VoxelVector<float>* d = nullptr;
#pragma omp critical(lungvol_skin_depth)
    {
      if (cache[k].empty()) {
        Geometry sg = outside.geom;
        sg.size[2] = 1;
        MaskImage m(sg, 0);
        const std::size_t sxy = sg.slice_voxels();
        std::copy_n(outside.data.begin() + std::ptrdiff_t(k * sxy), sxy, m.data.begin());
        cache[k] = squared_distance_to(m);
        for (float& v : cache[k]) v = std::sqrt(v);
      }
      d = &cache[k];
    }
    return *d;
  }
  // Bilinear interpolation at in-plane index (i, j) of the working box.
  float at(const VoxelVector<float>& d, std::size_t i, std::size_t j) const {
    const Geometry& g = outside.geom;
    const double x = (double(offset[0] + i) - 0.5 * double(f[0] - 1)) / double(f[0]);
    const double y = (double(offset[1] + j) - 0.5 * double(f[1] - 1)) / double(f[1]);
    const double xc = std::clamp(x, 0.0, double(g.size[0] - 1));
    const double yc = std::clamp(y, 0.0, double(g.size[1] - 1));
    const std::size_t i0 = std::size_t(xc), j0 = std::size_t(yc);
    const std::size_t i1 = std::min(i0 + 1, g.size[0] - 1), j1 = std::min(j0 + 1, g.size[1] - 1);
    const double tx = xc - double(i0), ty = yc - double(j0);
    const std::size_t nx = g.size[0];
    return float((1 - ty) * ((1 - tx) * d[i0 + nx * j0] + tx * d[i1 + nx * j0]) +
                 ty * ((1 - tx) * d[i0 + nx * j1] + tx * d[i1 + nx * j1]));
  }
};

// `box`: the working box; its slices, whole, on a grid of about kCoarseMm in-plane (majority
// vote per coarse voxel).
SkinDepth skin_depth(const MaskImage& outside, const Box& box) {
  SkinDepth s;
  s.offset = box.lo;
  Geometry g = outside.geom;
  for (int a = 0; a < 2; ++a) {
    s.f[a] = std::max<std::size_t>(1, std::size_t(std::floor(kCoarseMm / g.spacing[a])));
    g.size[a] = (g.size[a] + s.f[a] - 1) / s.f[a];
    g.spacing[a] *= double(s.f[a]);
  }
  g.size[2] = box.hi[2] - box.lo[2];
  s.outside = MaskImage(g, 0);
  s.cache.resize(g.size[2]);
  const std::size_t nx = outside.geom.size[0], ny = outside.geom.size[1];
  std::vector<std::uint32_t> column(nx), total(g.slice_voxels(), 0);
  for (std::size_t i = 0; i < nx; ++i) column[i] = std::uint32_t(i / s.f[0]);
  for (std::size_t j = 0; j < ny; ++j) {
    for (std::size_t i = 0; i < nx; ++i) ++total[g.size[0] * (j / s.f[1]) + column[i]];
  }
#pragma omp parallel
  {
    std::vector<std::uint32_t> count(g.slice_voxels());
#pragma omp for schedule(static)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(g.size[2]); ++kk) {
      const std::size_t k = std::size_t(kk);
      std::fill(count.begin(), count.end(), 0);
      for (std::size_t j = 0; j < ny; ++j) {
        const std::uint8_t* src = &outside.at(0, j, box.lo[2] + k);
        std::uint32_t* row = count.data() + g.size[0] * (j / s.f[1]);
        for (std::size_t i = 0; i < nx; ++i) row[column[i]] += src[i];
      }
      std::uint8_t* dst = &s.outside.at(0, 0, k);
      for (std::size_t c = 0; c < count.size(); ++c) dst[c] = 2 * count[c] >= total[c];
    }
  }
  return s;
}

// The rolling ball cannot enter the rim of a pleural lesion: where a lesion lies against the
// chest wall over a width comparable to the ball, the ball, coming from the wall's side, sweeps
// a lens between the lesion and the wall, which the closing leaves out (on the phantom, 20 % of
// the pleural lesion, 1-3 voxels thick). The lens is taken back by growing, in-plane, from the
// admitted bays, through the tissue the closing may admit (same gates):
// - only from bays that reach at least kBayMm (and 2 voxels) from the tissue around them:
//   lesions, not the slivers of partial volume the closing admits along the pleura;
// - only outwards: every step, 8-connected, makes the depth below the skin smaller by half a
//   voxel or more, so the growth never runs along the pleura nor into the mediastinum or the
//   abdomen, where the depth does not fall towards the wall;
// - at most kRimMm, and only down to the depth of the pleural surface around it, interpolated
//   (inverse squared distance) from the lung voxels within kRingMm that touch tissue of the
//   wall: chest-wall tissue lies above that surface and stays out. Half a voxel of tolerance
//   absorbs the staircase of a curved surface on the grid.
constexpr double kRimMm = 8.0;
constexpr double kRingMm = 20.0;
constexpr double kBayMm = 5.0;

// Wall-contact lung voxels of one slice, binned on a kRingMm grid for the interpolation.
class PleuralSurface {
 public:
  PleuralSurface(double width_mm, double height_mm)
      : nx_(std::size_t(width_mm / kRingMm) + 1), ny_(std::size_t(height_mm / kRingMm) + 1),
        cells_(nx_ * ny_) {}
  void clear() {
    for (auto& c : cells_) c.clear();
  }
  void add(float x, float y, float depth) { cells_[cell(x, y)].push_back({x, y, depth}); }
  // Interpolated depth at (x, y); negative when no contact lies within kRingMm.
  float depth_at(float x, float y) const {
    const std::size_t cx = std::min(nx_ - 1, std::size_t(x / kRingMm));
    const std::size_t cy = std::min(ny_ - 1, std::size_t(y / kRingMm));
    const float r2max = float(kRingMm * kRingMm);
    double sw = 0, swd = 0;
    for (std::size_t b = cy > 0 ? cy - 1 : 0; b <= std::min(ny_ - 1, cy + 1); ++b) {
      for (std::size_t a = cx > 0 ? cx - 1 : 0; a <= std::min(nx_ - 1, cx + 1); ++a) {
        for (const Contact& c : cells_[a + nx_ * b]) {
          const float r2 = (c.x - x) * (c.x - x) + (c.y - y) * (c.y - y);
          if (r2 > r2max) continue;
          const double w = 1.0 / (double(r2) + 1e-3);
          sw += w;
          swd += w * double(c.depth);
        }
      }
    }
    return sw > 0 ? float(swd / sw) : -1.0f;
  }

 private:
  struct Contact {
    float x, y, depth;
  };
  std::size_t cell(float x, float y) const {
    return std::min(nx_ - 1, std::size_t(x / kRingMm)) +
           nx_ * std::min(ny_ - 1, std::size_t(y / kRingMm));
  }
  std::size_t nx_, ny_;
  std::vector<std::vector<Contact>> cells_;
};

// In-plane rectangle [i0, i1) x [j0, j1) of a slice.
struct Rect {
  std::size_t i0 = 0, i1 = 0, j0 = 0, j1 = 0;
  std::size_t width() const { return i1 - i0; }
  bool contains(std::size_t i, std::size_t j) const {
    return i >= i0 && i < i1 && j >= j0 && j < j1;
  }
};

// `r` (the slice's admitted voxels' extent) grown by `mi`, `mj` voxels, kept one voxel inside
// the slice so that face neighbours exist.
Rect grown_rect(const SliceExtent& r, std::size_t mi, std::size_t mj, std::size_t nx,
                std::size_t ny) {
  return {r.imin > mi ? r.imin - mi : 1, std::min(nx - 1, r.imax + mi + 1),
          r.jmin > mj ? r.jmin - mj : 1, std::min(ny - 1, r.jmax + mj + 1)};
}

constexpr std::uint8_t kDeepBay = 2;  // bit set in `admit` on the voxels of deep bays

// Marks with kDeepBay, in one slice of `admit`, the 4-connected regions of admitted voxels
// within `rect` of which a voxel passes `deep(q)` (q: index in the slice).
template <class Deep>
void mark_regions(std::uint8_t* a, std::size_t nx, const Rect& rect, Deep deep,
                  std::vector<std::uint8_t>& seen, std::vector<std::size_t>& region,
                  std::vector<std::size_t>& stack) {
  const std::size_t w = rect.width();
  auto local = [&](std::size_t q) { return (q % nx - rect.i0) + w * (q / nx - rect.j0); };
  seen.assign(w * (rect.j1 - rect.j0), 0);
  for (std::size_t j = rect.j0; j < rect.j1; ++j) {
    for (std::size_t i = rect.i0; i < rect.i1; ++i) {
      const std::size_t q0 = i + nx * j;
      if (!a[q0] || (a[q0] & kDeepBay) || seen[local(q0)]) continue;
      region.clear();
      stack.assign(1, q0);
      seen[local(q0)] = 1;
      bool is_deep = false;
      while (!stack.empty()) {
        const std::size_t q = stack.back();
        stack.pop_back();
        region.push_back(q);
        is_deep = is_deep || deep(q);
        for (const std::size_t v : {q - 1, q + 1, q - nx, q + nx}) {
          if (!a[v] || !rect.contains(v % nx, v / nx) || seen[local(v)]) continue;
          seen[local(v)] = 1;
          stack.push_back(v);
        }
      }
      if (is_deep) {
        for (const std::size_t q : region) a[q] |= kDeepBay;
      }
    }
  }
}

// Marks the admitted voxels of deep bays (kDeepBay): regions that reach at least `min_mm`, in
// some slice, from the voxels that are neither lung nor admitted, and the regions of the
// neighbouring slices connected to them (a lesion's first and last slices are thin).
void mark_deep_bays(MaskImage& admit, const MaskImage& grown,
                    const std::vector<SliceExtent>& admitted, double min_mm) {
  const Geometry& g = admit.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = g.slice_voxels();
  const std::size_t bi = std::size_t(std::ceil(min_mm / g.spacing[0])) + 1;
  const std::size_t bj = std::size_t(std::ceil(min_mm / g.spacing[1])) + 1;
  const float min2 = float(min_mm * min_mm);
  std::vector<std::uint8_t> seen;
  std::vector<std::size_t> region, stack;
  for (std::size_t k = 0; k < nz; ++k) {
    if (admitted[k].empty) continue;
    const Rect rect = grown_rect(admitted[k], bi, bj, nx, ny);
    std::uint8_t* a = admit.data.data() + k * sxy;
    const std::uint8_t* in = grown.data.data() + k * sxy;
    Geometry rg = g;
    rg.size = {rect.width(), rect.j1 - rect.j0, 1};
    MaskImage tissue(rg, 0);
    for (std::size_t j = rect.j0; j < rect.j1; ++j) {
      for (std::size_t i = rect.i0; i < rect.i1; ++i) {
        tissue.at(i - rect.i0, j - rect.j0, 0) = !in[i + nx * j] && !a[i + nx * j];
      }
    }
    const VoxelVector<float> d2 = squared_distance_to(tissue);
    auto deep = [&](std::size_t q) {
      return d2[(q % nx - rect.i0) + rect.width() * (q / nx - rect.j0)] >= min2;
    };
    mark_regions(a, nx, rect, deep, seen, region, stack);
  }
  // Up, then down: a region touching a deep bay in the slice before is part of it.
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t step = 1; step < nz; ++step) {
      const std::size_t k = pass == 0 ? step : nz - 1 - step;
      const std::size_t prev = pass == 0 ? k - 1 : k + 1;
      if (admitted[k].empty || admitted[prev].empty) continue;
      std::uint8_t* a = admit.data.data() + k * sxy;
      const std::uint8_t* b = admit.data.data() + prev * sxy;
      const Rect rect = grown_rect(admitted[k], 0, 0, nx, ny);
      mark_regions(a, nx, rect, [&](std::size_t q) { return (b[q] & kDeepBay) != 0; }, seen,
                   region, stack);
    }
  }
}

void add_pleural_rim(MaskImage& admit, const MaskImage& grown, const LabelImage& sub,
                     const CtImage& ct, const MaskImage& outside, const BayGates& gates,
                     const Box& box, const SkinDepth& skin, const std::vector<SliceExtent>& extents,
                     const std::vector<SliceExtent>& admitted, bool medial_plus_i,
                     const LungParams& p) {
  const Geometry& g = sub.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], sxy = g.slice_voxels();
  const double sx = g.spacing[0], sy = g.spacing[1];
  const int max_steps = std::max(1, int(std::floor(kRimMm / std::min(sx, sy))));
  const float half_voxel = float(0.5 * std::max(sx, sy));
  const double bay_mm = std::max(kBayMm, 2.0 * std::max(sx, sy));
  // Margins around a slice's admitted voxels: the rim and the ring around it, and the bay test.
  const double reach_mm = kRimMm + kRingMm;
  const std::size_t mi = std::size_t(std::ceil(reach_mm / sx)) + 1;
  const std::size_t mj = std::size_t(std::ceil(reach_mm / sy)) + 1;
  PleuralSurface surface(double(nx) * sx, double(ny) * sy);
  std::vector<std::size_t> front, next, added;
  std::vector<float> depth_of(sxy);
  std::vector<std::uint8_t> rim(sxy, 0);
  std::size_t total = 0;
  mark_deep_bays(admit, grown, admitted, bay_mm);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    if (admitted[k].empty) continue;
    const std::size_t base = k * sxy;
    const std::uint8_t* a = admit.data.data() + base;
    const std::uint8_t* in = grown.data.data() + base;
    front.clear();
    const Rect own = grown_rect(admitted[k], 0, 0, nx, ny);
    for (std::size_t j = own.j0; j < own.j1; ++j) {
      for (std::size_t i = own.i0; i < own.i1; ++i) {
        if (a[i + nx * j] & kDeepBay) front.push_back(i + nx * j);
      }
    }
    if (front.empty()) continue;
    const Rect work = grown_rect(admitted[k], mi, mj, nx, ny);
    const SliceExtent& e = extents[k];
    const VoxelVector<float>& d = skin.slice(box.lo[2] + k);
    auto depth = [&](std::size_t i, std::size_t j) {
      return skin.at(d, box.lo[0] + i, box.lo[1] + j);
    };
    // The tissue the closing may admit, as in include_dense_tissue().
    auto tissue = [&](std::size_t q) {
      const std::size_t n = base + q, i = q % nx, j = q / nx;
      const std::size_t full = ct.geom.index(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k);
      return !in[q] && !a[q] && sub[n] == labels::kBackground && !outside[full] &&
             ct[full] < p.fill_max_hu && !e.in_hilum(i, j, medial_plus_i) &&
             gates.passes(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k, p.chest_wall_mm);
    };
    // Tissue within one coarse voxel of the admitted voxels may be the lesion itself: the
    // closing runs on a coarse grid, so on thin slices (two or more per coarse voxel) one slice
    // of a pair has a margin of lesion left un-admitted. Lung touching that margin lies deep
    // inside, and counted as pleura it pulled the surface 2-4 mm inwards, so that the rim in
    // every other slice was taken for chest wall (0.7 mm phantom: 6 % of the pleural lesion).
    // The work rectangle plus the face neighbours of its voxels (it lies one voxel inside).
    const Rect ext{work.i0 - 1, work.i1 + 1, work.j0 - 1, work.j1 + 1};
    Geometry rg = g;
    rg.size = {ext.width(), ext.j1 - ext.j0, 1};
    MaskImage admitted_here(rg, 0);
    for (std::size_t j = ext.j0; j < ext.j1; ++j) {
      for (std::size_t i = ext.i0; i < ext.i1; ++i) {
        admitted_here.at(i - ext.i0, j - ext.j0, 0) = a[i + nx * j] != 0;
      }
    }
    const VoxelVector<float> near_admitted = squared_distance_to(admitted_here);
    const float margin2 = float(kCoarseMm * kCoarseMm);
    auto wall = [&](std::size_t q) {
      return tissue(q) &&
             near_admitted[(q % nx - ext.i0) + ext.width() * (q / nx - ext.j0)] > margin2;
    };
    surface.clear();
    for (std::size_t j = work.j0; j < work.j1; ++j) {
      for (std::size_t i = work.i0; i < work.i1; ++i) {
        const std::size_t q = i + nx * j;
        if (!in[q] || (in[q - 1] && in[q + 1] && in[q - nx] && in[q + nx])) continue;
        if (wall(q - 1) || wall(q + 1) || wall(q - nx) || wall(q + nx)) {
          surface.add(float(double(i) * sx), float(double(j) * sy), depth(i, j));
        }
      }
    }
    for (const std::size_t q : front) depth_of[q] = depth(q % nx, q / nx);
    added.clear();
    for (int step = 0; step < max_steps && !front.empty(); ++step) {
      next.clear();
      for (const std::size_t q : front) {
        const std::size_t i = q % nx, j = q / nx;
        if (i == 0 || j == 0 || i + 1 == nx || j + 1 == ny) continue;
        for (const std::size_t w : {q - 1, q + 1, q - nx, q + nx, q - 1 - nx, q + 1 - nx,
                                    q - 1 + nx, q + 1 + nx}) {
          if (rim[w] || !tissue(w)) continue;
          const std::size_t wi = w % nx, wj = w / nx;
          const float dw = depth(wi, wj);
          if (dw > depth_of[q] - half_voxel) continue;  // not outwards
          const float surface_depth =
              surface.depth_at(float(double(wi) * sx), float(double(wj) * sy));
          if (surface_depth < 0) continue;  // no pleura around
          // Above the pleural surface: the wall; far below it: not a rim.
          if (dw < surface_depth - half_voxel || dw > surface_depth + float(kRimMm)) continue;
          rim[w] = 1;
          depth_of[w] = dw;
          next.push_back(w);
          added.push_back(w);
        }
      }
      front.swap(next);
    }
    total += added.size();
    std::uint8_t* out = admit.data.data() + base;
    for (const std::size_t q : added) {
      out[q] = 1;
      rim[q] = 0;
    }
  }
  log::debug("dense: pleural rim {} voxels", total);
}

// One lung's grown mask, cropped to `box`; pasted by paste_lung().
struct GrownLung {
  Box box;
  MaskImage mask;
  std::size_t added = 0;
  double costal_added_ml = 0;
  double costal_left_out_ml = 0;
  double bays_left_out_ml = 0;
  double blobs_added_ml = 0;
};

// One lung's diaphragm limits (full grid columns): its own aerated base, and the lower of that
// and the other lung's mirrored base (see diaphragm_floors). Holes (tissue enclosed by lung in
// an axial slice) must lie above the lung's own base: the dome of the liver or spleen and the
// colon's splenic flexure poke up into the base and are enclosed by lung, with no lung below
// them. Bays and the costal completion may reach the mirrored base: a consolidation that fills a
// lung's base lifts its own aerated base with it.
struct LungFloors {
  const std::vector<std::int32_t>& own;
  const std::vector<std::int32_t>& mirrored;
};

// The costal completion needs the ribs within the box even where a consolidation has pushed the
// aerated lung far from them; 40 mm covers the pleural gap and a rib's width beyond the lung's
// bounding box (which still reaches the wall above and below a lesion).
constexpr double kDenseBoxMarginMm = 40.0;
constexpr double kBlobMm = 6.0;
constexpr double kBlobVoxels = 3.0;
constexpr double kTubeElongation = 3.0;

// Eigenvalues, largest first, of the symmetric 3x3 matrix [[a, d, e], [d, b, f], [e, f, c]]
// (closed form, trigonometric).
std::array<double, 3> symmetric_eigenvalues(double a, double b, double c, double d, double e,
                                            double f) {
  const double p1 = d * d + e * e + f * f;
  if (p1 <= 1e-12 * (a * a + b * b + c * c + 1e-30)) {
    std::array<double, 3> v{a, b, c};
    std::sort(v.begin(), v.end(), std::greater<>());
    return v;
  }
  const double q = (a + b + c) / 3.0;
  const double p2 = (a - q) * (a - q) + (b - q) * (b - q) + (c - q) * (c - q) + 2.0 * p1;
  const double p = std::sqrt(p2 / 6.0);
  const double b11 = (a - q) / p, b22 = (b - q) / p, b33 = (c - q) / p;
  const double b12 = d / p, b13 = e / p, b23 = f / p;
  const double r = 0.5 * (b11 * (b22 * b33 - b23 * b23) - b12 * (b12 * b33 - b23 * b13) +
                          b13 * (b12 * b23 - b22 * b13));
  const double phi = r <= -1 ? M_PI / 3 : r >= 1 ? 0.0 : std::acos(r) / 3.0;
  const double e1 = q + 2 * p * std::cos(phi);
  const double e3 = q + 2 * p * std::cos(phi + 2 * M_PI / 3);
  return {e1, 3 * q - e1 - e3, e3};
}

GrownLung include_dense_tissue(const CtImage& ct, const LabelImage& labels, std::uint8_t lung,
                               const MaskImage& outside, const BayGates& gates,
                               const SkinDepth& skin, bool medial_plus_i, double midline_x,
                               const LungFloors& floors, const LungParams& p) {
  GrownLung result;
  const Box box =
      bounding_box(labels, lung, std::max(p.closing_radius_mm + 2.0, kDenseBoxMarginMm));
  result.box = box;
  if (box.empty()) return result;
  Stopwatch dsw;
  const LabelImage sub = crop(labels, box);
  MaskImage grown(sub.geom, 0);
  for_each_voxel(grown.size(), [&](std::size_t n) { grown[n] = sub[n] == lung; });
  const int superior = superior_step(sub.geom);
  // The diaphragm limits in the box's own heights (k of the box times the superior step).
  const auto box_floor = [&](const std::vector<std::int32_t>& full_floor) {
    const Geometry& sg = sub.geom;
    const std::size_t NX = labels.geom.size[0];
    std::vector<std::int32_t> f(sg.size[0] * sg.size[1]);
    const std::int32_t shift = std::int32_t(box.lo[2]) * superior;
    for (std::size_t j = 0; j < sg.size[1]; ++j) {
      for (std::size_t i = 0; i < sg.size[0]; ++i) {
        const std::int32_t v = full_floor[(box.lo[1] + j) * NX + box.lo[0] + i];
        f[j * sg.size[0] + i] = v == std::numeric_limits<std::int32_t>::max() ? v : v - shift;
      }
    }
    return f;
  };
  const std::vector<std::int32_t> own_floor = box_floor(floors.own);
  const std::vector<std::int32_t> mirrored_floor = box_floor(floors.mirrored);
  fill_lung_holes(grown, own_floor, superior);
  log::debug("dense: crop+holes {:.2f}", dsw.lap());
  MaskImage chest_wall;  // beyond the costal model's pleura (box grid)
  {
    const std::vector<std::int32_t>& floor = mirrored_floor;
    const Geometry& sg = sub.geom;
    CostalInput ci;
    ci.ct = &ct;
    ci.labels = &labels;
    ci.outside = &outside;
    ci.box = box;
    ci.lung = &grown;
    ci.side = lung;
    ci.midline_x = midline_x;
    ci.floor = &floor;
    ci.superior = superior;
    CostalResult costal = costal_completion(ci, p);
    for_each_voxel(grown.size(), [&](std::size_t n) {
      if (costal.fill[n]) grown[n] = 1;
    });
    result.costal_left_out_ml = costal.left_out_ml;
    result.costal_added_ml = double(count_nonzero(costal.fill)) * sg.voxel_volume_ml();
    chest_wall = std::move(costal.beyond_pleura);
    log::debug("dense: costal {:.2f}", dsw.lap());
  }
  if (p.closing_radius_mm > 0) {
    std::array<std::size_t, 3> f{1, 1, 1};
    for (int a = 0; a < 3; ++a) {
      f[a] = std::max<std::size_t>(1, std::size_t(std::floor(kCoarseMm / sub.geom.spacing[a])));
    }
    const MaskImage coarse = downsample(grown, f, false);
    MaskImage bay = close(coarse, p.closing_radius_mm);
    for_each_voxel(bay.size(), [&](std::size_t n) { bay[n] = bay[n] && !coarse[n]; });
    log::debug("dense: closing {:.2f}", dsw.lap());
    // CT and outside mask are read in place at the box offset: no per-lung copies (the two
    // lungs run side by side, so copies would count twice in the peak memory).
    const Geometry& g = sub.geom;
    const Geometry& cg = bay.geom;
    MaskImage admit(g, 0);
    MaskImage far(g, 0);  // bay tissue away from the chest wall: mediastinal and basal bays
    std::vector<SliceExtent> extents(g.size[2]);
    std::vector<SliceExtent> admitted(g.size[2]);  // bounding rectangle of each slice's admitted
    std::size_t n_bay = 0, n_tissue = 0, n_hilum = 0, n_gates = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(+ : n_bay, n_tissue, n_hilum, n_gates)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(g.size[2]); ++kk) {
      const std::size_t k = std::size_t(kk);
      const SliceExtent e = slice_extent(grown, k);
      extents[k] = e;
      if (e.empty) continue;
      SliceExtent& r = admitted[k];
      for (std::size_t j = 0; j < g.size[1]; ++j) {
        for (std::size_t i = 0; i < g.size[0]; ++i) {
          const std::size_t n = g.index(i, j, k);
          if (grown[n] || !bay[cg.index(i / f[0], j / f[1], k / f[2])]) continue;
          ++n_bay;
          const std::size_t full = ct.geom.index(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k);
          if (ct[full] >= p.fill_max_hu || outside[full] || p.fat_hu.contains(ct[full])) continue;
          if (chest_wall[n]) continue;
          ++n_tissue;
          const bool near_wall =
              gates.passes(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k, p.chest_wall_mm);
          if (!near_wall) {
            if (gates.passes(box.lo[0] + i, box.lo[1] + j, box.lo[2] + k, 1e9)) {
              far[n] = 1;
            }
            continue;
          }
          if (e.in_hilum(i, j, medial_plus_i)) continue;
          ++n_hilum;
          ++n_gates;
          admit[n] = 1;
          if (r.empty) {
            r = SliceExtent{i, i, j, j, false};
          } else {
            r.imin = std::min(r.imin, i);
            r.imax = std::max(r.imax, i);
            r.jmin = std::min(r.jmin, j);
            r.jmax = std::max(r.jmax, j);
          }
        }
      }
    }
    // Where a pleural lesion goes missing, these counts say which gate stopped it.
    log::debug("dense: admit {:.2f}; bay voxels {}, of them tissue {}, outside the hilum {}, "
               "near bone {}", dsw.lap(), n_bay, n_tissue, n_hilum, n_gates);
    // Away from the chest wall a bay the rolling ball cannot enter is either a lesion against
    // the heart, the mediastinum or the diaphragm, or the gaps between the lung's own vessels
    // where they leave it for the hilum, and the creases along the domes and the great veins.
    // Those are tubes and sheets a few millimetres thick; a lesion is a blob. A bay region is
    // taken when it is thicker than kBlobMm somewhere (a ball of that radius fits inside it).
    {
      const Components c = label_components(far);
      if (c.count() > 0) {
        MaskImage bg(g, 0);
        for_each_voxel(bg.size(), [&](std::size_t n) { bg[n] = !far[n]; });
        const auto d2 = squared_distance_to(bg);
        std::vector<float> thick(c.count() + 1, 0.0f);
        // Second moments of each region's voxel positions (mm), for its elongation.
        std::vector<std::array<double, 9>> mom(c.count() + 1, std::array<double, 9>{});
        for (std::size_t n = 0; n < far.size(); ++n) {
          const auto id = c.labels[n];
          if (!id) continue;
          thick[id] = std::max(thick[id], d2[n]);
          const std::size_t i = n % g.size[0], j = (n / g.size[0]) % g.size[1];
          const std::size_t k = n / g.slice_voxels();
          const double x = double(i) * g.spacing[0], y = double(j) * g.spacing[1],
                       z = double(k) * g.spacing[2];
          auto& m = mom[id];
          m[0] += x; m[1] += y; m[2] += z;
          m[3] += x * x; m[4] += y * y; m[5] += z * z;
          m[6] += x * y; m[7] += x * z; m[8] += y * z;
        }
        // A tube (the descending aorta in its groove, a large vessel) is much longer than wide;
        // a lesion is not: the ratio of the largest to the middle principal extent.
        const auto elongation = [&](std::size_t id) {
          const auto& m = mom[id];
          const double nv = double(c.sizes[id]);
          const double mx = m[0] / nv, my = m[1] / nv, mz = m[2] / nv;
          const double a = m[3] / nv - mx * mx, b = m[4] / nv - my * my, cc = m[5] / nv - mz * mz;
          const double d = m[6] / nv - mx * my, e = m[7] / nv - mx * mz, f = m[8] / nv - my * mz;
          const auto ev = symmetric_eigenvalues(a, b, cc, d, e, f);  // descending
          return ev[1] > 0 ? std::sqrt(ev[0] / ev[1]) : 1e9;
        };
        std::vector<std::uint8_t> take(c.count() + 1, 0);
        // Shape needs resolution: a vessel 10-15 mm across blurred by 4 mm voxels is a blob of
        // 2-3 voxels whatever its length (CIP's 4.2 mm hilar arteries were taken that way), so
        // the blob must be at least kBlobVoxels across as well.
        const double blob_mm = std::max(kBlobMm, kBlobVoxels * std::max(g.spacing[0], g.spacing[1]));
        const float blob2 = float(blob_mm * blob_mm);
        for (std::size_t id = 1; id <= c.count(); ++id) {
          take[id] = thick[id] >= blob2 && elongation(id) < kTubeElongation;
        }
        std::size_t taken = 0;
        for (std::size_t n = 0; n < far.size(); ++n) {
          const auto id = c.labels[n];
          far[n] = id && take[id];  // from here on: the blobs taken
          if (far[n]) {
            admit[n] = 1;
            ++taken;
          }
        }
        log::debug("dense: {} bay regions away from the wall, {} voxels taken as blobs", c.count(),
                   taken);
      }
    }
    // Bays below the diaphragm limit are the domes' creases and the bowel under them, or a
    // lesion on the diaphragm of a lung whose base it hides: counted as left out.
    const std::size_t dropped = drop_regions_below_floor(admit, mirrored_floor, superior);
    result.bays_left_out_ml = double(dropped) * g.voxel_volume_ml();
    // Left out, but counted: a lesion may lie there too.
    const std::size_t at_edge = drop_regions_at_fov_edge(admit, box, ct.geom);
    result.bays_left_out_ml += double(at_edge) * g.voxel_volume_ml();
    std::size_t blobs = 0;
    for (std::size_t n = 0; n < far.size(); ++n) blobs += far[n] && admit[n];
    result.blobs_added_ml = double(blobs) * g.voxel_volume_ml();
    log::debug("dense: {} voxels admitted after the diaphragm-dome rule",
               std::count(admit.data.begin(), admit.data.end(), std::uint8_t(1)));
    log::debug("dense: drop {:.2f}", dsw.lap());
    add_pleural_rim(admit, grown, sub, ct, outside, gates, box, skin, extents, admitted,
                    medial_plus_i, p);
    log::debug("dense: rim {:.2f}", dsw.lap());
    for_each_voxel(admit.size(), [&](std::size_t n) {
      if (admit[n]) grown[n] = 1;
    });
    fill_lung_holes(grown, own_floor, superior);
    log::debug("dense: holes2 {:.2f}", dsw.lap());
  }
  MaskImage m(sub.geom, MaskImage::Uninitialised{});
  std::size_t added = 0;
#pragma omp parallel for schedule(static) reduction(+ : added)
  for (std::ptrdiff_t nn = 0; nn < std::ptrdiff_t(m.size()); ++nn) {
    const std::size_t n = std::size_t(nn);
    const bool dense = sub[n] == labels::kBackground && grown[n];
    m[n] = sub[n] == lung || dense;
    added += dense;
  }
  result.added = added;
  result.mask = std::move(m);
  return result;
}

// Writes a grown lung into `labels`, only over background: a voxel both lungs claimed stays
// with the one pasted first, so the result does not depend on thread timing.
std::size_t paste_lung(LabelImage& labels, const GrownLung& grown, std::uint8_t lung) {
  if (grown.box.empty()) return 0;
  std::size_t added = 0;
  const Geometry& g = grown.mask.geom;
#pragma omp parallel for schedule(static) reduction(+ : added)
  for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(g.size[2]); ++kk) {
    const std::size_t k = std::size_t(kk);
    for (std::size_t j = 0; j < g.size[1]; ++j) {
      const std::uint8_t* m = &grown.mask.at(0, j, k);
      std::uint8_t* v = &labels.at(grown.box.lo[0], grown.box.lo[1] + j, grown.box.lo[2] + k);
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        if (m[i] && v[i] == labels::kBackground) {
          v[i] = lung;
          ++added;
        }
      }
    }
  }
  return added;
}

// The lowest height (k times the superior step) of each lung in every column of the grid, or
// INT32_MAX where the column holds none of it.
std::vector<std::int32_t> lowest_heights(const LabelImage& lab, std::uint8_t lung, int superior) {
  const Geometry& g = lab.geom;
  const std::size_t nxy = g.slice_voxels();
  std::vector<std::int32_t> low(nxy, std::numeric_limits<std::int32_t>::max());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t pp = 0; pp < std::ptrdiff_t(nxy); ++pp) {
    const std::size_t p = std::size_t(pp);
    for (std::size_t k = 0; k < g.size[2]; ++k) {
      if (lab[k * nxy + p] != lung) continue;
      low[p] = std::min(low[p], std::int32_t(k) * superior);
    }
  }
  return low;
}

// The diaphragm limit of each lung for the costal completion: no lung voxel lies below the
// diaphragm, and where a consolidation fills the base of a lung (a dependent or lower-lobe
// consolidation) its aerated part ends high above it. The other lung's base, mirrored across
// the body midline and raised or lowered by the two domes' typical difference (the right dome
// is higher, over the liver), stands in for the hidden part: a lung may be filled down to the
// lower of its own base and the mirrored one. Both bases are first opened (open_base_heights):
// a consolidation on the dome lifts the aerated base only over its own width, and the dome
// around it says where the diaphragm lies beneath. Both lungs consolidated at the base over more
// than the opening's width: the limit is the higher of the two, the tissue below is reported as
// left out (costal.left_out_ml).
struct DiaphragmFloors {
  std::vector<std::int32_t> right, left;          // opened own base, or the mirrored one if lower
  std::vector<std::int32_t> right_own, left_own;  // each lung's own aerated base
};

DiaphragmFloors diaphragm_floors(const LabelImage& lab, double midline_x, int superior) {
  const Geometry& g = lab.geom;
  const std::size_t nx = g.size[0], ny = g.size[1];
  const auto low_r = lowest_heights(lab, labels::kRightLung, superior);
  const auto low_l = lowest_heights(lab, labels::kLeftLung, superior);
  constexpr std::int32_t kNone = std::numeric_limits<std::int32_t>::max();
  // Column i mirrored across the midline (axial slices: x depends on i, the direction's first
  // entry); -1 when the mirror lies outside the grid.
  const double dxi = g.direction[0] * g.spacing[0];
  const double xc = g.origin[0] + g.direction[1] * g.spacing[1] * double(ny / 2) +
                    g.direction[2] * g.spacing[2] * double(g.size[2] / 2);
  std::vector<std::ptrdiff_t> mirror(nx, -1);
  for (std::size_t i = 0; i < nx; ++i) {
    const double x = xc + dxi * double(i);
    const double mi = std::round((2 * midline_x - x - xc) / dxi);
    if (mi >= 0 && mi < double(nx)) mirror[i] = std::ptrdiff_t(mi);
  }
  auto offset = [&](const std::vector<std::int32_t>& own, const std::vector<std::int32_t>& other) {
    std::vector<std::int32_t> d;
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        if (mirror[i] < 0) continue;
        const auto a = own[j * nx + i], b = other[j * nx + std::size_t(mirror[i])];
        if (a != kNone && b != kNone) d.push_back(a - b);
      }
    }
    if (d.empty()) return std::int32_t(0);
    std::nth_element(d.begin(), d.begin() + std::ptrdiff_t(d.size() / 2), d.end());
    return d[d.size() / 2];
  };
  auto floor_of = [&](const std::vector<std::int32_t>& own, const std::vector<std::int32_t>& other,
                      std::int32_t delta) {
    std::vector<std::int32_t> f(own);
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        if (mirror[i] < 0) continue;
        const auto b = other[j * nx + std::size_t(mirror[i])];
        if (b != kNone) f[j * nx + i] = std::min(f[j * nx + i], b + delta);
      }
    }
    return f;
  };
  DiaphragmFloors out;
  // Offsets from the lungs' own aerated bases, before the opening below changes them.
  const std::int32_t d_rl = offset(low_r, low_l), d_lr = offset(low_l, low_r);
  const std::size_t wi = std::size_t(std::lround(kDomeLesionMm / g.spacing[0]));
  const std::size_t wj = std::size_t(std::lround(kDomeLesionMm / g.spacing[1]));
  const auto smooth_r = open_base_heights(low_r, nx, ny, wi, wj);
  const auto smooth_l = open_base_heights(low_l, nx, ny, wi, wj);
  out.right = floor_of(smooth_r, smooth_l, d_rl);
  out.left = floor_of(smooth_l, smooth_r, d_lr);
  out.right_own = low_r;
  out.left_own = low_l;
  return out;
}

}  // namespace

int superior_step(const Geometry& g) { return g.direction[8] >= 0 ? 1 : -1; }

LabelImage separate_left_right(const MaskImage& mask, double midline, double min_lung_ml,
                               bool* touching, std::vector<double>* discarded_ml) {
  const Geometry& g = mask.geom;
  const double voxel_ml = g.voxel_volume_ml();
  if (touching) *touching = false;
  Components comps = label_components(mask);
  auto blobs = describe(comps, midline);
  const std::uint64_t min_vox = std::uint64_t(std::ceil(min_lung_ml / voxel_ml));

  LabelImage lab(g, labels::kBackground);
  if (blobs.empty() || blobs[0].voxels < min_vox) {
    throw Error(ExitCode::kProcessing, "no lung found (largest air region below minimum size)");
  }
  const Blob& first = blobs[0];
  const bool spans_both = first.left_fraction > 0.2 && first.left_fraction < 0.8;
  if (spans_both) {
    MaskImage one(g, 0);
    for_each_voxel(mask.size(), [&](std::size_t n) { one[n] = comps.labels[n] == first.id; });
    Image<std::uint32_t> split;
    if (!split_touching_lungs(one, split, midline)) {
      throw Error(ExitCode::kProcessing,
                  "the lungs form one region that could not be separated into left and right");
    }
    // Which part is right: the one with the smaller mean x (LPS x grows to the patient's left).
    double sx[3] = {0, 0, 0};
    std::uint64_t cnt[3] = {0, 0, 0};
    std::size_t n = 0;
    for (std::size_t k = 0; k < g.size[2]; ++k) {
      for (std::size_t j = 0; j < g.size[1]; ++j) {
        for (std::size_t i = 0; i < g.size[0]; ++i, ++n) {
          if (!split[n]) continue;
          sx[split[n]] += g.to_physical(double(i), double(j), double(k))[0];
          ++cnt[split[n]];
        }
      }
    }
    const bool one_is_right = sx[1] / double(cnt[1]) < sx[2] / double(cnt[2]);
    for (std::size_t v = 0; v < lab.size(); ++v) {
      if (!split[v]) continue;
      const bool right = (split[v] == 1) == one_is_right;
      lab[v] = right ? labels::kRightLung : labels::kLeftLung;
    }
    if (touching) *touching = true;
    if (discarded_ml) {
      for (std::size_t b = 1; b < blobs.size() && blobs[b].voxels >= min_vox; ++b) {
        discarded_ml->push_back(double(blobs[b].voxels) * voxel_ml);
      }
    }
  } else {
    // Two separate lungs: the largest, and the largest region on the other side of the body.
    const bool first_left = first.centroid[0] > midline;
    const Blob* second = nullptr;
    for (std::size_t b = 1; b < blobs.size(); ++b) {
      if (blobs[b].voxels < min_vox) break;
      if ((blobs[b].centroid[0] > midline) != first_left) {
        second = &blobs[b];
        break;
      }
    }
    if (!second) {
      throw Error(ExitCode::kProcessing,
                  "found only one lung (no second air region of at least " +
                      std::to_string(int(min_lung_ml)) + " mL on the other side)");
    }
    const std::uint32_t left_id = first_left ? first.id : second->id;
    const std::uint32_t right_id = first_left ? second->id : first.id;
    if (discarded_ml) {
      for (std::size_t b = 1; b < blobs.size() && blobs[b].voxels >= min_vox; ++b) {
        if (&blobs[b] != second) discarded_ml->push_back(double(blobs[b].voxels) * voxel_ml);
      }
    }
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(lab.size()); ++n) {
      const auto id = comps.labels[std::size_t(n)];
      if (id == right_id) lab[std::size_t(n)] = labels::kRightLung;
      else if (id == left_id) lab[std::size_t(n)] = labels::kLeftLung;
    }
  }
  return lab;
}



namespace {
LungSegmentation segment_in_box(const CtImage& ct, MaskImage& air, const MaskImage& outside,
                                const SkinDepth& skin, double midline, const LungParams& p);
}  // namespace

LungSegmentation segment_lungs(const CtImage& ct, const LungParams& p) {
  const Geometry& g = ct.geom;
  Stopwatch sw;
  BodyAir body = find_body_air(ct, p.air_max_hu);
  const MaskImage& outside = body.outside;
  const MaskImage& air = body.air;
  const double midline = body.midline_x;
  log::debug("lungs: outside air {:.3f} s", sw.lap());
  // Everything after this works inside the box around the air spaces (plus the closing's
  // reach): about half of a typical field of view.
  const Box box = bounding_box(air, std::uint8_t(0), p.closing_radius_mm + 10.0);
  if (box.empty()) {
    throw Error(ExitCode::kProcessing, "no air-filled region found inside the body");
  }
  const CtImage sub_ct = crop(ct, box);
  MaskImage sub_air = crop(air, box);
  const MaskImage sub_out = crop(outside, box);
  SkinDepth skin;
  if (p.closing_radius_mm > 0) {
    skin = skin_depth(outside, box);
    log::debug("lungs: skin depth {:.3f} s", sw.lap());
  }
  body = BodyAir{};  // the full-size masks are not needed any more (peak memory)
  LungSegmentation result = segment_in_box(sub_ct, sub_air, sub_out, skin, midline, p);
  sw.lap();
  LabelImage full(g, labels::kBackground);
  const Geometry& sg = result.lungs.geom;
#pragma omp parallel for schedule(static)
  for (std::size_t k = 0; k < sg.size[2]; ++k) {
    for (std::size_t j = 0; j < sg.size[1]; ++j) {
      const std::uint8_t* src = &result.lungs.at(0, j, k);
      std::copy(src, src + sg.size[0], &full.at(box.lo[0], box.lo[1] + j, box.lo[2] + k));
    }
  }
  result.lungs = std::move(full);
  log::debug("lungs: back into the full image {:.3f} s", sw.lap());
  return result;
}

namespace {
LungSegmentation segment_in_box(const CtImage& ct, MaskImage& air, const MaskImage& outside,
                                const SkinDepth& skin, double midline, const LungParams& p) {
  LungSegmentation result;
  const Geometry& g = ct.geom;
  const double voxel_ml = g.voxel_volume_ml();
  Stopwatch sw;
  // Lungs and airways are one large connected air space; bowel gas and noise are small.
  remove_small_components(air, std::uint64_t(std::ceil(p.min_lung_ml / voxel_ml)));
  if (count_nonzero(air) == 0) {
    throw Error(ExitCode::kProcessing,
                "no air-filled lung found inside the body (no region below " +
                    std::to_string(int(p.air_max_hu)) + " HU larger than " +
                    std::to_string(int(p.min_lung_ml)) + " mL)");
  }

  log::debug("lungs: air components {:.3f} s", sw.lap());
  // The trachea is sought near the body's midline, in this box's index space.
  const double midline_i = (midline - g.origin[0]) / (g.direction[0] * g.spacing[0]);
  const AirwayResult airway = segment_airway(ct, air, midline_i, p);
  log::debug("lungs: airway {:.3f} s", sw.lap());
  for (const auto& w : airway.warnings) result.warnings.push_back(w);
  result.airway_ml = double(count_nonzero(airway.mask)) * voxel_ml;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(air.size()); ++n) {
    if (airway.mask[std::size_t(n)]) air[std::size_t(n)] = 0;
  }

  std::vector<double> discarded;
  result.lungs =
      separate_left_right(air, midline, p.min_lung_ml, &result.lungs_touching, &discarded);
  // A lung cut in two (a slice with a bad rescale, a gap) loses its smaller part here: never
  // silently. Bowel or stomach gas this large also gets the line; a reader dismisses it quickly.
  for (const double ml : discarded) {
    result.warnings.push_back(fmt::format(
        "an air region of {:.0f} mL inside the body was not taken as lung (a lung cut in two, "
        "a pneumothorax, or bowel gas): check the coronal QC image",
        ml));
  }
  if (result.lungs_touching) {
    result.warnings.push_back("the lungs touch; separated by erosion and regrowth");
  }
  LabelImage& lab = result.lungs;
  // Airway voxels keep their label so that closing cannot claim them.
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(lab.size()); ++n) {
    if (airway.mask[std::size_t(n)]) lab[std::size_t(n)] = labels::kAirway;
  }
  log::debug("lungs: left/right {:.3f} s", sw.lap());
  // Medial is towards the other lung: in index space +i for the right lung when its
  // bounding box lies at smaller i than the left lung's.
  const Box right_box = bounding_box(lab, labels::kRightLung, 0.0);
  const Box left_box = bounding_box(lab, labels::kLeftLung, 0.0);
  const bool right_medial_plus_i =
      right_box.lo[0] + right_box.hi[0] < left_box.lo[0] + left_box.hi[0];
  // The two lungs are independent: one thread each (their inner loops then run serially) on
  // scans of ordinary size. Above kParallelLungsMaxVoxels the two working sets side by side
  // would set the peak memory (512 x 512 x 600: 8.3 bytes/voxel, 7.7 one after the other), so
  // there the lungs run one after the other, each with all threads in its inner loops.
  constexpr std::size_t kParallelLungsMaxVoxels = std::size_t(64) << 20;
  const bool lungs_side_by_side = ct.size() <= kParallelLungsMaxVoxels;
  const BayGates gates = p.closing_radius_mm > 0 ? bay_gates(ct, lab, airway.mask, p) : BayGates{};
  const DiaphragmFloors floors = diaphragm_floors(lab, midline, superior_step(g));
  log::debug("lungs: bay gates {:.3f} s", sw.lap());
  GrownLung right, left;
#pragma omp parallel sections if (lungs_side_by_side)
  {
#pragma omp section
    right = include_dense_tissue(ct, lab, labels::kRightLung, outside, gates, skin,
                                 right_medial_plus_i, midline,
                                 LungFloors{floors.right_own, floors.right}, p);
#pragma omp section
    left = include_dense_tissue(ct, lab, labels::kLeftLung, outside, gates, skin,
                                !right_medial_plus_i, midline,
                                LungFloors{floors.left_own, floors.left}, p);
  }
  log::debug("lungs: two lungs {:.3f} s", sw.lap());
  const std::size_t added =
      paste_lung(lab, right, labels::kRightLung) + paste_lung(lab, left, labels::kLeftLung);
  result.dense_added_ml = double(added) * voxel_ml;
  result.costal_added_ml = right.costal_added_ml + left.costal_added_ml;
  result.costal_left_out_ml = right.costal_left_out_ml + left.costal_left_out_ml;
  result.bays_left_out_ml = right.bays_left_out_ml + left.bays_left_out_ml;
  result.blobs_added_ml = right.blobs_added_ml + left.blobs_added_ml;
  result.right_base = lung_base(lab, labels::kRightLung);
  result.left_base = lung_base(lab, labels::kLeftLung);
  log::debug("lungs: base rise right {:.1f} mm, left {:.1f} mm", result.right_base.rise_mm(),
             result.left_base.rise_mm());
  log::debug("lungs: dense tissue {:.3f} s", sw.lap());
  return result;
}
}  // namespace

}  // namespace lungvol::seg
