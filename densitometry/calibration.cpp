#include "densitometry/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

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

// The airway label eroded `iterations` times (6-neighbourhood), within the airway's bounding
// box: outside the box there is no airway, so nothing there could survive. Empty when there is
// no airway label at all.
std::optional<HuHistogram> eroded_airway_histogram(const CtImage& ct, const LabelImage& lungs,
                                                   int iterations) {
  const seg::Box box = seg::bounding_box(lungs, labels::kAirway, 0.0);
  if (box.empty()) return std::nullopt;
  const CtImage sub_ct = seg::crop(ct, box);
  const LabelImage sub = seg::crop(lungs, box);
  MaskImage m(sub.geom, 0);
  seg::for_each_voxel(m.size(), [&](std::size_t v) { m[v] = sub[v] == labels::kAirway; });
  const auto& sz = m.geom.size;
  // Outside the image counts as wall: a lumen cut by the volume's edge is not trusted. Within
  // the image, the box's own border holds no surviving voxel either (its outer neighbours are
  // not airway), so the box behaves like the whole image.
  const std::size_t lo[3] = {box.lo[0], box.lo[1], box.lo[2]};
  const std::size_t full[3] = {lungs.geom.size[0], lungs.geom.size[1], lungs.geom.size[2]};
  auto interior = [&](std::size_t x, int a) {
    return x > 0 && x + 1 < sz[a] && lo[a] + x > 0 && lo[a] + x + 1 < full[a];
  };
  for (int it = 0; it < iterations; ++it) {
    MaskImage next(m.geom, 0);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t k = 0; k < std::ptrdiff_t(sz[2]); ++k) {
      const std::size_t kk = std::size_t(k);
      for (std::size_t j = 0; j < sz[1]; ++j) {
        for (std::size_t i = 0; i < sz[0]; ++i) {
          if (!m.at(i, j, kk)) continue;
          const bool inner = interior(i, 0) && interior(j, 1) && interior(kk, 2) &&
                             m.at(i - 1, j, kk) && m.at(i + 1, j, kk) && m.at(i, j - 1, kk) &&
                             m.at(i, j + 1, kk) && m.at(i, j, kk - 1) && m.at(i, j, kk + 1);
          next.at(i, j, kk) = inner;
        }
      }
    }
    m = std::move(next);
  }
  return histogram_where(sub_ct, [&](std::size_t v) { return m[v] != 0; });
}

}  // namespace

namespace {

// Calls on(k, air) for each sampled axial slice k that has outside air, air being that slice's
// nx*ny outside-air pixels (0/1), from several threads at once.
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
    std::vector<std::uint8_t> reach(sxy), air(sxy);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t kk = 0; kk < std::ptrdiff_t(nz); ++kk) {
      const std::size_t k = std::size_t(kk);
      // Air statistics need thousands of voxels, not every slice: sample up to
      // kMaxSlices evenly spaced slices (the distance transform per slice is the cost).
      if (k % slice_step != 0) continue;
      const std::int16_t* c = ct.data.data() + k * sxy;
      seg::flood_from_border_2d(
          nx, ny, [&](std::size_t q) { return c[q] < p.air_max_hu; }, reach, stack);
      bool any = false;
      for (std::size_t q = 0; q < sxy; ++q) {
        // Body, table, air enclosed by them (lungs, bowel), and the FOV edge (padding).
        not_air[q] = reach[q] != 1 || c[q] < p.padding_max_hu;
        any |= reach[q] == 1;
      }
      if (!any) continue;
      const VoxelVector<float> d2 = seg::squared_distance_to(not_air);
      for (std::size_t q = 0; q < sxy; ++q) {
        air[q] = reach[q] == 1 && c[q] >= p.padding_max_hu && double(d2[q]) > margin2;
      }
      on(k, static_cast<const std::uint8_t*>(air.data()));
    }
  }
}

}  // namespace

MaskImage outside_air_mask(const CtImage& ct, const CalibrationParams& p) {
  MaskImage out(ct.geom, 0);
  const std::size_t sxy = ct.geom.slice_voxels();
  for_each_outside_air_slice(ct, p, [&](std::size_t k, const std::uint8_t* air) {
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
  for_each_outside_air_slice(ct, p, [&](std::size_t k, const std::uint8_t* in_air) {
    HuHistogram mine;
    const std::int16_t* c = ct.data.data() + k * sxy;
    for (std::size_t q = 0; q < sxy; ++q) {
      if (in_air[q]) mine.add(c[q]);
    }
#pragma omp critical(lungvol_calibration_histogram)
    air.merge(mine);
  });
  r.outside_air = stats_of(air, p.min_air_voxels);

  bool have_airway = false;
  if (!lungs.empty() && lungs.geom.same_grid(ct.geom)) {
    const auto ht = eroded_airway_histogram(ct, lungs, p.trachea_erosion_voxels);
    have_airway = ht.has_value();
    r.trachea = stats_of(ht.value_or(HuHistogram{}), p.min_trachea_voxels);
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
