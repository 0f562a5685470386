#pragma once
// `lungvol sweep`: how the trial's endpoints move with the lesion thresholds. For every
// (low, split) setting each scan's lesion / ground-glass / solid proportions are recomputed
// from the histograms in results.sqlite (no image is read) and the endpoint comparison is rerun
// in memory (trial::run_endpoints).
//
// A voxel is a lesion candidate when it is a lung voxel that segmentation did not suppress
// (vessels, specks); suppression is kept as the batch found it, so a sweep moves the HU bands
// only. At the protocol's own thresholds the proportions equal the batch's numbers exactly
// (same integer counts, same arithmetic as vol::measure_volumes). Suppression was computed
// for the voxels of the protocol's lesion band only, so the stored data cannot answer a lower
// threshold below the protocol's: run_sweep refuses it (and any low >= split, split >= high).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "batch/store.hpp"
#include "trial/endpoint.hpp"

namespace lungvol::batch {

// "from:to:step" (inclusive, step > 0, from <= to) or one number. Error(kUsage) naming option.
std::vector<double> parse_range(const std::string& text, const std::string& option);

// One manifest scan as the sweep sees it: cumulative candidate counts per HU bin.
struct SweepScan {
  std::string subject_id, arm, visit;
  std::optional<double> visit_day;
  std::optional<bool> in_window;
  bool failed = false;
  std::uint64_t lung_total = 0;
  std::vector<std::int64_t> cumulative;  // candidates with HU < kMinHu + i, i = 0 .. kBins
};

// Manifest scans with their `lungs` histograms (scans not analyzed are left out = missing).
std::vector<SweepScan> load_sweep_scans(Store& store);

struct Proportions {
  double lesion_pct = 0, ggo_pct = 0, solid_pct = 0;
};
Proportions proportions_at(const SweepScan& s, double low_hu, double split_hu, double high_hu);

// Visit table with metrics lesion_pct, ggo_pct, solid_pct at the thresholds.
trial::VisitTable sweep_visit_table(const std::vector<SweepScan>& scans, double low_hu,
                                    double split_hu, double high_hu);

struct SweepSetting {
  double low_hu = 0, split_hu = 0, high_hu = 0;
  trial::EndpointResult result;
};

struct SweepOptions {
  std::string outdir;
  std::string out_dir;     // "" = OUTDIR/sweep (e.g. elsewhere for a batch on read-only storage)
  std::string split;       // range; "" = the protocol's split
  std::string lesion_low;  // range; "" = the protocol's low
  std::string arms;        // "A,B"; "" = the two arms, sorted
  std::string schedule;    // TOML; "" = the schedule of the latest batch run
  std::string digits_rank;  // ties convention, as `endpoint --digits-rank`; "" = 10
  // Endpoints drawn in sweep.svg, comma-separated: by default the two that depend on the split
  // (the total lesion endpoint does not).
  std::string plot_endpoint = "ggo_pct_change,solid_pct_change";
  std::string plot_visit;  // a follow-up visit of the schedule; "" = its last one
  std::string plot_population = trial::kPopulationMITT;
};

struct SweepOutput {
  std::vector<SweepSetting> settings;
  std::string out_dir, results_state;
  std::size_t n_scans = 0;
  double seconds = 0;  // load + recompute + endpoints (files excluded)
};

// Runs the sweep and writes sweep.csv (with provenance columns), sweep.svg and provenance.json
// into OUTDIR/sweep (or options.out_dir). The store is opened read-only; the thresholds are those
// of the protocol the scans were measured with, the schedule the batch's (batch/derived.hpp).
// Error(kUsage), before anything is computed or written, for a --lesion-low below the
// protocol's, thresholds out of order, or a --plot-visit that is not a follow-up visit of the
// schedule.
SweepOutput run_sweep(const SweepOptions& options);

// Columns: low_hu, split_hu, high_hu, endpoint, visit, population, arm_a, arm_b, n_a, median_a,
// n_b, median_b, hl_estimate, ci_low, ci_high, conf_level, p_value, method.
std::string sweep_csv(const std::vector<SweepSetting>& settings);
std::string sweep_svg(const std::vector<SweepSetting>& settings, const SweepOptions& options);

}  // namespace lungvol::batch
