#pragma once
// The tidy tables of one analysis: one row per region x metric, each row with provenance.
#include <string>
#include <vector>

namespace lungvol::pipeline {

struct Analysis;
struct RegionResult;

struct Measurement {
  std::string metric;  // e.g. lesion_pct, p15_hu, class_ground_glass_ml
  double value = 0;
  std::string unit;    // mL, %, HU, g, 1
};

// Every metric of a region, in a stable order.
std::vector<Measurement> region_measurements(const RegionResult& r);

// Columns: series_instance_uid, input_sha256, protocol, protocol_version, protocol_sha256,
// software_version, analyzed_at, region, metric, value, unit.
void write_measurements_csv(const Analysis& a, const std::string& path);
// Columns: region, kind (lung | suppressed), hu, count; non-empty bins only.
void write_histograms_csv(const Analysis& a, const std::string& path);

}  // namespace lungvol::pipeline
