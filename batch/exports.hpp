#pragma once
// Cohort tables written from the results store (never from memory), so they always describe
// what the database holds. Both files are written atomically.
#include <string>

#include "batch/store.hpp"

namespace lungvol::batch {

// Tidy: one row per manifest scan (status ok) x region x metric. Columns: subject_id, arm,
// visit, visit_day, site, population, series_instance_uid, input_sha256, protocol,
// protocol_version, protocol_sha256, software_version, analyzed_at, region, metric, value, unit.
void write_cohort_measurements_csv(Store& store, const std::string& path);

// One row per manifest subject x visit: subject_id, arm, visit, visit_day (days from baseline),
// in_window (1/0/empty), status (ok/failed/empty = not analyzed), lung_ml, lesion_pct, ggo_pct,
// solid_pct, mean_hu, p15_hu, laa950_pct, haa_pct, mass_g (the `lungs` region). This is the
// input of `lungvol endpoint OUTDIR`.
void write_visits_wide_csv(Store& store, const std::string& path);

// The `lungs`-region metrics that become visits_wide columns: (column, metric) pairs.
const std::vector<std::pair<std::string, std::string>>& visits_wide_metrics();

}  // namespace lungvol::batch
