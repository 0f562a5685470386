#include "registration/consistency.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "registration/field.hpp"

namespace lungvol::registration {
namespace {

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

}  // namespace

LabelImage warped_envelope(const VisitSpace& source, const VisitSpace& target) {
  if (!source.lungs || !target.lungs) {
    throw Error(ExitCode::kProcessing, "warped envelope: a visit without a lung map");
  }
  const Geometry& grid = target.lungs->geom;
  LabelImage lungs_only(source.lungs->geom, LabelImage::Uninitialised{});
  const long n = static_cast<long>(lungs_only.size());
#pragma omp parallel for schedule(static)
  for (long q = 0; q < n; ++q) {
    const std::uint8_t v = source.lungs->data[std::size_t(q)];
    lungs_only.data[std::size_t(q)] = is_lung(v) ? v : 0;
  }
  // The target's lungs, generously: where the source's lungs can land.
  IndexBox box = label_box(*target.lungs, 40.0, {labels::kRightLung, labels::kLeftLung});
  if (box.empty()) box = full_box(grid);
  TransformChain chain;
  chain.steps = {target.to_baseline, source.from_baseline};
  return warp_labels(lungs_only, chain, grid, box);
}

std::size_t best_aerated(const std::vector<double>& lesion_pct, const std::vector<double>& lung_ml) {
  if (lesion_pct.empty() || lesion_pct.size() != lung_ml.size()) {
    throw Error(ExitCode::kProcessing, "best-aerated visit: no visit");
  }
  std::size_t best = 0;
  for (std::size_t i = 1; i < lesion_pct.size(); ++i) {
    if (lesion_pct[i] < lesion_pct[best] ||
        (lesion_pct[i] == lesion_pct[best] && lung_ml[i] > lung_ml[best])) {
      best = i;
    }
  }
  return best;
}

MaskImage erode_box(const LabelImage& mask, double r_mm) {
  const Geometry& g = mask.geom;
  MaskImage cur(g, MaskImage::Uninitialised{});
  for (std::size_t q = 0; q < mask.size(); ++q) cur.data[q] = mask.data[q] != 0;
  for (int a = 0; a < 3; ++a) {
    const long r = static_cast<long>(std::ceil(r_mm / g.spacing[a] - 1e-9));
    if (r <= 0 || g.size[a] < 2) continue;
    MaskImage next(g, MaskImage::Uninitialised{});
    const std::size_t stride = a == 0 ? 1 : a == 1 ? g.size[0] : g.slice_voxels();
    const std::size_t len = g.size[a];
    // Lines along axis a: start indices are every voxel whose coordinate a is 0.
    const std::size_t lines = g.voxel_count() / len;
    const long nl = static_cast<long>(lines);
#pragma omp parallel
    {
      std::vector<long> zeros(len + 1);
#pragma omp for schedule(static)
      for (long line = 0; line < nl; ++line) {
        std::size_t start;
        const std::size_t L = std::size_t(line);
        if (a == 0) {
          start = L * g.size[0];
        } else if (a == 1) {
          start = (L / g.size[0]) * g.slice_voxels() + L % g.size[0];
        } else {
          start = L;
        }
        zeros[0] = 0;
        for (std::size_t t = 0; t < len; ++t) zeros[t + 1] = zeros[t] + (cur.data[start + t * stride] ? 0 : 1);
        for (std::size_t t = 0; t < len; ++t) {
          // Outside the image counts as outside the mask.
          const long lo = long(t) - r, hi = long(t) + r;
          bool ok = lo >= 0 && hi < long(len);
          if (ok) ok = zeros[std::size_t(hi) + 1] - zeros[std::size_t(lo)] == 0;
          next.data[start + t * stride] = ok ? 1 : 0;
        }
      }
    }
    cur = std::move(next);
  }
  return cur;
}

MaskAgreement compare_lung_masks(const LabelImage& carried, const LabelImage& own, const CtImage& ct,
                                 const ConsistencyParams& p) {
  if (!carried.geom.same_grid(own.geom) || !own.geom.same_grid(ct.geom)) {
    throw Error(ExitCode::kProcessing, "mask comparison: images not on one grid");
  }
  MaskAgreement m;
  const Geometry& g = own.geom;
  // The follow-up's own lung voxels, over the whole grid.
  double b = 0;
  const long n = static_cast<long>(own.size());
#pragma omp parallel for schedule(static) reduction(+ : b)
  for (long q = 0; q < n; ++q) b += is_lung(own.data[std::size_t(q)]);
  // Everything else is zero outside the carried lungs' bounding box (the eroded core lies inside
  // the carried lungs), so it is computed on that box only. The erosion gives the same core: a
  // window that crosses the box's border holds a voxel outside the carried lungs either way.
  double inter = 0, a = 0, missed = 0;
  const IndexBox box = label_box(carried, 0.0, {labels::kRightLung, labels::kLeftLung});
  if (!box.empty()) {
    Geometry cg = g;
    for (int ax = 0; ax < 3; ++ax) cg.size[ax] = box.hi[ax] - box.lo[ax];
    LabelImage carried_lung(cg, LabelImage::Uninitialised{});
    const long nk = static_cast<long>(cg.size[2]);
#pragma omp parallel for schedule(static)
    for (long k = 0; k < nk; ++k) {
      for (std::size_t j = 0; j < cg.size[1]; ++j) {
        const std::uint8_t* src = carried.data.data() + g.index(box.lo[0], box.lo[1] + j, box.lo[2] + std::size_t(k));
        std::uint8_t* dst = carried_lung.data.data() + cg.index(0, j, std::size_t(k));
        for (std::size_t i = 0; i < cg.size[0]; ++i) dst[i] = is_lung(src[i]);
      }
    }
    const MaskImage core = erode_box(carried_lung, p.erode_mm);
#pragma omp parallel for schedule(static) reduction(+ : inter, a, missed)
    for (long k = 0; k < nk; ++k) {
      for (std::size_t j = 0; j < cg.size[1]; ++j) {
        const std::size_t q0 = g.index(box.lo[0], box.lo[1] + j, box.lo[2] + std::size_t(k));
        const std::size_t c0 = cg.index(0, j, std::size_t(k));
        for (std::size_t i = 0; i < cg.size[0]; ++i) {
          const std::size_t q = q0 + i, c = c0 + i;
          const bool x = carried_lung.data[c] != 0, y = is_lung(own.data[q]);
          inter += x && y;
          a += x;
          if (core.data[c] && !y && own.data[q] != labels::kAirway && ct.data[q] >= p.dense_low_hu &&
              ct.data[q] < p.dense_high_hu) {
            missed += 1;
          }
        }
      }
    }
  }
  const double vml = own.geom.voxel_volume_ml();
  m.dice = a + b > 0 ? 2 * inter / (a + b) : 1.0;
  m.carried_ml = a * vml;
  m.own_ml = b * vml;
  m.disagreement_ml = (a + b - 2 * inter) * vml;
  m.missed_dense_ml = missed * vml;
  if (m.dice < p.min_dice) {
    m.flagged = true;
    m.reason = fmt::format("Dice {:.3f} < {:.2f}", m.dice, p.min_dice);
  }
  if (m.missed_dense_ml > p.max_missed_dense_ml) {
    m.flagged = true;
    m.reason += fmt::format("{}{:.1f} mL of dense tissue inside the carried lung is outside this "
                            "scan's lung mask (> {:.0f} mL)",
                            m.reason.empty() ? "" : "; ", m.missed_dense_ml, p.max_missed_dense_ml);
  }
  return m;
}

}  // namespace lungvol::registration
