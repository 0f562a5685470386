// LIDC nodule validation of the ground-glass / solid split (docs/validation.md, "LIDC nodules").
// For each of the 322 LIDC-IDRI nodule crops the radiologists' mask is both the lung mask and
// the lesion region; the solid fraction of the default protocol is compared with the nodule's
// texture rating (1 ground-glass ... 5 solid) by ROC AUC, then partial-volume variants at the
// nodule border and a sweep of the split threshold are tried.
//
//   lidc_validation [DATA_DIR] [PROTOCOL]
// DATA_DIR defaults to ../shared/data/lidc-nodule-vois-ct-slicing, PROTOCOL to the default.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/protocol.hpp"
#include "tests/unit/lidc/lidc_nodules.hpp"

namespace {

using lungvol::Protocol;
using lungvol::lidc::Nodule;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Voxel weights of one partial-volume variant; a variant whose selection empties a nodule
// falls back to all its mask voxels (counted and printed).
struct Variant {
  std::string name;
  std::function<double(const Nodule&, std::size_t)> weight;
};

std::vector<Variant> variants() {
  return {
      {"all mask voxels (protocol as is)", [](const Nodule&, std::size_t) { return 1.0; }},
      {"eroded 1 voxel in-plane (4-neighbour)",
       [](const Nodule& n, std::size_t v) { return double(n.interior_2d[v]); }},
      {"eroded 1 voxel in 3-D (6-neighbour)",
       [](const Nodule& n, std::size_t v) { return double(n.interior_3d[v]); }},
      {"outer shell <= 1.0 mm excluded",
       [](const Nodule& n, std::size_t v) { return n.border_mm[v] > 1.0 ? 1.0 : 0.0; }},
      {"outer shell <= 1.5 mm excluded",
       [](const Nodule& n, std::size_t v) { return n.border_mm[v] > 1.5 ? 1.0 : 0.0; }},
      {"weight min(1, d / 2 mm)",
       [](const Nodule& n, std::size_t v) { return std::min(1.0, n.border_mm[v] / 2.0); }},
      {"weight min(1, d / 3 mm)",
       [](const Nodule& n, std::size_t v) { return std::min(1.0, n.border_mm[v] / 3.0); }},
  };
}

// Weighted fraction of voxels in [lo, hi) with HU >= split; NaN when the weight there is 0.
double fraction(const Nodule& n, const std::function<double(const Nodule&, std::size_t)>& w,
                double lo, double split, double hi, bool* fell_back = nullptr) {
  double band = 0, solid = 0, total_w = 0;
  for (std::size_t v = 0; v < n.hu.size(); ++v) total_w += w(n, v);
  const bool fallback = total_w <= 0;
  if (fell_back) *fell_back = fallback;
  for (std::size_t v = 0; v < n.hu.size(); ++v) {
    const double hu = n.hu[v];
    if (hu < lo || hu >= hi) continue;
    const double wv = fallback ? 1.0 : w(n, v);
    band += wv;
    if (hu >= split) solid += wv;
  }
  return band > 0 ? solid / band : std::numeric_limits<double>::quiet_NaN();
}

struct Grouping {
  std::string name;
  int neg_max;  // texture <= neg_max: non-solid (negative)
  int pos_min;  // texture >= pos_min: solid (positive)
};
const std::vector<Grouping> kGroupings = {{"1-2 vs 5", 2, 5}, {"1-3 vs 4-5", 3, 4}, {"1 vs 5", 1, 5}};

double auc(const std::vector<Nodule>& nodules, const std::vector<double>& score, const Grouping& g) {
  std::vector<double> pos, neg;
  for (std::size_t i = 0; i < nodules.size(); ++i) {
    if (nodules[i].texture >= g.pos_min) pos.push_back(score[i]);
    if (nodules[i].texture <= g.neg_max) neg.push_back(score[i]);
  }
  return lungvol::lidc::roc_auc(pos, neg);
}

// Paired, stratified bootstrap of AUC(b) - AUC(a): resample the positive and the negative
// nodules separately (fixed seed, 2000 resamples), percentile 95% interval.
std::pair<double, double> auc_difference_ci(const std::vector<Nodule>& nodules,
                                            const std::vector<double>& a,
                                            const std::vector<double>& b, const Grouping& g) {
  std::vector<std::size_t> pos, neg;
  for (std::size_t i = 0; i < nodules.size(); ++i) {
    if (nodules[i].texture >= g.pos_min) pos.push_back(i);
    if (nodules[i].texture <= g.neg_max) neg.push_back(i);
  }
  std::mt19937_64 rng(20240131);
  std::uniform_int_distribution<std::size_t> pick_pos(0, pos.size() - 1), pick_neg(0, neg.size() - 1);
  std::vector<double> diffs;
  std::vector<double> pa(pos.size()), pb(pos.size()), na(neg.size()), nb(neg.size());
  for (int r = 0; r < 2000; ++r) {
    for (std::size_t i = 0; i < pos.size(); ++i) {
      const std::size_t k = pos[pick_pos(rng)];
      pa[i] = a[k];
      pb[i] = b[k];
    }
    for (std::size_t i = 0; i < neg.size(); ++i) {
      const std::size_t k = neg[pick_neg(rng)];
      na[i] = a[k];
      nb[i] = b[k];
    }
    diffs.push_back(lungvol::lidc::roc_auc(pb, nb) - lungvol::lidc::roc_auc(pa, na));
  }
  std::sort(diffs.begin(), diffs.end());
  return {diffs[49], diffs[1949]};  // 2.5th and 97.5th of 2000 (order statistics 50, 1950)
}

int run(int argc, char** argv) {
  const std::string dir =
      argc > 1 ? argv[1] : std::string(LUNGVOL_SHARED_DIR) + "/data/lidc-nodule-vois-ct-slicing";
  const Protocol protocol = lungvol::load_protocol(argc > 2 ? argv[2] : lungvol::kDefaultProtocol);
  const double low = protocol.lesion.low_hu(), split = protocol.lesion.split_hu(),
               high = protocol.lesion.high_hu();
  const std::vector<Nodule> nodules = lungvol::lidc::load_nodules(dir);

  std::printf("LIDC nodule validation: %zu nodules from %s\n", nodules.size(), dir.c_str());
  std::printf("protocol %s %s: lesion band [%g, %g) HU, split %g HU\n", protocol.name.c_str(),
              protocol.version.c_str(), low, high, split);
  std::printf("banded score  = among mask voxels in [%g, %g), the fraction with HU >= split "
              "(the protocol's solid / lesion volume)\n", low, high);
  std::printf("all-voxel score = fraction of all mask voxels with HU >= split\n\n");

  // Primary score through the pipeline's own measurement (histograms -> measure_volumes).
  std::vector<double> banded, all, med_hu, mean_hu;
  for (const Nodule& n : nodules) {
    const auto h = lungvol::lidc::histogram(n, [](std::size_t) { return true; });
    banded.push_back(lungvol::lidc::banded_solid_fraction(h, protocol, n.voxel_ml));
    all.push_back(lungvol::lidc::all_solid_fraction(h, split));
    std::vector<double> hu(n.hu.begin(), n.hu.end());
    med_hu.push_back(lungvol::lidc::median(hu));
    double s = 0;
    for (double x : hu) s += x;
    mean_hu.push_back(s / double(hu.size()));
  }

  std::printf("Per rating (medians over nodules)\n\n");
  std::printf("| texture | nodules | banded solid fraction | all-voxel solid fraction | median HU in mask |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (int t = 1; t <= 5; ++t) {
    std::vector<double> b, a, m;
    for (std::size_t i = 0; i < nodules.size(); ++i) {
      if (nodules[i].texture != t) continue;
      b.push_back(banded[i]);
      a.push_back(all[i]);
      m.push_back(med_hu[i]);
    }
    std::printf("| %d | %zu | %.3f | %.3f | %.0f |\n", t, b.size(), lungvol::lidc::median(b),
                lungvol::lidc::median(a), lungvol::lidc::median(m));
  }

  std::printf("\nROC AUC (solid-rated = positive; Mann-Whitney U / (m n), exact)\n\n");
  std::printf("| score |");
  for (const auto& g : kGroupings) std::printf(" %s |", g.name.c_str());
  std::printf("\n|---|");
  for (std::size_t i = 0; i < kGroupings.size(); ++i) std::printf("---:|");
  std::printf("\n");
  const auto row = [&](const std::string& name, const std::vector<double>& score) {
    std::printf("| %s |", name.c_str());
    for (const auto& g : kGroupings) std::printf(" %.4f |", auc(nodules, score, g));
    std::printf("\n");
  };
  row("banded solid fraction (default protocol)", banded);
  row("all-voxel solid fraction", all);
  row("median HU in mask (reference)", med_hu);
  row("mean HU in mask (reference)", mean_hu);

  std::printf("\nPartial-volume handling at the nodule border (split %g HU)\n\n", split);
  std::printf("| variant | fallbacks |");
  for (const auto& g : kGroupings) std::printf(" banded %s | all-voxel %s |", g.name.c_str(), g.name.c_str());
  std::printf(" banded change 1-2 vs 5 (95%% CI) | banded change 1-3 vs 4-5 (95%% CI) |");
  std::printf("\n|---|---:|");
  for (std::size_t i = 0; i < kGroupings.size(); ++i) std::printf("---:|---:|");
  std::printf("---:|---:|\n");
  const std::vector<Variant> vs = variants();
  std::vector<double> as_is;
  for (const Variant& var : vs) {
    std::vector<double> b, a;
    int fallbacks = 0;
    for (const Nodule& n : nodules) {
      bool fb = false;
      b.push_back(fraction(n, var.weight, low, split, high, &fb));
      a.push_back(fraction(n, var.weight, -kInf, split, kInf));
      fallbacks += fb;
    }
    std::printf("| %s | %d |", var.name.c_str(), fallbacks);
    for (const auto& g : kGroupings) std::printf(" %.4f | %.4f |", auc(nodules, b, g), auc(nodules, a, g));
    if (as_is.empty()) as_is = b;
    for (int gi = 0; gi < 2; ++gi) {
      const Grouping& g = kGroupings[std::size_t(gi)];
      const auto ci = auc_difference_ci(nodules, as_is, b, g);
      std::printf(" %+.4f (%+.4f, %+.4f) |", auc(nodules, b, g) - auc(nodules, as_is, g), ci.first,
                  ci.second);
    }
    std::printf("\n");
  }
  // The generic weighted score with unit weights must equal the pipeline's measurement.
  for (std::size_t i = 0; i < nodules.size(); ++i) {
    const double b = fraction(nodules[i], vs[0].weight, low, split, high);
    if (!(std::abs(b - banded[i]) < 1e-12) && !(std::isnan(b) && std::isnan(banded[i]))) {
      throw lungvol::Error(lungvol::ExitCode::kProcessing, "score mismatch for " + nodules[i].file);
    }
  }

  std::printf("\nAUC against the split threshold (band low %g, high %g; all mask voxels, and the "
              "outer shell <= 1.0 mm excluded)\n\n", low, high);
  std::printf("| split HU | banded 1-2 vs 5 | all-voxel 1-2 vs 5 | banded 1-3 vs 4-5 | all-voxel 1-3 vs 4-5 | shell-excluded banded 1-2 vs 5 | shell-excluded all-voxel 1-2 vs 5 |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int s = -500; s <= -100; s += 25) {
    std::vector<double> b, a, sb, sa;
    for (const Nodule& n : nodules) {
      b.push_back(fraction(n, vs[0].weight, low, s, high));
      a.push_back(fraction(n, vs[0].weight, -kInf, s, kInf));
      sb.push_back(fraction(n, vs[3].weight, low, s, high));
      sa.push_back(fraction(n, vs[3].weight, -kInf, s, kInf));
    }
    std::printf("| %d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", s, auc(nodules, b, kGroupings[0]),
                auc(nodules, a, kGroupings[0]), auc(nodules, b, kGroupings[1]),
                auc(nodules, a, kGroupings[1]), auc(nodules, sb, kGroupings[0]),
                auc(nodules, sa, kGroupings[0]));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const lungvol::Error& e) {
    std::fprintf(stderr, "lidc_validation: error: %s\n", e.what());
    return e.exit_status();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lidc_validation: error: %s\n", e.what());
    return 6;
  }
}
