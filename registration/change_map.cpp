#include "registration/change_map.hpp"

#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "volumetry/regions.hpp"

namespace lungvol::registration {

LabelImage change_map(const LabelImage& b, const LabelImage& f) {
  if (!b.geom.same_grid(f.geom)) {
    throw Error(ExitCode::kProcessing, "change map: the lesion maps are not on the same grid");
  }
  // [b][f] -> change label
  static constexpr std::uint8_t kTable[3][3] = {
      {labels::kNoChange, labels::kNew, labels::kNew},
      {labels::kResolved, labels::kPersistent, labels::kProgressed},
      {labels::kResolved, labels::kRegressed, labels::kPersistent}};
  LabelImage out(b.geom, LabelImage::Uninitialised{});
  const long n = static_cast<long>(b.size());
#pragma omp parallel for schedule(static)
  for (long q = 0; q < n; ++q) {
    const std::uint8_t bb = b.data[std::size_t(q)], ff = f.data[std::size_t(q)];
    out.data[std::size_t(q)] = kTable[bb <= 2 ? bb : 0][ff <= 2 ? ff : 0];
  }
  return out;
}

double ChangeVolumes::resolved_pct() const {
  return baseline_lesion_ml > 0 ? 100.0 * class_ml[labels::kResolved] / baseline_lesion_ml
                                : std::numeric_limits<double>::quiet_NaN();
}

std::vector<ChangeVolumes> change_volumes(const LabelImage& change, const LabelImage& lungs,
                                          const LabelImage& warped_lungs) {
  if (!change.geom.same_grid(lungs.geom) || !change.geom.same_grid(warped_lungs.geom)) {
    throw Error(ExitCode::kProcessing, "change volumes: maps not on the baseline grid");
  }
  const auto& names = vol::region_names();
  const Geometry& g = change.geom;
  const auto right_zone = vol::lung_slice_zones(lungs, labels::kRightLung);
  const auto left_zone = vol::lung_slice_zones(lungs, labels::kLeftLung);
  // counts[side][zone][class], class 0..5, plus baseline lung voxels in [6].
  using Counts = std::array<std::array<std::array<double, 7>, 3>, 2>;
  Counts total{};
  const std::size_t sxy = g.slice_voxels();
#pragma omp parallel
  {
    Counts local{};
#pragma omp for schedule(static) nowait
    for (long k = 0; k < long(g.size[2]); ++k) {
      for (std::size_t p = 0; p < sxy; ++p) {
        const std::size_t q = std::size_t(k) * sxy + p;
        const std::uint8_t l = lungs.data[q];
        const std::uint8_t c = change.data[q];
        const bool in_lung = l == labels::kRightLung || l == labels::kLeftLung;
        if (!in_lung && c == labels::kNoChange) continue;
        std::uint8_t side_label = l;
        if (!in_lung) {
          side_label = warped_lungs.data[q];
          if (side_label != labels::kRightLung && side_label != labels::kLeftLung) {
            // Neither lung: counted with the nearer lung by position is not attempted; such
            // voxels go to the right or left by the patient's midline (x < 0 is right in LPS).
            side_label = g.to_physical(double(p % g.size[0]), double(p / g.size[0]), double(k))[0] < 0
                             ? labels::kRightLung
                             : labels::kLeftLung;
          }
        }
        const int side = side_label == labels::kRightLung ? 0 : 1;
        const int z = std::max(0, side == 0 ? right_zone[std::size_t(k)] : left_zone[std::size_t(k)]);
        if (in_lung) local[side][z][6] += 1;
        if (c != labels::kNoChange && c < 6) local[side][z][c] += 1;
      }
    }
#pragma omp critical
    for (int s = 0; s < 2; ++s) {
      for (int z = 0; z < 3; ++z) {
        for (int c = 0; c < 7; ++c) total[s][z][c] += local[s][z][c];
      }
    }
  }
  const double vml = g.voxel_volume_ml();
  std::vector<ChangeVolumes> out(names.size());
  auto add = [&](ChangeVolumes& v, int s, int z) {
    for (int c = 1; c < 6; ++c) v.class_ml[std::size_t(c)] += total[s][z][c] * vml;
    v.baseline_lung_ml += total[s][z][6] * vml;
  };
  for (std::size_t r = 0; r < names.size(); ++r) out[r].region = names[r];
  // Order of vol::region_names(): lungs, right, left, right_upper..lower, left_upper..lower,
  // upper, middle, lower.
  for (int s = 0; s < 2; ++s) {
    for (int z = 0; z < 3; ++z) {
      add(out[0], s, z);
      add(out[std::size_t(1 + s)], s, z);
      add(out[std::size_t(3 + 3 * s + z)], s, z);
      add(out[std::size_t(9 + z)], s, z);
    }
  }
  for (auto& v : out) {
    const auto& m = v.class_ml;
    v.baseline_lesion_ml = m[labels::kResolved] + m[labels::kPersistent] + m[labels::kProgressed] +
                           m[labels::kRegressed];
    v.followup_lesion_ml = m[labels::kPersistent] + m[labels::kNew] + m[labels::kProgressed] +
                           m[labels::kRegressed];
  }
  return out;
}

std::vector<ChangeMetric> change_metrics(const ChangeVolumes& v) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto& m = v.class_ml;
  const double bl = v.baseline_lesion_ml;
  return {
      {"resolved_ml", m[labels::kResolved], "mL"},
      {"persistent_ml", m[labels::kPersistent], "mL"},
      {"new_ml", m[labels::kNew], "mL"},
      {"progressed_ml", m[labels::kProgressed], "mL"},
      {"regressed_ml", m[labels::kRegressed], "mL"},
      {"baseline_lesion_ml", bl, "mL"},
      {"followup_lesion_ml", v.followup_lesion_ml, "mL"},
      {"resolved_pct", v.resolved_pct(), "%"},
      {"new_pct", v.baseline_lung_ml > 0 ? 100.0 * m[labels::kNew] / v.baseline_lung_ml : nan, "%"},
      {"progressed_pct", bl > 0 ? 100.0 * m[labels::kProgressed] / bl : nan, "%"},
      {"regressed_pct", bl > 0 ? 100.0 * m[labels::kRegressed] / bl : nan, "%"},
  };
}

}  // namespace lungvol::registration
