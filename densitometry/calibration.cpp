#include "densitometry/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>

#include "core/histogram.hpp"
#include "core/labels.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::dens {
namespace {

// Statistics from an integer histogram: exact, and cheap to merge across slices.
RegionStats stats_of(const HuHistogram& h, std::size_t min_n) {
  RegionStats s;
  s.n = h.total();
  if (s.n == 0) return s;
  double sum = 0;
  for (int b = 0; b < HuHistogram::kBins; ++b)
    sum += double(h.counts[b]) * (b + HuHistogram::kMinHu);
  s.mean_hu = sum / double(s.n);
  double ss = 0;
  for (int b = 0; b < HuHistogram::kBins; ++b) {
    const double d = (b + HuHistogram::kMinHu) - s.mean_hu;
    ss += double(h.counts[b]) * d * d;
  }
  s.sd_hu = s.n > 1 ? std::sqrt(ss / double(s.n - 1)) : 0.0;
  // Lower median: the smallest HU with at least half of the voxels at or below it.
  std::uint64_t cum = 0;
  for (int b = 0; b < HuHistogram::kBins; ++b) {
    cum += h.counts[b];
    if (2 * cum >= s.n) {
      s.median_hu = b + HuHistogram::kMinHu;
      break;
    }
  }
  s.found = s.n >= min_n;
  return s;
}

// Histogram of the CT where `in(n)` holds, over all threads (integer counts: the same in any
// order).
template <class In>
HuHistogram histogram_where(const CtImage& ct, In in) {
  HuHistogram h;
#pragma omp parallel
  {
    HuHistogram mine;
#pragma omp for schedule(static)
    for (std::ptrdiff_t n = 0; n < std::ptrdiff_t(ct.size()); ++n) {
      if (in(std::size_t(n))) mine.add(ct[std::size_t(n)]);
    }
#pragma omp critical(lungvol_calibration_histogram)
    h.merge(mine);
  }
  return h;
}

// In-body air components of one axial slice: label[q] = component id (1..) of pixels below
// `air_max` that the slice border cannot reach through such pixels; 0 elsewhere.
struct SliceComponents {
  std::vector<std::uint32_t> label;
  std::vector<std::size_t> area;      // by id (index 0 unused)
  std::vector<double> sum_i;          // centroid sums by id
  std::vector<bool> touches_lung;     // holds a lung label (1 or 2)
};

void slice_air_components(const CtImage& ct, const LabelImage& lungs, std::size_t k,
                          double air_max, SliceComponents& out, std::vector<std::uint8_t>& reach,
                          std::vector<std::size_t>& stack) {
  const std::size_t nx = ct.geom.size[0], ny = ct.geom.size[1], sxy = nx * ny;
  const std::int16_t* c = ct.data.data() + k * sxy;
  const std::uint8_t* lab = lungs.data.data() + k * sxy;
  seg::flood_from_border_2d(nx, ny, [&](std::size_t q) { return c[q] < air_max; }, reach, stack);
  out.label.assign(sxy, 0);
  out.area.assign(1, 0);
  out.sum_i.assign(1, 0);
  out.touches_lung.assign(1, false);
  for (std::size_t q0 = 0; q0 < sxy; ++q0) {
    if (out.label[q0] || reach[q0] || !(c[q0] < air_max)) continue;
    const auto id = static_cast<std::uint32_t>(out.area.size());
    out.area.push_back(0);
    out.sum_i.push_back(0);
    out.touches_lung.push_back(false);
    stack.clear();
    stack.push_back(q0);
    out.label[q0] = id;
    while (!stack.empty()) {
      const std::size_t q = stack.back();
      stack.pop_back();
      ++out.area[id];
      out.sum_i[id] += double(q % nx);
      if (lab[q] == labels::kRightLung || lab[q] == labels::kLeftLung) out.touches_lung[id] = true;
      const std::size_t i = q % nx, j = q / nx;
      const std::size_t nb[4] = {i > 0 ? q - 1 : q, i + 1 < nx ? q + 1 : q, j > 0 ? q - nx : q,
                                 j + 1 < ny ? q + nx : q};
      for (std::size_t n : nb) {
        if (!out.label[n] && !reach[n] && c[n] < air_max) {
          out.label[n] = id;
          stack.push_back(n);
        }
      }
    }
  }
}

// Tracheal air, found in the image: the tube-sized in-body air cross-section nearest the body
// midline in the highest slice that has one, followed down slice by slice through overlapping
// cross-sections until it widens (carina), vanishes or meets a lung. Each cross-section is
// sampled at least trachea_wall_margin_mm (and one voxel) inside its wall.
HuHistogram trachea_histogram(const CtImage& ct, const LabelImage& lungs,
                              const CalibrationParams& p, std::size_t& slices) {
  HuHistogram h;
  slices = 0;
  const Geometry& g = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = nx * ny;
  if (ct.empty() || nz == 0) return h;
  const double px_mm2 = g.spacing[0] * g.spacing[1];
  const auto min_px = static_cast<std::size_t>(std::ceil(p.trachea_min_area_mm2 / px_mm2));
  const auto max_px = static_cast<std::size_t>(std::floor(p.trachea_max_area_mm2 / px_mm2));
  // Superior is +k on the canonical grid; walk from the top slice down.
  const bool up = g.direction[8] >= 0;
  auto slice_at = [&](std::size_t step) { return up ? nz - 1 - step : step; };
  std::vector<std::uint8_t> reach;
  std::vector<std::size_t> stack;
  SliceComponents comp;
  std::vector<std::uint8_t> current(sxy, 0), next(sxy, 0);
  std::size_t current_area = 0;
  std::vector<std::vector<std::uint8_t>> masks;
  std::vector<std::size_t> mask_slice;
  bool tracking = false;
  for (std::size_t step = 0; step < nz; ++step) {
    const std::size_t k = slice_at(step);
    slice_air_components(ct, lungs, k, p.trachea_air_max_hu, comp, reach, stack);
    const std::size_t n = comp.area.size();
    std::uint32_t chosen = 0;
    if (!tracking) {
      // Body midline of this slice: the mean column of the pixels the border does not reach.
      double sum = 0, cnt = 0;
      for (std::size_t q = 0; q < sxy; ++q) {
        if (!reach[q]) {
          sum += double(q % nx);
          cnt += 1;
        }
      }
      if (cnt == 0) continue;
      const double mid_i = sum / cnt;
      std::size_t best_area = 0;
      for (std::uint32_t id = 1; id < n; ++id) {
        if (comp.touches_lung[id] || comp.area[id] < min_px || comp.area[id] > max_px) continue;
        const double off_mm = std::abs(comp.sum_i[id] / double(comp.area[id]) - mid_i) * g.spacing[0];
        if (off_mm > p.trachea_midline_mm) continue;
        if (comp.area[id] > best_area) {
          best_area = comp.area[id];
          chosen = id;
        }
      }
      if (!chosen) continue;
      tracking = true;
    } else {
      // The cross-section overlapping the previous one most.
      std::vector<std::size_t> overlap(n, 0);
      for (std::size_t q = 0; q < sxy; ++q) {
        if (current[q] && comp.label[q]) ++overlap[comp.label[q]];
      }
      std::size_t best = 0;
      for (std::uint32_t id = 1; id < n; ++id) {
        if (overlap[id] > best) {
          best = overlap[id];
          chosen = id;
        }
      }
      if (!chosen || comp.touches_lung[chosen] || comp.area[chosen] < min_px ||
          comp.area[chosen] > max_px || comp.area[chosen] > 2 * current_area) {
        break;  // the carina, a lung, or the end of the tube
      }
    }
    for (std::size_t q = 0; q < sxy; ++q) next[q] = comp.label[q] == chosen;
    std::swap(current, next);
    current_area = comp.area[chosen];
    masks.push_back(current);
    mask_slice.push_back(k);
  }
  if (masks.size() < p.min_trachea_slices) return h;
  slices = masks.size();
  // In-plane erosion by the wall margin (in mm, at least one voxel in each direction).
  const int ri = std::max(1, int(std::ceil(p.trachea_wall_margin_mm / g.spacing[0] - 1e-9)));
  const int rj = std::max(1, int(std::ceil(p.trachea_wall_margin_mm / g.spacing[1] - 1e-9)));
  for (std::size_t m = 0; m < masks.size(); ++m) {
    const std::uint8_t* mask = masks[m].data();
    const std::int16_t* c = ct.data.data() + mask_slice[m] * sxy;
    for (std::size_t q = 0; q < sxy; ++q) {
      if (!mask[q]) continue;
      const long i = long(q % nx), j = long(q / nx);
      bool inside = true;
      for (int dj = -rj; inside && dj <= rj; ++dj) {
        for (int di = -ri; inside && di <= ri; ++di) {
          // Within the ellipse of the margin (mm), the neighbour must be tracheal air too.
          const double x = di / double(ri), y = dj / double(rj);
          if (x * x + y * y > 1.0 + 1e-9) continue;
          const long a = i + di, b = j + dj;
          inside = a >= 0 && b >= 0 && a < long(nx) && b < long(ny) &&
                   mask[std::size_t(b) * nx + std::size_t(a)];
        }
      }
      if (inside) h.add(c[q]);
    }
  }
  return h;
}

}  // namespace

namespace {

// Constant padding of one slice: pad[q] = 1 where the slice holds, connected to its border,
// one exact value v (a corner's) over whole 5 x 5 blocks, and the pixels reading v connected
// to those blocks. Noise makes real air vary between neighbours; the region outside the
// reconstruction circle does not. Returns the values found.
std::vector<int> mark_constant_padding(const std::int16_t* c, std::size_t nx, std::size_t ny,
                                       double air_max_hu, std::vector<std::uint8_t>& pad,
                                       std::vector<std::uint8_t>& run,
                                       std::vector<std::uint8_t>& reach,
                                       std::vector<std::size_t>& stack) {
  constexpr long kR = 2;  // 5 x 5 blocks
  const std::size_t sxy = nx * ny;
  pad.assign(sxy, 0);
  std::vector<int> found;
  if (nx < 5 || ny < 5) return found;
  const std::int16_t corners[4] = {c[0], c[nx - 1], c[(ny - 1) * nx], c[sxy - 1]};
  for (std::int16_t v : corners) {
    if (!(v < air_max_hu) || std::find(found.begin(), found.end(), int(v)) != found.end()) continue;
    // run[q]: pixels i-2..i+2 of the row (inside the image) all read v.
    run.assign(sxy, 0);
    for (std::size_t j = 0; j < ny; ++j) {
      const std::int16_t* row = c + j * nx;
      for (std::size_t i = 0; i < nx; ++i) {
        bool all = true;
        for (long d = -kR; all && d <= kR; ++d) {
          const long a = long(i) + d;
          if (a >= 0 && a < long(nx)) all = row[a] == v;
        }
        run[j * nx + i] = all;
      }
    }
    // Core: whole blocks (rows j-2..j+2 too), connected to the border.
    seg::flood_from_border_2d(
        nx, ny,
        [&](std::size_t q) {
          const long j = long(q / nx), i = long(q % nx);
          for (long d = -kR; d <= kR; ++d) {
            const long b = j + d;
            if (b >= 0 && b < long(ny) && !run[std::size_t(b) * nx + std::size_t(i)]) return false;
          }
          return true;
        },
        reach, stack);
    std::size_t core = 0;
    for (std::size_t q = 0; q < sxy; ++q) core += reach[q];
    if (core == 0) continue;
    found.push_back(v);
    // From the blocks into every pixel reading v that touches them (the circle's ragged edge,
    // slivers where it meets the image border). Clipped noisy air joins only where its -1024
    // pixels happen to touch the region: small clusters, inside the margin anyway.
    stack.clear();
    for (std::size_t q = 0; q < sxy; ++q) {
      if (reach[q] && !pad[q]) {
        pad[q] = 1;
        stack.push_back(q);
      }
    }
    while (!stack.empty()) {
      const std::size_t q = stack.back();
      stack.pop_back();
      const std::size_t i = q % nx, j = q / nx;
      const std::size_t nb[4] = {i > 0 ? q - 1 : q, i + 1 < nx ? q + 1 : q, j > 0 ? q - nx : q,
                                 j + 1 < ny ? q + nx : q};
      for (std::size_t n : nb) {
        if (!pad[n] && c[n] == v) {
          pad[n] = 1;
          stack.push_back(n);
        }
      }
    }
  }
  return found;
}

// Calls on(k, air, pad) for each sampled axial slice k that has outside air, air being that
// slice's nx*ny outside-air pixels (0/1) and pad its constant padding, from several threads.
template <class OnSlice>
void for_each_outside_air_slice(const CtImage& ct, const CalibrationParams& p, OnSlice on) {
  const Geometry& g = ct.geom;
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2], sxy = g.slice_voxels();
  if (ct.empty()) return;
  Geometry sg = g;
  sg.size[2] = 1;
  const double margin2 = p.body_margin_mm * p.body_margin_mm;
  constexpr std::size_t kMaxSlices = 24;
  const std::size_t slice_step = std::max<std::size_t>(1, (nz + kMaxSlices - 1) / kMaxSlices);
  // Slices are independent: one per thread. The distance transform's own parallel regions are
  // nested here and run single-threaded, which avoids a fork/join per slice.
#pragma omp parallel
  {
    std::vector<std::size_t> stack;
    MaskImage not_air(sg, 0);
    std::vector<std::uint8_t> reach(sxy), air(sxy), pad(sxy), run, reach2;
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
      const std::size_t k = std::size_t(kk);
      // Air statistics need thousands of voxels, not every slice: sample up to
      // kMaxSlices evenly spaced slices (the distance transform per slice is the cost).
      if (k % slice_step != 0) continue;
      const std::int16_t* c = ct.data.data() + k * sxy;
      const std::vector<int> values =
          mark_constant_padding(c, nx, ny, p.air_max_hu, pad, run, reach2, stack);
      seg::flood_from_border_2d(
          nx, ny, [&](std::size_t q) { return c[q] < p.air_max_hu; }, reach, stack);
      bool any = false;
      for (std::size_t q = 0; q < sxy; ++q) {
        // Body, table, air enclosed by them (lungs, bowel), and the FOV edge (padding).
        const bool padding = c[q] < p.padding_max_hu || pad[q];
        not_air[q] = reach[q] != 1 || padding;
        any |= reach[q] == 1 && !padding;
      }
      if (!any) continue;
      const VoxelVector<float> d2 = seg::squared_distance_to(not_air);
      for (std::size_t q = 0; q < sxy; ++q) {
        air[q] = reach[q] == 1 && c[q] >= p.padding_max_hu && !pad[q] && double(d2[q]) > margin2;
      }
      on(k, static_cast<const std::uint8_t*>(air.data()), static_cast<const std::uint8_t*>(pad.data()),
         values);
    }
  }
}

}  // namespace

MaskImage outside_air_mask(const CtImage& ct, const CalibrationParams& p) {
  MaskImage out(ct.geom, 0);
  const std::size_t sxy = ct.geom.slice_voxels();
  for_each_outside_air_slice(
      ct, p, [&](std::size_t k, const std::uint8_t* air, const std::uint8_t*, const std::vector<int>&) {
        std::copy(air, air + sxy, out.data.data() + k * sxy);
      });
  return out;
}

CalibrationParams calibration_params(const AirCheckParams& ranges) {
  CalibrationParams p;
  p.air_lo_hu = ranges.outside_air.lo_hu;
  p.air_hi_hu = ranges.outside_air.hi_hu;
  p.trachea_lo_hu = ranges.trachea.lo_hu;
  p.trachea_hi_hu = ranges.trachea.hi_hu;
  return p;
}

CalibrationCheck check_calibration(const CtImage& ct, const LabelImage& lungs,
                                   const CalibrationParams& p) {
  CalibrationCheck r;
  // Histogrammed slice by slice: a volume-sized mask for a few sampled slices would cost a
  // write and a read of every voxel.
  HuHistogram air;
  const std::size_t sxy = ct.geom.slice_voxels();
  std::set<int> padding_values;
  for_each_outside_air_slice(ct, p, [&](std::size_t k, const std::uint8_t* in_air,
                                        const std::uint8_t* pad, const std::vector<int>& values) {
    HuHistogram mine;
    std::size_t padded = 0;
    const std::int16_t* c = ct.data.data() + k * sxy;
    for (std::size_t q = 0; q < sxy; ++q) {
      if (in_air[q]) mine.add(c[q]);
      padded += pad[q];
    }
#pragma omp critical(lungvol_calibration_histogram)
    {
      air.merge(mine);
      r.padding_voxels += padded;
      padding_values.insert(values.begin(), values.end());
    }
  });
  r.outside_air = stats_of(air, p.min_air_voxels);
  r.padding_values_hu.assign(padding_values.begin(), padding_values.end());

  bool have_airway = false;
  if (!lungs.empty() && lungs.geom.same_grid(ct.geom)) {
    have_airway = true;
    r.trachea = stats_of(trachea_histogram(ct, lungs, p, r.trachea_slices), p.min_trachea_voxels);
  }

  bool ok = true;
  if (!r.outside_air.found) {
    r.flags.push_back("outside_air_not_found");
  } else if (!(r.outside_air.mean_hu >= p.air_lo_hu && r.outside_air.mean_hu <= p.air_hi_hu)) {
    r.flags.push_back("outside_air_out_of_tolerance");
    ok = false;
  }
  if (!have_airway) {
    r.flags.push_back("no_airway_label");
  } else if (!r.trachea.found) {
    r.flags.push_back("trachea_not_found");
  } else if (!(r.trachea.mean_hu >= p.trachea_lo_hu && r.trachea.mean_hu <= p.trachea_hi_hu)) {
    r.flags.push_back("trachea_out_of_tolerance");
    ok = false;
  }
  r.checked = r.outside_air.found || r.trachea.found;
  r.within_tolerance = r.checked && ok;
  return r;
}

AirCorrection apply_air_calibration(CtImage& ct, const CalibrationCheck& check,
                                    AirCalibrationMode mode, const CalibrationParams& p) {
  AirCorrection c;
  c.mode = mode == AirCalibrationMode::kOffset ? "offset" : "scale_about_water";
  c.reference = "outside_air";
  c.measured_air_hu = check.outside_air.mean_hu;
  if (!check.outside_air.found) {
    c.reason = "outside air not found (" + std::to_string(check.outside_air.n) + " voxels)";
    return c;
  }
  if (mode == AirCalibrationMode::kOffset) {
    c.slope = 1;
    c.intercept_hu = p.expected_air_hu - c.measured_air_hu;
  } else {
    if (!(c.measured_air_hu < -500)) {  // a scale through water needs air far from water
      c.reason = "measured air " + std::to_string(c.measured_air_hu) + " HU is not air";
      return c;
    }
    c.slope = p.expected_air_hu / c.measured_air_hu;
    c.intercept_hu = 0;
  }
  const double a = c.slope, b = c.intercept_hu, pad = p.padding_max_hu;
  const auto n = static_cast<std::ptrdiff_t>(ct.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t v = 0; v < n; ++v) {
    const double hu = ct.data[std::size_t(v)];
    if (hu < pad) continue;  // FOV padding is a marker, not a measurement
    const double x = std::round(a * hu + b);
    ct.data[std::size_t(v)] = static_cast<std::int16_t>(std::clamp(x, -32768.0, 32767.0));
  }
  c.applied = true;
  return c;
}

}  // namespace lungvol::dens
