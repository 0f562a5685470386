#include "tests/unit/pipeline/band_families.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "core/labels.hpp"
#include "segmentation/morphology.hpp"

namespace lungvol::test {
namespace {

constexpr double kNearMm = 4.0;        // a band's neighbourhood for its measured volume
constexpr double kAnchorClearMm = 75;  // bands of one scan never share a neighbourhood

bool is_lung(std::uint8_t v) { return v == labels::kRightLung || v == labels::kLeftLung; }

double pct(double measured, double truth) {
  return truth > 0 ? 100.0 * (measured - truth) / truth : std::numeric_limits<double>::quiet_NaN();
}

PleuralBand band_for(BandKind kind, double thickness_mm, double radius_mm, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  PleuralBand b;
  b.kind = kind;
  b.thickness_mm = thickness_mm;
  b.radius_mm = radius_mm;
  switch (kind) {
    case BandKind::kGroundGlass:
      b.lo_hu = -650;
      b.hi_hu = -350;
      break;
    case BandKind::kSolid:  // dependent consolidation, about +20 HU
      b.lo_hu = -60;
      b.hi_hu = 80;
      b.texture_hu = 20;
      break;
    case BandKind::kCrazyPaving:
      b.lo_hu = -650;
      b.hi_hu = -450;
      b.texture_hu = 30;
      b.septa_spacing_mm = 5.0 + 5.0 * uni(rng);
      b.septa_thickness_mm = 1.0 + 1.0 * uni(rng);
      break;
  }
  return b;
}

// Measured change near one band (its truth voxels grown by kNearMm, lung only).
void measure_band(const CtImage& ct, const LabelImage& lungs, const LabelImage& base,
                  const LabelImage& with, const HuBand& lesion_band, BandResult& r) {
  const Geometry& g = lungs.geom;
  if (r.truth.voxels.empty()) return;
  std::array<std::size_t, 3> lo{g.size[0], g.size[1], g.size[2]}, hi{0, 0, 0};
  for (const std::size_t n : r.truth.voxels) {
    const std::array<std::size_t, 3> p{n % g.size[0], (n / g.size[0]) % g.size[1], n / g.slice_voxels()};
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  for (int a = 0; a < 3; ++a) {
    const std::size_t m = std::size_t(std::ceil(kNearMm / g.spacing[a]));
    lo[a] = lo[a] >= m ? lo[a] - m : 0;
    hi[a] = std::min(hi[a] + m, g.size[a] - 1);
  }
  Geometry lg = g;
  for (int a = 0; a < 3; ++a) lg.size[a] = hi[a] - lo[a] + 1;
  MaskImage local(lg, 0);
  for (const std::size_t n : r.truth.voxels) {
    local.at(n % g.size[0] - lo[0], (n / g.size[0]) % g.size[1] - lo[1], n / g.slice_voxels() - lo[2]) = 1;
  }
  const MaskImage near = seg::dilate(local, kNearMm);
  std::int64_t ggo = 0, solid = 0;
  for (std::size_t k = 0; k < lg.size[2]; ++k)
    for (std::size_t j = 0; j < lg.size[1]; ++j)
      for (std::size_t i = 0; i < lg.size[0]; ++i) {
        if (!near.at(i, j, k)) continue;
        const std::size_t n = g.index(lo[0] + i, lo[1] + j, lo[2] + k);
        if (!is_lung(lungs[n])) continue;
        ggo += (with[n] == labels::kGroundGlass) - (base[n] == labels::kGroundGlass);
        solid += (with[n] == labels::kSolid) - (base[n] == labels::kSolid);
      }
  // The recovered share: of the inserted voxels whose new HU lies in the lesion band (the soft
  // margins' faint voxels below it can never be lesion), those labelled lesion.
  std::uint64_t labelled = 0, in_band = 0;
  for (const std::size_t n : r.truth.voxels) {
    if (!lesion_band.contains(ct[n])) continue;
    ++in_band;
    labelled += with[n] != labels::kNoLesion;
  }
  r.ggo_ml = double(ggo) * g.voxel_volume_ml();
  r.solid_ml = double(solid) * g.voxel_volume_ml();
  r.band_voxels = in_band;
  r.labelled_fraction = in_band ? double(labelled) / double(in_band) : 0.0;
}

}  // namespace

double BandResult::ggo_error_pct() const { return pct(ggo_ml, truth.ggo_ml); }
double BandResult::solid_error_pct() const { return pct(solid_ml, truth.solid_ml); }
double BandResult::lesion_error_pct() const {
  return pct(ggo_ml + solid_ml, truth.ggo_ml + truth.solid_ml);
}

std::vector<BandResult> run_family(const CtImage& ct, const LabelImage& lungs,
                                   const seg::LesionSegmentation& base, const Protocol& protocol,
                                   const FamilySpec& spec, CtImage* inserted,
                                   seg::LesionSegmentation* inserted_lesions,
                                   std::vector<BandResult>* inserted_bands) {
  std::vector<BandResult> out;
  for (std::size_t t = 0; t < spec.thicknesses_mm.size(); ++t) {
    std::mt19937_64 rng(spec.seed * 1000003ULL + t * 7919ULL + std::uint64_t(spec.kind) * 104729ULL);
    CtImage with = ct;
    std::vector<std::array<double, 3>> taken;
    std::vector<BandResult> bands;
    for (const std::uint8_t lung : {labels::kRightLung, labels::kLeftLung}) {
      for (const Facing facing : {Facing::kPosterior, Facing::kLateral}) {
        BandResult r;
        r.kind = spec.kind;
        r.thickness_mm = spec.thicknesses_mm[t];
        r.facing = facing;
        r.lung = lung;
        r.anchor = pick_pleural_anchor(lungs, lung, facing, rng, taken, kAnchorClearMm);
        taken.push_back(r.anchor);
        PleuralBand b = band_for(spec.kind, r.thickness_mm, spec.radius_mm, rng);
        b.anchor_index = r.anchor;
        r.truth = insert_pleural_band(with, lungs, b, protocol.lesion, rng());
        bands.push_back(std::move(r));
      }
    }
    seg::LesionSegmentation seg = seg::segment_lesions(with, lungs, protocol.lesion);
    const HuBand lesion_band{protocol.lesion.low_hu(), protocol.lesion.high_hu()};
    for (auto& r : bands) measure_band(with, lungs, base.lesions, seg.lesions, lesion_band, r);
    out.insert(out.end(), bands.begin(), bands.end());
    if (t + 1 == spec.thicknesses_mm.size()) {
      if (inserted) *inserted = std::move(with);
      if (inserted_lesions) *inserted_lesions = std::move(seg);
      if (inserted_bands) *inserted_bands = bands;
    }
  }
  return out;
}

std::string format_results(const std::string& title, const std::vector<BandResult>& results) {
  std::ostringstream s;
  s << title << "\n";
  s << fmt::format("  {:>5} {:>9} {:>5} | {:>8} {:>8} {:>7} | {:>8} {:>8} {:>7} | {:>7} {:>6}\n",
                   "t_mm", "facing", "lung", "ggo_in", "ggo_out", "err%", "sol_in", "sol_out",
                   "err%", "lesion%", "lab%");
  std::map<double, std::vector<const BandResult*>> by_t;
  for (const auto& r : results) {
    by_t[r.thickness_mm].push_back(&r);
    s << fmt::format("  {:5.1f} {:>9} {:>5} | {:8.2f} {:8.2f} {:+7.1f} | {:8.2f} {:8.2f} {:+7.1f} | {:+7.1f} {:6.1f}\n",
                     r.thickness_mm, facing_name(r.facing),
                     r.lung == labels::kRightLung ? "right" : "left", r.truth.ggo_ml, r.ggo_ml,
                     r.ggo_error_pct(), r.truth.solid_ml, r.solid_ml, r.solid_error_pct(),
                     r.lesion_error_pct(), 100 * r.labelled_fraction);
  }
  s << "  per thickness (sum over its bands): truth -> measured\n";
  for (const auto& [t, rs] : by_t) {
    double gi = 0, go = 0, si = 0, so = 0, worst = 0, labelled = 0, inserted = 0;
    for (const auto* r : rs) {
      gi += r->truth.ggo_ml;
      go += r->ggo_ml;
      si += r->truth.solid_ml;
      so += r->solid_ml;
      labelled += r->labelled_fraction * double(r->band_voxels);
      inserted += double(r->band_voxels);
      const double e = r->lesion_error_pct();
      if (std::abs(e) > std::abs(worst)) worst = e;
    }
    s << fmt::format("  {:5.1f} mm: ggo {:7.2f} -> {:7.2f} mL ({:+6.1f} %), solid {:7.2f} -> {:7.2f} mL ({:+6.1f} %), worst band lesion {:+6.1f} %, recovered {:5.1f} %\n",
                     t, gi, go, pct(go, gi), si, so, pct(so, si), worst,
                     inserted > 0 ? 100 * labelled / inserted : 0.0);
  }
  return s.str();
}

double lesion_percent(const seg::LesionSegmentation& s, const LabelImage& lungs) {
  std::uint64_t lung = 0, lesion = 0;
  for (std::size_t n = 0; n < lungs.size(); ++n) {
    if (!is_lung(lungs[n])) continue;
    ++lung;
    lesion += s.lesions[n] != labels::kNoLesion;
  }
  return lung ? 100.0 * double(lesion) / double(lung) : 0.0;
}

}  // namespace lungvol::test
