#pragma once
// Cohort tables written from the results store (never from memory), so they always describe
// what the database holds. Both files are written atomically.
#include <string>

#include "batch/store.hpp"
#include "report/csv.hpp"
#include "trial/endpoint.hpp"

namespace lungvol::batch {

// Tidy: one row per manifest scan (status ok) x region x metric. Columns: subject_id, arm,
// visit, visit_day, site, population, series_instance_uid, input_sha256, protocol,
// protocol_version, protocol_sha256, software_version, analyzed_at, region, metric, value, unit.
void write_cohort_measurements_csv(Store& store, const std::string& path);

// One row per manifest subject x visit: subject_id, arm, visit, visit_day (days from baseline),
// in_window (1/0/empty), status (ok/failed/empty = not analyzed), lung_ml, lesion_pct, ggo_pct,
// solid_pct, mean_hu, p15_hu, laa950_pct, haa_pct, mass_g (the `lungs` region), calibration
// (ok/flagged), identity_flags (the scan's identity flags, ';'-separated), qc_score, qc_flags
// (codes, ';'-separated), review (the reader's decision; status is "excluded" for an excluded
// scan, which the endpoints treat as missing), then the registration to the baseline:
// resolved_fraction, new_lesion_fraction, progressed_fraction, regressed_fraction (0 at the
// baseline), p15_adj_hu, mean_adj_hu (volume-adjusted; raw at the baseline), inspiration
// (ok/flagged), registration (ok/failed/baseline/empty), mask_consistency (ok/flagged). The same
// table is
// what `lungvol endpoint OUTDIR` and `lungvol export` read (from the store, never the file).
report::CsvTable visits_wide_table(Store& store);
void write_visits_wide_csv(Store& store, const std::string& path);
// visits_wide_table() as the endpoint analysis reads it.
trial::VisitTable batch_visit_table(Store& store);

// One row per failed manifest scan: subject_id, arm, visit, path, exit_code, error, failed_at.
void write_failures_csv(Store& store, const std::string& path);

// After scans were stored: visit timing, identity and QC flags recomputed, the CSVs written from
// the store into `outdir`, and the results state recorded (Store::record_results_state).
void refresh_batch_tables(Store& store, const trial::VisitSchedule& schedule,
                          const std::string& outdir);

// The `lungs`-region metrics that become visits_wide columns: (column, metric) pairs.
const std::vector<std::pair<std::string, std::string>>& visits_wide_metrics();
// The change-map fractions that become visits_wide columns (0 at the baseline): (column,
// registration metric of the `lungs` region).
const std::vector<std::pair<std::string, std::string>>& visits_wide_change_metrics();

}  // namespace lungvol::batch
